"""bench/gpu_check.sh and its helpers, as far as a machine without a GPU can check them: the script's
syntax, its dry run (the steps, commands and time limits), its bookkeeping (logs, exit codes,
timeouts, a spent budget) with a stand-in Python, the sanitizer driver's calls on CPU tensors, and
the reading of bench records against the bars."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_check.sh"
STEPS = ["preflight", "install", "gpu-tests", "full-suite", "sanitize", "memcheck", "racecheck", "bench", "bars"]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def dry_run(*args: str) -> list[tuple[str, int, str]]:
    """(step, limit in seconds, command) of each step the dry run lists."""
    out = check("--dry-run", *args)
    assert out.returncode == 0, out.stderr
    return [(m[1], int(m[2]), m[3]) for m in re.finditer(r"^\d+\. (\S+) \(limit (\d+) s\): (.*)$", out.stdout, re.M)]


def test_the_script_parses_and_is_shellcheck_clean():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    out = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_the_dry_run_lists_every_step_within_ten_minutes(tmp_path):
    out = tmp_path / "results"
    steps = dry_run("--out", str(out))
    assert [s for s, _, _ in steps] == STEPS
    commands = {s: c for s, _, c in steps}
    assert "pip install --no-build-isolation --no-deps --no-index -e ." in commands["install"]
    assert "pytest -m gpu" in commands["gpu-tests"] and "pytest -x -q" in commands["full-suite"]
    for tool in ("memcheck", "racecheck"):
        assert f"compute-sanitizer --tool {tool}" in commands[tool]  # by name, or by its path where found
        assert "PYTORCH_NO_CUDA_MEMORY_CACHING=1" in commands[tool]
        assert "bench/gpu_sanitize.py --device cuda" in commands[tool]
    assert f"zfaccel bench --device cuda --markdown --out {out}" in commands["bench"]
    assert "--quick" not in commands["bench"]
    assert f"bench/gpu_bars.py {out}" in commands["bars"]
    # The limits, plus timeout's 5 s grace for each step, stay under 10 minutes.
    assert sum(limit + 5 for _, limit, _ in steps) < 600
    assert "within 570 s" in check("--dry-run").stdout  # the budget that cuts every step, the bench's end too
    assert not out.exists(), "a dry run writes nothing"


def test_the_dry_run_takes_quick_steps_and_limits():
    steps = dry_run("--quick", "--steps", "bench,bars", "--limit", "bench=42")
    assert [(s, limit) for s, limit, _ in steps] == [("bench", 42), ("bars", 5)]
    assert "zfaccel bench --device cuda --quick" in steps[0][2]
    assert f"--out bench/results/gpu-{datetime.date.today().isoformat()}" in steps[0][2]


@pytest.mark.parametrize("args", [["--steps", "lint"], ["--limit", "lint=3"], ["--budget", "soon"], ["--frobnicate"]])
def test_bad_arguments_exit_2(args):
    out = check("--dry-run", *args)
    assert out.returncode == 2 and out.stderr


def stand_in_python(tmp_path: Path) -> Path:
    """A 'python' that sleeps when asked to run the sanitizer driver and succeeds at anything else."""
    fake = tmp_path / "python"
    fake.write_text('#!/usr/bin/env bash\n[[ "$*" == *gpu_sanitize.py* ]] && exec sleep 30\nexit 0\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return fake


def test_a_run_logs_each_step_and_goes_on_past_a_timeout(tmp_path):
    out = tmp_path / "results"
    env = {"PYTHON": str(stand_in_python(tmp_path))}
    run = check("--out", str(out), "--steps", "sanitize,bars", "--limit", "sanitize=1", env=env)
    assert run.returncode == 1, run.stdout + run.stderr
    summary = (out / "summary.txt").read_text()
    assert re.search(r"^sanitize\s+TIMEOUT\s+124\s+\d+/1\s+05-sanitize\.log$", summary, re.M), summary
    assert re.search(r"^bars\s+PASS\s+0\s+\d+/5\s+09-bars\.log$", summary, re.M), summary
    log = (out / "05-sanitize.log").read_text()
    assert log.startswith("# step: sanitize\n# command: ") and "# exit code: 124 (TIMEOUT)" in log


def test_a_spent_budget_skips_the_remaining_steps(tmp_path):
    out = tmp_path / "results"
    run = check("--out", str(out), "--steps", "preflight,bars", "--budget", "3")
    assert run.returncode == 1
    summary = (out / "summary.txt").read_text()
    assert re.search(r"^preflight\s+SKIPPED", summary, re.M) and re.search(r"^bars\s+SKIPPED", summary, re.M)


def test_the_sanitizer_driver_runs_every_op_on_cpu_tensors():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    env.pop("ZFACCEL_BACKEND", None)
    args = ["--device", "cpu", "--require", "native", "triton"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_sanitize.py"), *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    ran = {tuple(line.split()[1:3]) for line in out.stdout.splitlines() if line.startswith("ok ")}
    ops = ("max_pool2d_switches", "max_unpool2d_switches", "occlusion_batch", "spatial_argmax")
    assert ran == {(backend, op) for backend in ("native", "triton") for op in ops}
    assert out.stdout.splitlines()[-1] == "12 calls ran and matched the reference, 0 skipped, 0 failed"


def test_the_driver_reports_a_missing_required_backend():
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    driver = str(ROOT / "bench" / "gpu_sanitize.py")
    out = subprocess.run(
        [sys.executable, driver, "--device", "cpu", "--backends", "native", "--require", "triton"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert out.returncode == 2 and out.stdout.startswith("REQUIRED triton cannot run cpu tensors")


def test_one_config_trims_every_autotuned_kernel():
    if importlib.util.find_spec("triton") is None:
        pytest.skip("Triton is not installed")
    code = (
        "import sys; sys.path.insert(0, 'bench'); import gpu_sanitize, importlib, pkgutil\n"
        "import triton.runtime.autotuner as a, zfaccel.triton_kernels as p\n"
        "print(gpu_sanitize.trim_autotuning())\n"
        "mods = [importlib.import_module(p.__name__ + '.' + i.name) for i in pkgutil.iter_modules(p.__path__)]\n"
        "print(max(len(v.configs) for m in mods for v in vars(m).values() if isinstance(v, a.Autotuner)))\n"
    )
    env = {**os.environ, "TRITON_INTERPRET": "0"}  # a separate process: the trimming changes module state
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    trimmed, most = out.stdout.splitlines()
    assert "max_pool2d_switches" in trimmed and most == "1"


def test_the_driver_compares_exactly_and_nan_aware():
    mismatch = load("gpu_sanitize").mismatch
    a = torch.tensor([1.0, float("nan")])
    assert mismatch("spatial_argmax", (a, torch.tensor([0, 1])), (a.clone(), torch.tensor([0, 1]))) is None
    assert "1 of 2 values differ" in mismatch("spatial_argmax", a, torch.tensor([2.0, float("nan")]))
    assert mismatch("max_unpool2d_switches", a, a + 1e-5) is None  # the unpool's sums: to rounding


def record(rows: list[dict], failed: dict | None = None) -> dict:
    return {"device": "NVIDIA H200", "torch": "2.11.0", "triton": "3.6.0", "copy_bandwidth_gbs": 4300.0,
            "rows": rows, "failed_suites": failed or {}}  # fmt: skip


def pool_row(ms: dict[str, float], reference_ms: float) -> dict:
    # 97,574,400 bytes at 4,300 GB/s: 22.7 us at the roofline, 26.7 us at 85 %.
    return {"op": "max_pool2d_switches", "shape": "(16, 96, 110, 110)", "dtype": "float32", "layout": "nchw",
            "kind": "time", "min_bytes": 97574400, "roofline_gbs": 4300.0, "reference_ms": reference_ms,
            "ours_ms": ms}  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "failed", "status", "verdict"),
    [
        ([pool_row({"triton": 0.025, "native": 0.05}, 0.1)], None, 0, "meets"),
        ([pool_row({"triton": 0.03}, 0.1)], None, 1, "MISSES"),  # 76 % of the roofline
        ([pool_row({"triton": 0.025}, 0.02)], None, 1, "MISSES"),  # slower than aten
        ([pool_row({"triton": 0.025}, 0.1)], {"occlusion": "RuntimeError: boom"}, 1, "FAILED  suite occlusion"),
    ],
)
def test_the_bars(tmp_path, capsys, rows, failed, status, verdict):
    (tmp_path / "cuda-nvidia-h200-2026-12-01.json").write_text(json.dumps(record(rows, failed)))
    assert load("gpu_bars").main([str(tmp_path)]) == status
    assert verdict in capsys.readouterr().out


def test_the_bars_read_the_repository_records(capsys):
    bars = load("gpu_bars")
    assert bars.main([str(ROOT / "bench" / "results")]) == 1  # the CPU is far from a GPU's bars
    out = capsys.readouterr().out
    assert "MISSES  max_pool2d_switches (16, 96, 110, 110) float32 nchw: native" in out
    assert "window 32 stride 8 (625 positions): 3.88x Captum, 4.18x full re-inference" in out
    assert bars.main([]) == 2
