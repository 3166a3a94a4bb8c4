"""zfaccel sweep-report: the statistics (checked against the arrays read whole), the page, the lazy reads
and the command's exit codes, on a 42-image sweep of the shapes data (2 of them junk) at a coarse grid."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zfaccel
from zfaccel.analysis.occlusion import store as stores
from zfaccel.analysis.occlusion.report import summarize, sweep_report
from zfaccel.cli.main import main
from zfaccel.demo.export import write_image_folder

GEOMETRY = dict(window=32, stride=16)
JUNK = ("circle/zz_bad.png", "square/<b>&bad.jpg")  # unreadable, and a name the page must escape


def _folder(root: Path, count: int, junk: tuple[str, ...] = JUNK) -> Path:
    if count:
        write_image_folder(root, count)
    for name in junk:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"not an image")
    return root


@pytest.fixture(scope="module")
def model():
    return zfaccel.models.pretrained_small()


@pytest.fixture(scope="module")
def swept(tmp_path_factory, model) -> Path:
    """42 images (40 shapes, 2 junk) in chunks of 8, 3 x 3 occluder positions, target: the folder's class."""
    root = tmp_path_factory.mktemp("sweep")
    data = _folder(root / "data", 40)
    zfaccel.sweep_dataset(model, data, root / "s.zarr", chunk=8, target="label", **GEOMETRY)
    return root / "s.zarr"


@pytest.fixture(scope="module")
def page(swept, tmp_path_factory) -> Path:
    return sweep_report(swept, tmp_path_factory.mktemp("report") / "out", panels=4)


def _arrays(location) -> dict[str, np.ndarray]:
    s = zfaccel.open_sweep(location)
    return {name: np.asarray(getattr(s, name)[:]) for name in stores.SweepStore.ARRAYS}


def _drops(a: dict[str, np.ndarray]) -> np.ndarray:
    return a["clean_prob"] - a["prob"].min(axis=(1, 2))


def _ranked(scores: np.ndarray, keep: np.ndarray, k: int) -> list[int]:
    """Indices of ``keep`` images, largest score first, ties to the lower index: the brute-force answer."""
    order = np.argsort(-scores, kind="stable")
    return [int(i) for i in order if keep[i]][:k]


# The statistics ---------------------------------------------------------------------------------


def test_counts_failures_and_histograms(swept):
    s, a = summarize(swept), _arrays(swept)
    assert (s.images, s.done, s.counts[stores.FAILED], s.counts[stores.PENDING]) == (42, 40, 2, 0)
    assert sorted(f.path for f in s.failures) == sorted(JUNK)
    assert all("cannot read image" in f.error for f in s.failures)
    done = a["status"] == stores.DONE
    np.testing.assert_array_equal(s.clean_hist, np.histogram(a["clean_prob"][done], s.edges)[0])
    np.testing.assert_array_equal(s.drop_hist, np.histogram(np.clip(_drops(a)[done], 0, 1), s.edges)[0])
    assert s.clean_hist.sum() == s.drop_hist.sum() == 40


