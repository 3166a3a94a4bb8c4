"""top_activations: the k strongest activations per channel, their projections and patches, and Fig. 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from figure_checks import all_text, assert_png, assert_readable
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from zfaccel.analysis import DeconvNet
from zfaccel.analysis.figures import BLOCK_GAP, top_tiles
from zfaccel.analysis.mosaic import GAP, resize
from zfaccel.analysis.plotting import FONT, line_px
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


class Interrupting(Dataset):
    """``images`` (N, 3, H, W) as (image,) items, counting reads; item ``at`` raises KeyboardInterrupt,
    as a Ctrl-C while reading it would."""

    def __init__(self, images, at=None):
        self.images, self.at, self.reads = images, at, 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        if i == self.at:
            raise KeyboardInterrupt
        self.reads += 1
        return (self.images[i],)


def twin_of(model):
    """Another module holding the same weights."""
    twin = small_zfnet(10).eval()
    twin.load_state_dict(model.state_dict())
    return twin


def test_checkpoint_resume(model, images, tmp_path):
    """An interrupted run keeps what it mined; a rerun with the same weights (another object) resumes after it
    and ends with the uninterrupted run's table, bit for bit."""
    run = dict(layer="conv3", k=3, batch_size=8, project=False, show_progress=False)
    ref = top_activations(model, Interrupting(images), **run)
    ckpt = tmp_path / "mining.pt"
    with pytest.raises(KeyboardInterrupt):
        top_activations(model, Interrupting(images, at=19), checkpoint=ckpt, **run)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["images_seen"] == 16  # two whole batches; the one holding item 19 was never merged
    data = Interrupting(images)
    top = top_activations(twin_of(model), data, checkpoint=ckpt, **run)
    assert data.reads == 37 - 16
    assert top.images_seen == 37
    for key in ("values", "image_index", "position"):
        assert torch.equal(getattr(top, key), getattr(ref, key)), key


@pytest.fixture
def checkpointed(model, images, tmp_path):
    """A finished run's checkpoint: conv3, k=3, channels 1, 2, 5 of 20 images."""
    ckpt = tmp_path / "mining.pt"
    top_activations(model, Interrupting(images[:20]), "conv3", k=3, channels=[1, 2, 5], project=False,
                    checkpoint=ckpt, show_progress=False)  # fmt: skip
    return ckpt


OTHER_SETTINGS = [
    ("k", dict(k=4), "k 4 differs from the checkpoint's 3"),
    ("layer", dict(layer="conv2"), "layer conv2 differs from the checkpoint's conv3"),
    ("channels", dict(channels=[1, 2]), "channels [1, 2] differs from the checkpoint's [1, 2, 5]"),
    ("data size", dict(data=19), "data size 19 differs from the checkpoint's 20"),
    ("data kind", dict(data="tensors"), "data TensorDataset differs from the checkpoint's Interrupting"),
    ("preprocessing", dict(preprocessing=Preprocessing(64)), "preprocessing 64 px, mean (0.485, 0.456, 0.406), "
     "std (0.229, 0.224, 0.225) differs from the checkpoint's 64 px, mean (0.5053"),
]  # fmt: skip


@pytest.mark.parametrize("what, change, message", OTHER_SETTINGS, ids=[w for w, _, _ in OTHER_SETTINGS])
def test_checkpoint_refuses_other_settings(model, images, checkpointed, what, change, message):
    before = checkpointed.read_bytes()
    run = dict(layer="conv3", k=3, channels=[1, 2, 5], project=False, checkpoint=checkpointed, show_progress=False)
    data = change.pop("data", 20)
    data = TensorDataset(images[:20]) if data == "tensors" else Interrupting(images[:data])
    with pytest.raises(ValueError, match="was made with other settings") as err:
        top_activations(twin_of(model), data, **{**run, **change})
    assert message in str(err.value) and str(err.value).count(" differs ") == 1
    assert "remove it or pass another checkpoint file" in str(err.value)
    assert checkpointed.read_bytes() == before  # a refused resume leaves the checkpoint as it was


