"""top_activations: the k strongest activations per channel, their projections and patches, and Fig. 2."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from zfaccel.analysis import DeconvNet
from zfaccel.analysis.topk import top_activations
from zfaccel.models import small_zfnet
from zfaccel.models.preprocessing import Preprocessing


def brute_force(model, images, layer, k):
    """Every image's per-channel maximum, ranked: the table top_activations must reproduce."""
    act = DeconvNet(model).trace(images, layer)[0].output
    values, flat = act.flatten(2).max(2)  # (N, C)
    order = torch.sort(values.t(), dim=1, descending=True, stable=True).indices[:, :k]  # (C, k)
    return values.t().gather(1, order), order, flat.t().gather(1, order), act.shape[3]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return small_zfnet(10).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(37, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("layer", ["conv1", "conv3", "pool5"])
def test_table_matches_brute_force(model, images, layer):
    top = top_activations(model, TensorDataset(images), layer, k=9, batch_size=8, project=False, show_progress=False)
    values, order, flat, width = brute_force(model, images, layer, 9)
    torch.testing.assert_close(top.values, values)
    assert torch.equal(top.image_index, order)
    assert torch.equal(top.position[..., 0] * width + top.position[..., 1], flat)
    assert top.images_seen == 37


def test_independent_of_batching_and_input_kind(model, images):
    """Batch sizes, a DataLoader, and a plain iterable of batches all give one table."""
    ref = top_activations(model, TensorDataset(images), "conv2", k=5, batch_size=37, project=False, show_progress=False)
    for data, bs in ((TensorDataset(images), 4), (DataLoader(TensorDataset(images), batch_size=10), None),
                     (iter([images[:20], images[20:]]), None)):  # fmt: skip
        top = top_activations(model, data, "conv2", k=5, batch_size=bs, project=False, show_progress=False)
        assert torch.equal(top.image_index, ref.image_index)
        torch.testing.assert_close(top.values, ref.values)  # convolutions round per batch size


def test_fewer_images_than_k(model, images):
    top = top_activations(model, TensorDataset(images[:3]), "conv1", k=9, show_progress=False)
    assert (top.image_index[:, 3:] == -1).all() and torch.isinf(top.values[:, 3:]).all()
    assert (top.image_index[:, :3] >= 0).all()


def test_projections_and_patches(model, images):
    top = top_activations(model, TensorDataset(images), "conv2", k=4, channels=[3, 7], show_progress=False)
    dn = DeconvNet(model)
    c, rank = 1, 2  # channel 7's third-strongest activation
    image = int(top.image_index[c, rank])
    r, col = (int(v) for v in top.position[c, rank])
    crops = dn.project_targets(images[image : image + 1], "conv2", torch.tensor([[0, 7, r, col]]))
    torch.testing.assert_close(top.projections[c, rank], crops.signal[0])
    assert torch.equal(top.boxes[c, rank], crops.offset[0])
    (top_row, left), (h, w) = crops.offset[0].tolist(), crops.signal.shape[-2:]
    expected = torch.zeros(3, h, w)
    r0, c0 = max(top_row, 0), max(left, 0)
    r1, c1 = min(top_row + h, 64), min(left + w, 64)
    expected[:, r0 - top_row : r1 - top_row, c0 - left : c1 - left] = images[image, :, r0:r1, c0:c1]
    torch.testing.assert_close(top.patches[c, rank], expected)


def test_checkpoint_resume(model, images, tmp_path, monkeypatch):
    """An interrupted run keeps what it mined; the next call resumes after it and ends with the same table."""
    ref = top_activations(model, TensorDataset(images), "conv3", k=3, batch_size=8, project=False, show_progress=False)
    ckpt = tmp_path / "mining.pt"
    calls = {"n": 0}
    real = DeconvNet.trace

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DeconvNet, "trace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        top_activations(model, TensorDataset(images), "conv3", k=3, batch_size=8, project=False,
                        checkpoint=ckpt, show_progress=False)  # fmt: skip
    saved = torch.load(ckpt, weights_only=True)
    assert saved["images_seen"] == 16
    monkeypatch.setattr(DeconvNet, "trace", real)
    top = top_activations(model, TensorDataset(images), "conv3", k=3, batch_size=8, project=False,
                          checkpoint=ckpt, show_progress=False)  # fmt: skip
    assert torch.equal(top.image_index, ref.image_index)
    torch.testing.assert_close(top.values, ref.values)
    with pytest.raises(ValueError, match="another layer"):
        top_activations(model, TensorDataset(images), "conv1", k=3, checkpoint=ckpt, show_progress=False)


def test_folder_of_images_and_figure(model, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    gen = torch.Generator().manual_seed(2)
    for i in range(6):
        pixels = (torch.rand(40, 50, 3, generator=gen) * 255).byte().numpy()
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    (folder / "notes.txt").write_text("not an image")
    prep = Preprocessing(64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    top = top_activations(model, folder, "conv4", k=4, preprocessing=prep, show_progress=False)
    assert top.images_seen == 6 and top.projections.shape[:2] == (96, 4)
    png = top.render(tmp_path / "fig" / "conv4.png", max_channels=9, tile=32)
    with Image.open(png) as img:
        assert img.size[0] > 300 and img.size[1] > 150


def test_bad_input(model, images, tmp_path):
    data = TensorDataset(images[:4])
    with pytest.raises(ValueError, match="k must be"):
        top_activations(model, data, "conv1", k=0, show_progress=False)
    with pytest.raises(ValueError, match="unknown layer"):
        top_activations(model, data, "fc6", show_progress=False)
    with pytest.raises(ValueError, match="channels"):
        top_activations(model, data, "conv1", channels=[99], show_progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        top_activations(model, tmp_path / "nowhere", "conv1", show_progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        top_activations(model, tmp_path / "empty", "conv1", show_progress=False)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        top_activations(model, tmp_path / "broken", "conv1", show_progress=False)
    with pytest.raises(TypeError, match="random access"):
        top_activations(model, iter([images[:2]]), "conv1", show_progress=False)
    with pytest.raises(TypeError, match="plain CNN"):
        top_activations(nn.Linear(3, 3), data, "conv1", show_progress=False)