def test_mean_maps_match_the_arrays(swept):
    s, a = summarize(swept), _arrays(swept)
    done = a["status"] == stores.DONE
    cls = np.where(a["true_label"] >= 0, a["true_label"], a["clean_label"])
    assert s.classes == sorted(set(cls[done].tolist())) and len(s.classes) == 10
    for c in s.classes:
        mine = done & (cls == c)
        expected = (a["clean_prob"][mine, None, None] - a["prob"][mine]).astype(np.float64).mean(axis=0)
        assert s.class_counts[c] == mine.sum() == 4
        np.testing.assert_allclose(s.mean_map(c), expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(KeyError):
        s.mean_map(99)


@pytest.mark.parametrize("top", [5, 100])
def test_most_sensitive_is_the_argsort_of_the_drops(swept, top):
    s, a = summarize(swept, top=top), _arrays(swept)
    drops, done = _drops(a), a["status"] == stores.DONE
    assert [e.index for e in s.most_sensitive] == _ranked(drops, done, top)
    for e in s.most_sensitive:
        assert e.drop == pytest.approx(float(drops[e.index]))
        assert e.path == a["path"][e.index] and e.clean_label == a["clean_label"][e.index]


def test_most_flipped_is_the_argsort_of_the_flip_shares(swept):
    s, a = summarize(swept, top=6), _arrays(swept)
    flips = a["label"] != a["clean_label"][:, None, None]
    share, done = flips.mean(axis=(1, 2)), a["status"] == stores.DONE
    assert [e.index for e in s.most_flipped] == _ranked(share, done & (share > 0), 6)
    for e in s.most_flipped:
        values, counts = np.unique(a["label"][e.index][flips[e.index]], return_counts=True)
        assert e.flip_share == pytest.approx(float(share[e.index]))
        assert e.flipped_to == values[np.argmax(counts)]


def test_random_images_are_done_distinct_and_seeded(swept):
    a = _arrays(swept)
    first = [e.index for e in summarize(swept, top=6, seed=3).random]
    assert first == [e.index for e in summarize(swept, top=6, seed=3).random]  # the seed decides
    assert len(set(first)) == 6 and first == sorted(first)
    assert all(a["status"][i] == stores.DONE for i in first)
    others = {tuple(e.index for e in summarize(swept, top=6, seed=seed).random) for seed in range(4)}
    assert len(others) > 1
    everything = summarize(swept, top=100).random
    assert [e.index for e in everything] == np.nonzero(a["status"] == stores.DONE)[0].tolist()


def test_pending_and_failed_images_are_left_out(swept, tmp_path):
    copy = tmp_path / "s.zarr"
    shutil.copytree(swept, copy)
    group = stores.open_group(copy, "r+")
    group["status"][8:16] = np.zeros(8, np.int8)  # chunk 1 back to pending (its maps stay on disk)
    s, a = summarize(copy, top=100), _arrays(copy)
    assert (s.done, s.counts[stores.PENDING], s.counts[stores.FAILED]) == (33, 8, 1)
    assert s.clean_hist.sum() == 33 and sum(s.class_counts.values()) == 33
    for chosen in (s.most_sensitive, s.most_flipped, s.random):
        assert all(a["status"][e.index] == stores.DONE for e in chosen)
    assert len(s.most_sensitive) == len(s.random) == 33
    done = a["status"] == stores.DONE
    cls = np.where(a["true_label"] >= 0, a["true_label"], a["clean_label"])
    c = int(cls[16])
    mine = done & (cls == c)
    expected = (a["clean_prob"][mine, None, None] - a["prob"][mine]).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(s.mean_map(c), expected, rtol=1e-6, atol=1e-7)


def test_bad_arguments(swept, tmp_path):
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="top"):
            summarize(swept, top=bad)
        with pytest.raises(ValueError, match="panels"):
            sweep_report(swept, tmp_path / "r", panels=bad)


def test_matplotlib_is_imported_only_to_draw(tmp_path):
    code = ("import sys, zfaccel, zfaccel.analysis.occlusion.report, zfaccel.cli.main; "
            "assert 'matplotlib' not in sys.modules")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)  # the installed zfaccel


# The page ----------------------------------------------------------------------------------------


