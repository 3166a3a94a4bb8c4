"""zfaccel info (what a bug report needs) and zfaccel --version (one line)."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from zfaccel import native
from zfaccel.cli import info
from zfaccel.cli.main import main, version_line


def test_info_on_cpu(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("zfaccel ")
    for start in ("Python  ", "torch   ", "Triton  ", "CUDA    "):
        assert any(line.startswith(start) for line in lines), start
    assert "native build (zfaccel._native)" in lines
    if native.extension() is None:  # e.g. zfaccel imported from a checkout beside a non-editable install
        assert f"  loads: no ({native.import_error()})" in lines
    else:
        assert "  loads: yes" in lines
        assert any(line.startswith("  OpenMP: ") and "max threads" in line for line in lines)
        assert any(line.startswith("  CUDA kernels: ") for line in lines)
    assert "backends (in auto's order)" in lines and any(line.startswith("  cpu: ") for line in lines)
    if not torch.cuda.is_available():
        assert "GPU visible: no" in out and "GPU" not in lines and "  cuda: " not in out


def test_info_on_a_gpu(monkeypatch, capsys):
    """A visible GPU adds its backends, name, architecture and the compile check for that architecture."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Some GPU")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (9, 0))
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(info, "triton_version", lambda: "3.6.0")
    checked = []
    monkeypatch.setattr(info, "compile_check_line", lambda arch: checked.append(arch) or f"checked sm_{arch}")
    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert checked == [90]
    assert any(line.startswith("  cuda: ") for line in lines)
    assert lines[-3:] == ["GPU", "  GPU 0: Some GPU, sm_90", "  checked sm_90"]


@pytest.mark.parametrize("spills, expected", [(0, "yes (2 compilations, 40 registers at most, no spill)"),
                                              (8, "NO, 1 of 2 fail or spill")])  # fmt: skip
def test_compile_check_line(monkeypatch, spills, expected):
    def fake_run(cmd, env, **kwargs):
        assert cmd[-4:-2] == ["--arch", "80"] and "TRITON_INTERPRET" not in env
        record = {"kernel": "k", "arch": 80, "config": "c", "dtype": "float32", "ok": True, "error": None,
                  "registers": 40, "spills": 0, "shared_bytes": 0}  # fmt: skip
        with open(cmd[-1], "w") as f:
            json.dump([record, {**record, "spills": spills}], f)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(info.subprocess, "run", fake_run)
    assert info.compile_check_line(80).startswith(f"Triton kernels compile for sm_80: {expected}")


def test_version_is_one_line(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == version_line() + "\n"
