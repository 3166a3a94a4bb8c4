"""Read ``zfaccel bench`` records against the GPU bars: the last step of ``bench/gpu_check.sh``.

    python bench/gpu_bars.py RECORD.json|FOLDER ...

- switch ops (max_pool2d_switches, max_unpool2d_switches): each backend's share of the copy
  roofline and its speed-up over aten; a row meets the bar when one backend reaches
  >= 85 % of the roofline and is faster than aten;
- occlusion_batch: the share of the roofline, reported;
- occlusion: the speed-up over Captum, over our full re-inference, and the share of the MAC
  ceiling, reported (docs/performance.md explains each limit).

Exit status: 0 every switch-op row meets the bar, 1 one misses it or a suite failed, 2 no record.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOFLINE_BAR = 85.0
SWITCH_OPS = ("max_pool2d_switches", "max_unpool2d_switches")


def records(paths: list[str]) -> list[Path]:
    found = []
    for p in map(Path, paths):
        found += sorted(p.glob("*.json")) if p.is_dir() else [p] if p.is_file() else []
    return found


def backend_figures(row: dict) -> dict[str, tuple[float, float]]:
    """backend -> (% of the copy roofline, speed-up over the anchor)."""
    return {
        backend: (row["min_bytes"] / (ms * 1e-3) / 1e9 / row["roofline_gbs"] * 100, row["reference_ms"] / ms)
        for backend, ms in row["ours_ms"].items()
    }


def read(path: Path) -> tuple[list[str], bool]:
    """The report's lines for one record, and whether every bar is met."""
    record = json.loads(path.read_text())
    lines = [f"{path}: {record['device']}, torch {record['torch']}, triton {record['triton']}, "
             f"copy {record['copy_bandwidth_gbs']:.0f} GB/s"]  # fmt: skip
    met = True
    for row in record["rows"]:
        where = f"{row['op']} {row.get('shape', row.get('case', ''))} {row.get('dtype', '')} {row.get('layout', '')}"
        if "ours_ms" in row:  # a timed row (older records carry no "kind")
            figures = backend_figures(row)
            text = ", ".join(f"{b} {pct:.0f}% roofline {x:.2f}x" for b, (pct, x) in figures.items())
            if row["op"] in SWITCH_OPS:
                ok = any(pct >= ROOFLINE_BAR and x > 1 for pct, x in figures.values())
                met &= ok
                lines.append(f"{'meets' if ok else 'MISSES':<7} {where.strip()}: {text}")
            else:
                lines.append(f"{'':<7} {where.strip()}: {text}")
        elif row["op"] == "occlusion":
            notes = row.get("notes", {})
            vs_captum = "Captum not measured" if row["speedup"] is None else f"{row['speedup']:.2f}x Captum"
            lines.append(
                f"{'':<7} {row['case']}: {vs_captum}, {notes.get('incremental vs full', '?')} full re-inference, "
                f"{notes.get('of ceiling', '?')} of the {notes.get('MAC ceiling', '?')} MAC ceiling"
            )
    for suite, error in record.get("failed_suites", {}).items():
        met = False
        lines.append(f"FAILED  suite {suite}: {error}")
    return lines, met


def main(argv: list[str]) -> int:
    paths = records(argv)
    if not paths:
        print("no bench record (.json) found in", " ".join(argv) or "(no argument)")
        return 2
    all_met = True
    for path in paths:
        lines, met = read(path)
        all_met &= met
        print("\n".join(lines))
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
