"""Dataset sweeps into a zarr store: listings, the maps against in-memory sweeps, resumption, refusals of
other settings, failed images, the Python API's inputs and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr
from PIL import Image

import zfaccel
from zfaccel.analysis.occlusion import dataset_sweep
from zfaccel.analysis.occlusion.dataset import list_images
from zfaccel.analysis.occlusion.store import DONE, FAILED, PENDING
from zfaccel.demo.export import write_image_folder
from zfaccel.demo.shapes import CLASSES
from zfaccel.models import pretrained_small, small_zfnet

FAST = dict(window=32, stride=16, chunk=4)  # 3 x 3 positions an image: seconds for the whole module


@pytest.fixture(scope="module")
def model():
    return pretrained_small()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """14 shapes images in ImageFolder layout (class subfolders), plus a corrupt and an empty 'image'."""
    path = write_image_folder(tmp_path_factory.mktemp("data") / "shapes", 14)
    (path / "circle" / "test_00b.png").write_bytes(b"\x89PNG not an image")
    (path / "star" / "empty.jpg").write_bytes(b"")
    return path


@pytest.fixture(scope="module")
def swept(model, folder, tmp_path_factory):
    return zfaccel.sweep_dataset(model, folder, tmp_path_factory.mktemp("stores") / "s.zarr", target="label", **FAST)


def test_listing_is_sorted_recursive_and_labelled(folder):
    listing = list_images(folder)
    assert listing.paths == sorted(listing.paths) and len(listing) == 16
    assert listing.paths[:3] == ["bar/test_08.png", "circle/test_00.png", "circle/test_00b.png"]
    assert listing.folder_classes == sorted(CLASSES[:10])
    assert [listing.folder_classes[k] for k in listing.folder_label] == [p.split("/")[0] for p in listing.paths]
    assert list_images(folder).identity == listing.identity


def test_listing_of_text_files_paths_and_datasets(folder, tmp_path):
    names = tmp_path / "list.txt"
    names.write_text(f"# two images\n{folder}/star/test_07.png\n\n{folder}/circle/test_10.png\n")
    listing = list_images(names)
    assert listing.paths == ["circle/test_10.png", "star/test_07.png"] and listing.root == folder.resolve()
    assert list_images([folder / "star/test_07.png", folder / "circle/test_10.png"]).paths == listing.paths
    data = torch.utils.data.TensorDataset(torch.zeros(3, 3, 8, 8), torch.arange(3))
    assert list_images(data).paths == ["dataset[0]", "dataset[1]", "dataset[2]"]


@pytest.mark.parametrize("bad, error, match", [
    ("missing", FileNotFoundError, "does not exist"),
    ("empty", ValueError, "holds no images"),
    ("blank-list", ValueError, "names no files"),
    ([], ValueError, "empty list"),
    (42, TypeError, "must be a folder"),
])  # fmt: skip
def test_listing_errors_name_the_data(tmp_path, bad, error, match):
    (tmp_path / "empty").mkdir()
    (tmp_path / "blank-list").write_text("# nothing\n\n")
    data = tmp_path / bad if isinstance(bad, str) else bad
    with pytest.raises(error, match=match):
        list_images(data)


def test_maps_equal_an_in_memory_sweep(model, folder, swept):
    listing = list_images(folder)
    good = [i for i, p in enumerate(listing.paths) if not p.endswith(("00b.png", "empty.jpg"))]
    images = zfaccel.load_images([folder / listing.paths[i] for i in good], model)
    labels = [CLASSES.index(listing.paths[i].split("/")[0]) for i in good]
    ref = zfaccel.Occlusion(model).sweep(images, window=32, stride=16, labels=labels)
    for name in ("prob", "feature", "label"):
        np.testing.assert_allclose(swept.group[name][good], getattr(ref, name).numpy(), rtol=0, atol=1e-6)
    for name in ("clean_prob", "clean_label", "target", "feature_channel", "true_label", "clean_label_prob"):
        np.testing.assert_allclose(swept.group[name][good], getattr(ref, name).numpy(), rtol=0, atol=1e-6)
    assert swept.attrs["window"] == [32, 32] and swept.attrs["grid"] == [3, 3] and swept.attrs["target"] == "label"
    assert swept.attrs["class_names"] == list(CLASSES)


def test_failed_images_are_kept_with_their_error(swept):
    counts = swept.counts()
    assert counts == {PENDING: 0, DONE: 14, FAILED: 2}
    failures = swept.failures()
    assert [f.path for f in failures] == ["circle/test_00b.png", "star/empty.jpg"]
    assert all("cannot read image" in f.error for f in failures)
    i = failures[0].index
    assert np.isnan(swept.prob[i]).all() and (swept.label[i] == -1).all() and swept.status[i] == FAILED
    with pytest.raises(ValueError, match="failed: cannot read image"):
        swept.result(i)


def test_result_draws_a_panel(swept, tmp_path):
    res = swept.result(1)
    assert res.prob.shape == (1, 3, 3) and res.images.shape == (1, 3, 64, 64)
    assert res.true_label.tolist() == [CLASSES.index("circle")]
    fig = res.render_panel(tmp_path / "p.png", 0, class_names=swept.attrs["class_names"],
                           preprocessing=swept.preprocessing())  # fmt: skip
    assert Image.open(tmp_path / "p.png").size[0] > 400 and fig.get_figwidth() * fig.dpi > 400
    assert "images=16" in repr(swept) and "done=14" in repr(swept) and "failed=2" in repr(swept)
    again = zfaccel.open_sweep(swept.location)
    np.testing.assert_array_equal(again.prob[:], swept.prob[:])


def test_strict_stops_at_the_first_unreadable_image(model, folder, tmp_path):
    with pytest.raises(ValueError, match=r"cannot read image 2 \(circle/test_00b.png\)"):
        zfaccel.sweep_dataset(model, folder, tmp_path / "s.zarr", strict=True, **FAST)
    store = zfaccel.open_sweep(tmp_path / "s.zarr")
    assert store.status[0] == PENDING  # the chunk with the bad image was not written


def test_resume_computes_only_pending_chunks(model, folder, swept, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "copy.zarr"
    shutil.copytree(swept.location, copy)
    group = zarr.open_group(str(copy), mode="r+")
    group["status"][4:8] = 0  # chunk 1 back to pending, as if its process died before writing status
    group["prob"][4:8] = 0.0  # and its maps garbage
    calls = []
    real = dataset_sweep._sweep_chunk
    monkeypatch.setattr(dataset_sweep, "_sweep_chunk", lambda occ, plan, index, *a: calls.append(index.tolist())
                        or real(occ, plan, index, *a))  # fmt: skip
    store = zfaccel.sweep_dataset(model, folder, copy, target="label", **FAST)
    assert calls == [[4, 5, 6, 7]]
    np.testing.assert_array_equal(store.prob[:], swept.prob[:])
    np.testing.assert_array_equal(store.status[:], swept.status[:])
    calls.clear()
    zfaccel.sweep_dataset(model, folder, copy, target="label", **FAST)  # all done: nothing to do
    assert calls == []


def test_other_settings_model_or_data_are_refused(model, folder, swept, tmp_path):
    with pytest.raises(ValueError, match="window 16x16 differs from the store's 32x32"):
        zfaccel.sweep_dataset(model, folder, swept.location, target="label", window=16, stride=16, chunk=4)
    with pytest.raises(ValueError, match="target predicted differs from the store's label"):
        zfaccel.sweep_dataset(model, folder, swept.location, **FAST)
    torch.manual_seed(3)
    other = small_zfnet().eval()
    with pytest.raises(ValueError, match=r"model .* differs from the store's"):
        zfaccel.sweep_dataset(other, folder, swept.location, target="label", **FAST)
    fewer = write_image_folder(tmp_path / "fewer", 6)
    with pytest.raises(ValueError, match="images 6 differs from the store's 16.*data"):
        zfaccel.sweep_dataset(model, fewer, swept.location, target="label", **FAST)


def test_overwrite_starts_afresh_but_never_deletes_other_data(model, folder, tmp_path):
    store = tmp_path / "s.zarr"
    zfaccel.sweep_dataset(model, folder, store, **FAST)
    new = zfaccel.sweep_dataset(model, folder, store, overwrite=True, window=64, stride=64, chunk=8)
    assert new.attrs["grid"] == [1, 1] and new.counts()[DONE] == 14
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "keep.jpg").write_bytes(b"precious")
    with pytest.raises(ValueError, match="is not an occlusion sweep store"):
        zfaccel.sweep_dataset(model, folder, photos, overwrite=True, **FAST)
    assert (photos / "keep.jpg").read_bytes() == b"precious"


def test_dataset_input_fixed_target_and_workers(model, tmp_path):
    images = torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    data = torch.utils.data.TensorDataset(images, torch.tensor([0, 1, 2, 3, 4]))
    store = zfaccel.sweep_dataset(model, data, tmp_path / "d.zarr", target=7, workers=2, **FAST)
    ref = zfaccel.Occlusion(model).sweep(images, target=7, window=32, stride=16)
    np.testing.assert_allclose(store.prob[:], ref.prob.numpy(), rtol=0, atol=1e-6)
    assert store.true_label[:].tolist() == [0, 1, 2, 3, 4] and store.target[:].tolist() == [7] * 5
    assert store.attrs["data_root"] is None and store.path[2] == "dataset[2]"
    with pytest.raises(ValueError, match="came from a Dataset"):
        store.result(0)
    assert store.result(0, image=images[0]).prob.shape == (1, 3, 3)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"target": "label"}, ValueError, "not in ImageFolder layout"),
    ({"target": -1}, ValueError, "target must be"),
    ({"chunk": 0}, ValueError, "chunk must be"),
    ({"workers": -1}, ValueError, "workers must be"),
    ({"window": 65}, ValueError, "larger than the images"),
    ({"baseline": torch.zeros(3, 64, 64)}, TypeError, "baseline must be"),
])  # fmt: skip
def test_bad_arguments_name_themselves(model, folder, tmp_path, kwargs, error, match):
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in list(folder.glob("*/test_0[1-3].png")):
        (flat / p.name).write_bytes(p.read_bytes())
    with pytest.raises(error, match=match):
        zfaccel.sweep_dataset(model, flat, tmp_path / "s.zarr", **{**FAST, **kwargs})
    assert not (tmp_path / "s.zarr").exists()  # refused before anything was written


def test_open_sweep_refuses_what_is_not_a_sweep(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        zfaccel.open_sweep(tmp_path / "none.zarr")
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    with pytest.raises(ValueError, match="is not an occlusion sweep store"):
        zfaccel.open_sweep(tmp_path / "other.zarr")


def test_an_approximate_sweep_is_recorded_and_resumed_only_alike(model, folder, tmp_path):
    approx = zfaccel.Approximation(tau=0.5, drill_down=0.5)
    store = zfaccel.sweep_dataset(model, folder, tmp_path / "a.zarr", approximate=approx, window=16, stride=8,
                                  chunk=8)  # fmt: skip
    assert store.attrs["approximation"] == {"tau": 0.5, "drill_down": 0.5, "coarse_stride": None}
    listing = list_images(folder)
    good = [i for i, p in enumerate(listing.paths) if not p.endswith(("00b.png", "empty.jpg"))]
    images = zfaccel.load_images([folder / listing.paths[i] for i in good], model)
    ref = zfaccel.Occlusion(model).sweep(images, window=16, stride=8, approximate=approx, labels=[
        CLASSES.index(listing.paths[i].split("/")[0]) for i in good], target="predicted")  # fmt: skip
    np.testing.assert_allclose(store.prob[good], ref.prob.numpy(), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="approximation exact differs from the store's tau 0.5, drill-down 0.5"):
        zfaccel.sweep_dataset(model, folder, tmp_path / "a.zarr", window=16, stride=8, chunk=8)
