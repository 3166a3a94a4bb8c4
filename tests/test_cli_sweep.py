"""zfaccel sweep: the command end to end, --dry-run, one-line errors; real SIGKILLs at random moments
then a rerun that resumes to the uninterrupted result; two ranks under torchrun (gloo) equal one process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import zfaccel
from zfaccel.analysis.occlusion.store import DONE, FAILED, PENDING
from zfaccel.cli.main import main
from zfaccel.demo.export import write_image_folder

ARRAYS = ("prob", "feature", "label", "clean_prob", "clean_label", "clean_feature", "target", "feature_channel",
          "true_label", "status")  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = write_image_folder(tmp_path_factory.mktemp("sweep") / "data", 24)
    (path / "ring" / "broken.png").write_bytes(b"not a png")
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_same_store(a, b, atol=1e-6):
    for name in ARRAYS:
        np.testing.assert_allclose(a.group[name][:], b.group[name][:], rtol=0, atol=atol, err_msg=name)
    assert a.path[:].tolist() == b.path[:].tolist()


def test_sweep_writes_the_store_and_reports(capsys, data, tmp_path):
    store = tmp_path / "s.zarr"
    code, out, err = run(capsys, "sweep", data, "--out", store, "--window", "32", "--stride", "16", "--chunk", "4",
                         "--target", "label", "--quiet")  # fmt: skip
    assert code == 0, err
    assert f"24 images done, 1 failed, 0 pending in {store}" in out
    assert "failed: ring/broken.png: cannot read image" in err
    s = zfaccel.open_sweep(store)
    assert s.attrs["target"] == "label" and s.attrs["chunk"] == 4 and len(s) == 25
    code, out, _ = run(capsys, "sweep", data, "--out", store, "--window", "32", "--stride", "16", "--chunk", "4",
                       "--target", "label", "--quiet")  # fmt: skip
    assert code == 0 and "24 images done" in out  # a rerun of a finished sweep does nothing more


def test_dry_run_writes_nothing(capsys, data, tmp_path):
    code, out, err = run(capsys, "sweep", data, "--out", tmp_path / "s.zarr", "--dry-run")
    assert code == 0, err
    assert "25 images (none done yet), 13 x 13 = 169 occluder positions each" in out
    assert "M exact incremental" in out and "positions/s, so about" in out
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("argv, message", [
    (["{tmp}/none", "--out", "{tmp}/s.zarr"], "DATA '{tmp}/none' does not exist"),
    (["{tmp}/emptydir", "--out", "{tmp}/s.zarr"], "holds no images"),
    (["{data}", "--out", "/proc/forbidden.zarr"], "cannot open the store"),
    (["{data}", "--out", "{tmp}/photos"], "is not an occlusion sweep store"),
    (["{data}", "--out", "{tmp}/s.zarr", "--target", "blob"], "--target 'blob'"),
    (["{data}", "--out", "{tmp}/s.zarr", "--chunk", "0"], "--chunk must be at least 1"),
    (["{data}", "--out", "{tmp}/s.zarr", "--window", "99"], "larger than the images"),
    (["{data}", "--out", "{tmp}/s.zarr", "--tau", "0"], "--tau must lie in (0, 1]"),
    (["{data}", "--out", "{tmp}/s.zarr", "--drill-down", "2"], "--drill-down must lie in (0, 1]"),
    (["{data}", "--out", "{tmp}/s.zarr", "--device", "cuda"], "--device cuda"),
])  # fmt: skip
def test_errors_are_one_line_and_exit_2(capsys, data, tmp_path, argv, message):
    if "cuda" in argv:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA GPU")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "keep.jpg").write_bytes(b"x")
    fill = dict(tmp=tmp_path, data=data)
    code, _, err = run(capsys, "sweep", *[a.format(**fill) for a in argv], "--quiet")
    assert code == 2, err
    assert message.format(**fill) in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_finished_different_store_is_refused_naming_the_setting(capsys, data, tmp_path):
    store = tmp_path / "s.zarr"
    assert run(capsys, "sweep", data, "--out", store, "--window", "32", "--stride", "32", "--quiet")[0] == 0
    code, _, err = run(capsys, "sweep", data, "--out", store, "--window", "16", "--stride", "32", "--quiet")
    assert code == 2 and "window 16x16 differs from the store's 32x32" in err and err.count("\n") == 1


def _command(data, store, *extra):
    # Window 8, stride 2: 29 x 29 positions an image, so that the run lasts several seconds even on a
    # quiet machine (about 3,000 positions/s on 2 cores) and a kill lands mid-run.
    return [sys.executable, "-m", "zfaccel", "sweep", str(data), "--out", str(store), "--window", "8", "--stride",
            "2", "--chunk", "2", "--quiet", *extra]  # fmt: skip


def test_sigkill_at_random_moments_then_rerun_equals_an_uninterrupted_run(data, tmp_path):
    # The reference runs uninterrupted with the same command and thread count as the killed runs: oneDNN's
    # convolutions may round differently at another thread count (1 ulp of some features on a Xeon).
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = subprocess.run(_command(data, tmp_path / "ref.zarr"), env=env, capture_output=True, text=True, cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    reference = zfaccel.open_sweep(tmp_path / "ref.zarr")
    store = tmp_path / "killed.zarr"
    rng = random.Random(1234)
    kills, seen = 0, []
    for _ in range(3):
        proc = subprocess.Popen(_command(data, store), env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                cwd=tmp_path)  # not the checkout: "-m" looks in the current folder first  # fmt: skip
        # Wait for the run to start writing (the store's metadata appears), then kill at a random moment.
        deadline = time.monotonic() + 120
        while not (store / "zarr.json").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        _, err = proc.communicate()
        assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
        seen.append(zfaccel.open_sweep(store).counts()[DONE])
        if proc.returncode == 0:
            break
    assert kills >= 1, "every run finished before its kill: the test killed nothing"
    done = subprocess.run(_command(data, store), env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    final = zfaccel.open_sweep(store)
    assert final.counts() == {PENDING: 0, DONE: 24, FAILED: 1}, seen
    assert_same_store(final, reference)


def test_two_ranks_under_torchrun_equal_one_process(data, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank runs (OMP_NUM_THREADS=1): see the test above
    try:
        single = zfaccel.sweep_dataset(zfaccel.models.pretrained_small(), data, tmp_path / "one.zarr", window=32,
                                       stride=16, chunk=3, target="label")  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    store = tmp_path / "two.zarr"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
           str(29500 + os.getpid() % 1000), "-m", "zfaccel", "sweep", str(data), "--out", str(store), "--window", "32",
           "--stride", "16", "--chunk", "3", "--target", "label", "--quiet"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("images done") == 1  # rank 0 reports, once
    assert_same_store(zfaccel.open_sweep(store), single)
