"""zfaccel bench: a suite whose anchor is not installed still reports its own rows; a failing suite
costs no other suite its figures; results go where the user asked, or to the user's data folder."""

from __future__ import annotations

import json
import sys

import pytest

from zfaccel.bench import runner
from zfaccel.bench.results import RateRow
from zfaccel.cli.main import main


def fake_rows(device, quick, roofline, warmup, reps):
    yield RateRow("fake", "case", "things/s", "anchor", 2.0, {"ours": 6.0})


def broken_rows(device, quick, roofline, warmup, reps):
    yield RateRow("broken", "first case", "things/s", "anchor", 1.0, {"ours": 3.0})
    raise RuntimeError("the suite broke after one row")


@pytest.fixture
def suites(monkeypatch):
    monkeypatch.setattr(runner, "SUITES", {"fake": fake_rows, "broken": broken_rows})


def test_a_failing_suite_keeps_every_finished_row(suites, tmp_path):
    result = runner.run("cpu", quick=True, ops=["broken", "fake"], out_dir=tmp_path, show_progress=False)
    assert [r.case for r in result.rows] == ["first case", "case"]
    assert result.failures == {"broken": "RuntimeError: the suite broke after one row"}
    record = json.loads(result.path.read_text())
    assert [r["case"] for r in record["rows"]] == ["first case", "case"]
    assert record["failed_suites"] == result.failures
    text = runner.report(result)
    assert "suite broken failed: RuntimeError" in text and f"saved {result.path}" in text


def test_cli_exits_1_when_a_suite_failed(suites, tmp_path, capsys):
    assert main(["bench", "--quick", "--ops", "fake", "--out", str(tmp_path)]) == 0
    assert main(["bench", "--quick", "--ops", "broken", "--out", str(tmp_path)]) == 1
    assert "suite broken failed" in capsys.readouterr().out


def test_results_go_to_the_data_folder_unless_asked(suites, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--quick", "--ops", "fake"]) == 0
    saved = list((tmp_path / "data" / "zfaccel" / "bench").glob("*.json"))
    assert len(saved) == 1 and f"saved {saved[0]}" in capsys.readouterr().out
    assert not (tmp_path / "bench").exists()  # nothing written under the current folder
    assert main(["bench", "--quick", "--ops", "fake", "--no-save"]) == 0
    assert "saved" not in capsys.readouterr().out


def test_deconvnet_suite_without_captum_reports_its_own_rows(monkeypatch):
    monkeypatch.setitem(sys.modules, "captum", None)  # import captum now fails, as when it is not installed
    from zfaccel.bench import deconvnet

    rows = list(deconvnet.rows(runner.torch.device("cpu"), True, 1.0, 0, 1))
    assert len(rows) == 1
    row = rows[0]
    assert row.reference_rate is None and row.speedup() is None
    assert 'captum is not installed (pip install "zfaccel[bench]")' in row.reference
    assert all(rate > 0 for rate in row.ours.values())
    result = runner.BenchRun(rows, {}, None)
    assert result.missing_anchors() == [row.reference]


@pytest.mark.parametrize("argv, message", [
    (["bench", "--device", "cuda"], "--device cuda needs a CUDA GPU"),
    (["bench", "--threads", "0"], "--threads must be at least 1"),
])  # fmt: skip
def test_bad_arguments_are_one_line_and_exit_2(argv, message, capsys):
    if "cuda" in argv and runner.torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert main(argv + ["--no-save"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_sweep_suite_times_ours_against_the_same_sweep_in_memory(tmp_path):
    from zfaccel.bench import sweep
    from zfaccel.demo.export import write_image_folder
    from zfaccel.models import pretrained_small

    folder = write_image_folder(tmp_path / "data", 4)
    rates = sweep._case(pretrained_small(), folder, 32, 32, runner.torch.device("cpu"), tmp_path, quick=True)
    assert set(rates) == {"in memory", "zfaccel sweep"} and all(r > 0 for r in rates.values())