def test_checkpoint_refuses_other_weights_naming_each_difference(images, checkpointed):
    torch.manual_seed(1)
    other = small_zfnet(10).eval()
    with pytest.raises(ValueError, match=r"settings: model \(hash [0-9a-f]{12}…\) differs from the checkpoint's "
                       r"\(hash [0-9a-f]{12}…\); remove it") as err:  # fmt: skip
        top_activations(other, Interrupting(images[:20]), "conv3", k=3, channels=[1, 2, 5], checkpoint=checkpointed,
                        show_progress=False)  # fmt: skip
    with pytest.raises(ValueError) as err:
        top_activations(other, Interrupting(images[:20]), "conv2", k=4, channels=[1, 2, 5], checkpoint=checkpointed,
                        show_progress=False)  # fmt: skip
    named = [part.split(" ")[0] for part in str(err.value).split(": ", 1)[1].split("; ")[:-1]]
    assert named == ["model", "layer", "k"]


def test_checkpoint_without_settings_is_refused(model, images, checkpointed):
    state = torch.load(checkpointed, weights_only=True)
    del state["settings"]
    torch.save(state, checkpointed)  # as an older zfaccel wrote it
    with pytest.raises(ValueError, match="does not record the model, data and settings"):
        top_activations(model, Interrupting(images[:20]), "conv3", k=3, channels=[1, 2, 5], checkpoint=checkpointed,
                        show_progress=False)  # fmt: skip
    checkpointed.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read the checkpoint"):
        top_activations(model, Interrupting(images[:20]), "conv3", k=3, checkpoint=checkpointed, show_progress=False)


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
    assert repr(top) == "TopActivations(layer='conv4', channels=96, k=4, images_seen=6, projected=True, failures=0)"
    fig = top.render(tmp_path / "fig" / "conv4.png", max_channels=9, tile=32)
    assert_readable(fig)
    assert_png(tmp_path / "fig" / "conv4.png", (300, 150))
    text = all_text(fig)
    assert "conv4: the 4 strongest activations of each feature map over 6 images (the first 9 of 96 shown)" in \
        " ".join(text.split())  # wrapped to the figure's width  # fmt: skip
    assert all(f"map {c}" in text.split("\n") for c in range(9)) and "map 9" not in text.split("\n")
    # Map 0's block: its 2 x 2 projections, then its patches, under the label; each projection stretched to [0, 1].
    live = [r for r in range(9) if float(top.projections[r].abs().max()) > 0]
    assert live and all(float(p.min()) == 0 and float(p.max()) == 1 for r in live for p in top_tiles(top, r)[0])
    proj, patches = top_tiles(top, 0)
    canvas = np.asarray(fig.axes[0].images[0].get_array())[..., :3]
    x, y = BLOCK_GAP + 2 * (32 + GAP) - GAP + BLOCK_GAP // 2, BLOCK_GAP + line_px(FONT)
    expected = (resize(patches[:1], 32)[0] * 255).round().byte().permute(1, 2, 0).numpy()
    assert (canvas[y : y + 32, x : x + 32] == expected).all()


