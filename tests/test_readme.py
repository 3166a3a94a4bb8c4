"""The README stays true: every Python block runs as written (with small stand-ins for the files it
names), and the CLI summary lists every option of every command, and no option that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zfaccel.cli.main import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(kind: str) -> list[str]:
    """The fenced blocks of the README whose info string is ``kind`` ("" for plain fences), in order."""
    found, inside, lines = [], None, []
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            if inside is None:
                inside, lines = line[3:].strip(), []
            else:
                if inside == kind:
                    found.append("\n".join(lines) + "\n")
                inside = None
        elif inside is not None:
            lines.append(line)
    return found


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    """The files the README's examples name: two photos and a folder of four, in the current folder."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    picture = lambda h, w: Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))  # noqa: E731
    picture(300, 240).save("cat.jpg")
    picture(200, 260).save("dog.png")
    Path("photos").mkdir()
    for i in range(4):
        picture(240, 240).save(f"photos/{i}.png")
    return tmp_path


def test_every_python_block_runs(stand_ins, capsys):
    code = blocks("python")
    assert len(code) >= 4, "the README lost its Python examples"
    namespace: dict = {}
    for i, block in enumerate(code):
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
        except Exception as err:  # say which block broke, with its text
            raise AssertionError(f"README python block {i} fails: {type(err).__name__}: {err}\n{block}") from err
    for name in ("conv5.png", "occ.png", "most_sensitive.png", "shapes.zarr"):
        assert (stand_ins / name).exists(), name
    out = capsys.readouterr().out
    assert "TopActivations(layer='conv5'" in out and "OcclusionResult(images=2" in out and "SweepStore(" in out


def cli_lines() -> dict[str, str]:
    (summary,) = [b for b in blocks("") if b.lstrip().startswith("zfaccel demo")]
    lines = {}
    for line in summary.splitlines():
        words = line.split()
        if len(words) > 1 and words[0] == "zfaccel" and not words[1].startswith("-"):
            lines[words[1]] = line
    return lines


def test_the_cli_summary_lists_every_command_and_option():
    _, commands = build_parser()
    lines = cli_lines()
    assert sorted(lines) == sorted(commands), "a command is missing from the README's CLI summary, or extra"
    for name, parser in commands.items():
        options = {o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
        written = set(re.findall(r"--[a-z][a-z0-9-]*", lines[name]))
        assert options - written == set(), f"zfaccel {name}: options missing from the README: {options - written}"
        assert written - options == set(), (
            f"zfaccel {name}: the README names options that do not exist: {written - options}"
        )