def test_page_lists_counts_and_escaped_failures(page):
    text = page.read_text(encoding="utf-8")
    assert page.name == "index.html"
    assert "42 images, 40 done, 2 failed, 0 pending" in text
    assert "circle/zz_bad.png" in text and "cannot read image" in text
    assert "square/&lt;b&gt;&amp;bad.jpg" in text and "<b>&bad" not in text
    for heading in ("Failures", "Distributions", "Mean sensitivity map per class", "Most sensitive to occlusion",
                    "Labels flipped most often", "Random done images (seed 0)"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in text
    assert "largest drop" in text and "(true and predicted" in text


def test_page_figures_exist_and_open(page):
    text = page.read_text(encoding="utf-8")
    linked = sorted(set(re.findall(r"<img src='([^']+)'", text)))
    names = {Path(p).name for p in linked}
    assert {"clean_prob.png", "largest_drop.png", "class_maps.png"} <= names
    panels = [p for p in linked if p.startswith("panels/")]
    assert 4 <= len(panels) <= 12  # 4 per list, an image in several lists drawn once
    for rel in linked:
        with Image.open(page.parent / rel) as im:
            im.verify()
        with Image.open(page.parent / rel) as im:
            assert im.format == "PNG" and min(im.size) >= 200


def test_empty_store_says_so(model, tmp_path):
    data = _folder(tmp_path / "junk", 0)
    zfaccel.sweep_dataset(model, data, tmp_path / "s.zarr", chunk=8, **GEOMETRY)
    page = sweep_report(tmp_path / "s.zarr", tmp_path / "out")
    text = page.read_text(encoding="utf-8")
    assert "2 images, 0 done, 2 failed, 0 pending" in text and "Nothing is done yet" in text
    assert "<img" not in text and not list((tmp_path / "out").glob("**/*.png"))
    s = summarize(tmp_path / "s.zarr")
    assert s.done == 0 and not s.most_sensitive and not s.random and not s.class_counts


# Lazy reads --------------------------------------------------------------------------------------


class _Guarded:
    """A zarr array that fails any read of more than ``limit`` rows at once, and logs each read."""

    META = ("shape", "chunks", "dtype", "ndim", "attrs")

    def __init__(self, name: str, array, limit: int, log: list) -> None:
        self._name, self._array, self._limit, self._log = name, array, limit, log

    def __getitem__(self, key):
        first = (key[0] if key else Ellipsis) if isinstance(key, tuple) else key
        n = self._array.shape[0]
        if isinstance(first, slice):
            rows = len(range(*first.indices(n)))
        elif isinstance(first, int | np.integer):
            rows = 1
        else:
            rows = n if first is Ellipsis else len(np.asarray(first))
        self._log.append((self._name, rows))
        if rows > self._limit:
            raise AssertionError(f"read {rows} rows of {self._name} at once")
        return self._array[key]

    def __getattr__(self, name: str):
        if name in _Guarded.META:
            return getattr(self._array, name)
        raise AttributeError(f"{name}: the report must read by slicing")

    def __array__(self, *args, **kwargs):
        raise AssertionError(f"{self._name} converted whole")

    def __iter__(self):
        raise AssertionError(f"{self._name} iterated whole")


class _GuardedGroup:
    def __init__(self, group, limit: int) -> None:
        self.group, self.limit, self.log = group, limit, []
        self.attrs = group.attrs

    def __getitem__(self, name: str) -> _Guarded:
        return _Guarded(name, self.group[name], self.limit, self.log)


def test_reads_one_chunk_at_a_time(model, tmp_path):
    data = _folder(tmp_path / "data", 12, JUNK[:1])
    zfaccel.sweep_dataset(model, data, tmp_path / "s.zarr", chunk=4, **GEOMETRY)
    plain = zfaccel.open_sweep(tmp_path / "s.zarr")
    guarded = _GuardedGroup(plain.group, limit=4)
    store = stores.SweepStore(guarded, plain.location)
    with pytest.raises(AssertionError):
        store.prob[0:8]  # the guard works
    guarded.log.clear()
    page = sweep_report(store, tmp_path / "out", panels=3, show_progress=True)
    assert page.exists() and "13 images, 12 done, 1 failed" in page.read_text(encoding="utf-8")
    read = {name for name, _ in guarded.log}
    assert {"status", "prob", "label", "clean_prob", "path", "error"} <= read
    assert max(rows for _, rows in guarded.log) == 4
    s = summarize(store, top=3)
    assert [e.index for e in s.most_sensitive] == [e.index for e in summarize(plain, top=3).most_sensitive]


# The command -------------------------------------------------------------------------------------


def test_cli_writes_the_page(swept, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["sweep-report", str(swept), "--out", str(out), "--panels", "2", "--seed", "1", "--quiet"]) == 0
    said = capsys.readouterr()
    assert str(out / "index.html") in said.out and said.err == ""
    assert "Random done images (seed 1)" in (out / "index.html").read_text(encoding="utf-8")


def test_cli_errors_are_one_line(swept, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    cases = [
        ([str(tmp_path / "missing"), "--out", str(tmp_path / "a")], "does not exist"),
        ([str(tmp_path / "folder"), "--out", str(tmp_path / "a")], "cannot open the store"),
        ([str(swept), "--out", str(tmp_path / "file" / "sub")], "cannot create the report folder"),
        ([str(swept), "--out", str(tmp_path / "file")], "cannot create the report folder"),
        ([str(swept), "--out", str(tmp_path / "a"), "--panels", "-1"], "--panels must be at least 0"),
    ]
    for argv, message in cases:
        assert main(["sweep-report", *argv, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("zfaccel sweep-report: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "a").exists()