PREP = Preprocessing(64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
JUNK = ("img1b.png", "img3b.jpg")  # sorted among the good files: indices 2 and 5 of the folder


def image_folder(path, junk=()):
    """img0..img5.png (random pixels, the same in every folder made here) plus the ``junk`` files."""
    path.mkdir()
    gen = torch.Generator().manual_seed(3)
    for i in range(6):
        Image.fromarray((torch.rand(40, 50, 3, generator=gen) * 255).byte().numpy()).save(path / f"img{i}.png")
    for name in junk:
        (path / name).write_bytes(b"\x89PNG\r\n truncated" if name.endswith(".png") else b"just text")
    return path


def file_names(folder, image_index):
    files = sorted(p.name for p in folder.iterdir())
    return [[files[i] for i in row] for row in image_index.tolist()]


def test_unreadable_files_are_skipped_and_listed(model, tmp_path):
    """Two junk files among good ones: the table of the folder without them (each entry naming the same file,
    at its index in this folder's sorted list), and the junk listed in ``failures``."""
    clean, junky = image_folder(tmp_path / "clean"), image_folder(tmp_path / "junky", JUNK)
    run = dict(layer="conv2", k=3, channels=[0, 5, 9], preprocessing=PREP, show_progress=False)
    ref = top_activations(model, clean, **run)
    top = top_activations(model, junky, **run)
    assert file_names(junky, top.image_index) == file_names(clean, ref.image_index)
    assert (top.image_index >= 5).any()  # some good file sits after a junk one: its index is not its rank
    for key in ("values", "position", "projections", "patches", "boxes"):
        assert torch.equal(getattr(top, key), getattr(ref, key)), key
    assert top.images_seen == 6 and [f[:2] for f in top.failures] == [
        (2, str(junky / JUNK[0])),
        (5, str(junky / JUNK[1])),
    ]
    assert all(message.startswith(f"cannot read image {path!r}") for _, path, message in top.failures)
    with pytest.raises(ValueError, match=f"cannot read image '.*{JUNK[0]}'"):
        top_activations(model, junky, strict=True, **run)


def test_resumed_run_keeps_its_failures(model, tmp_path, monkeypatch):
    """Interrupted after both junk files were skipped, the resumed run reads only the rest and still lists them."""
    junky = image_folder(tmp_path / "junky", JUNK)
    run = dict(layer="conv2", k=3, batch_size=2, preprocessing=PREP, project=False, show_progress=False)
    ref = top_activations(model, junky, **run)
    real, reads = Preprocessing.load, []

    def load(self, path, interrupt_at=None):
        if Path(path).name == interrupt_at:
            raise KeyboardInterrupt
        reads.append(Path(path).name)
        return real(self, path)

    ckpt = tmp_path / "mining.pt"
    monkeypatch.setattr(Preprocessing, "load", lambda self, path: load(self, path, "img4.png"))  # the 7th of 8 files
    with pytest.raises(KeyboardInterrupt):
        top_activations(model, junky, checkpoint=ckpt, **run)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["images_seen"] == 4 and saved["failures"] == ref.failures and len(ref.failures) == 2
    monkeypatch.setattr(Preprocessing, "load", lambda self, path: load(self, path))
    reads.clear()
    top = top_activations(model, junky, checkpoint=ckpt, **run)
    assert reads == ["img4.png", "img5.png"]
    assert top.failures == ref.failures and top.images_seen == 6
    for key in ("values", "image_index", "position"):
        assert torch.equal(getattr(top, key), getattr(ref, key)), key


class Faulty(Dataset):
    """Four images; item 1 raises ``error``."""

    def __init__(self, images, error):
        self.images, self.error = images[:4], error

    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 1:
            raise self.error
        return (self.images[i],)


def test_only_unreadable_items_are_skipped(model, images):
    """A ValueError from a Dataset's item is an unreadable item; any other error is a bug and propagates."""
    top = top_activations(model, Faulty(images, ValueError("bad bytes")), "conv1", k=2, show_progress=False)
    assert top.failures == [(1, "Faulty[1]", "bad bytes")] and top.images_seen == 3
    shown = repr(top)
    assert shown.endswith("images_seen=3, projected=True, failures=1)") and "\n" not in shown and len(shown) < 200
    assert 1 not in top.image_index.tolist()
    for strict in (False, True):
        with pytest.raises(RuntimeError, match="a bug"):
            top_activations(model, Faulty(images, RuntimeError("a bug")), "conv1", strict=strict, show_progress=False)
    with pytest.raises(ValueError, match="bad bytes"):
        top_activations(model, Faulty(images, ValueError("bad bytes")), "conv1", strict=True, show_progress=False)
    with pytest.raises(TypeError, match="strict must be a bool"):
        top_activations(model, images[:2], "conv1", strict="yes", show_progress=False)


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
    with pytest.raises(ValueError, match="none of the dataset's 1 items could be read; the first: cannot read image"):
        top_activations(model, tmp_path / "broken", "conv1", show_progress=False)
    with pytest.raises(TypeError, match="random access"):
        top_activations(model, iter([images[:2]]), "conv1", show_progress=False)
    with pytest.raises(TypeError, match="plain CNN"):
        top_activations(nn.Linear(3, 3), data, "conv1", show_progress=False)
