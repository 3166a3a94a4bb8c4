"""Benchmark of approximate occlusion: speed beside quality, in the same run.

Quality: the bundled model on held-out shapes images (window 16, strides 2 and 4); for each
setting of the projective-field threshold ``tau`` and of drill-down, the mean and worst SSIM
(zfaccel.metrics.ssim) of the probability map (Fig. 7d, data range 1) and of the feature map
(Fig. 7b) against the exact sweep. Speed: positions/s of the requested grid against full
re-inference and exact incremental inference, on the bundled model and on ZFNet with random
weights at 224 px (window 32, strides 8 and 4), with the MAC ratios. The chosen default is the
fastest setting on ZFNet at window 32 stride 8 whose mean probability-map SSIM stays >= 0.9 at
both strides; ``draw`` plots speed-up against mean SSIM.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from zfaccel.analysis.occlusion import Approximation, Occlusion, grid
from zfaccel.bench.results import RateRow
from zfaccel.bench.timing import measure
from zfaccel.demo.shapes import demo_test_set
from zfaccel.metrics import ssim
from zfaccel.models import pretrained_small, zfnet

TAUS, DRILLS = (1.0, 0.8, 0.6, 0.4), (None, 0.1, 0.15, 0.25, 0.3, 0.5)
QUICK_TAUS, QUICK_DRILLS = (1.0, 0.6), (None, 0.15, 0.3)
SSIM_BAR = 0.9  # the mean SSIM the default must keep
SPEED_BAR = 10.0  # the speed-up over full re-inference the issue asks of the default (ZFNet 224 px, 32 / 8)
UNIT = "positions/s"


def settings(quick: bool) -> list[Approximation]:
    taus, drills = (QUICK_TAUS, QUICK_DRILLS) if quick else (TAUS, DRILLS)
    return [Approximation(tau=t, drill_down=d) for t in taus for d in drills]


def name(a: Approximation) -> str:
    return "exact" if a.exact else f"tau {a.tau:g}" + ("" if a.drill_down is None else f", drill-down {a.drill_down:g}")


def _seconds(fn, device: torch.device) -> float:
    return measure(fn, device, warmup=0, reps=1).median_ms / 1e3


def _rates(runs: dict, count: int, device: torch.device, rounds: int) -> dict[str, float]:
    """positions/s of each run: medians of ``rounds`` interleaved rounds."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for k, fn in runs.items():
            times[k].append(_seconds(fn, device))
    return {k: count / sorted(t)[len(t) // 2] for k, t in times.items()}


def quality(device: torch.device, quick: bool) -> Iterator[RateRow]:
    """The bundled model: SSIM of every setting against the exact maps, and its speed."""
    model = pretrained_small().to(device)
    data = demo_test_set(10 if quick else 100)
    images = torch.stack([data[i][0] for i in range(len(data))]).to(device)
    labels = [data[i][1] for i in range(len(data))]
    occ = Occlusion(model)
    for stride in (4,) if quick else (2, 4):
        n = grid((64, 64), (16, 16), (stride, stride))
        count = len(images) * n[0] * n[1]

        def sweep(a: Approximation | None = None, incremental: bool = True, s: int = stride):
            return occ.sweep(images, window=16, stride=s, labels=labels, approximate=a, incremental=incremental)

        exact = sweep()  # also the warm-up
        base = _rates({"exact": sweep, "full": lambda: sweep(incremental=False)}, count, device, 1)
        for a in settings(quick):
            if a.exact:
                continue
            res = []
            rate = count / _seconds(lambda a=a, res=res: res.append(sweep(a)), device)
            p, f = ssim(res[0].prob, exact.prob, data_range=1.0), ssim(res[0].feature, exact.feature)
            yield RateRow(
                "occlusion_approx",
                f"bundled model, {len(images)} images, window 16 stride {stride}: {name(a)}",
                UNIT,
                "full re-inference",
                base["full"],
                {"approximate": rate},
                {
                    "exact incremental": f"{base['exact']:.3g} {UNIT}",
                    "prob SSIM mean / worst": f"{float(p.mean()):.3f} / {float(p.min()):.3f}",
                    "feature SSIM mean / worst": f"{float(f.mean()):.3f} / {float(f.min()):.3f}",
                    "vs exact": f"{rate / base['exact']:.2f}x",
                    "MACs spent / exact / full": _macs(res[0].macs),
                },
                {
                    "prob_ssim_mean": float(p.mean()),
                    "prob_ssim_worst": float(p.min()),
                    "feature_ssim_mean": float(f.mean()),
                    "feature_ssim_worst": float(f.min()),
                    **_macs_values(res[0].macs),
                },  # fmt: skip
            )


def _macs_values(macs: dict | None) -> dict[str, float]:
    """MACs spent and those of full re-inference, per MAC of the exact engine."""
    return {} if not macs else {"macs_spent_over_exact": macs["spent"] / macs["exact"],
                                "macs_full_over_exact": macs["full"] / macs["exact"]}  # fmt: skip


def _macs(macs: dict | None) -> str:
    if not macs:
        return ""
    return f"{macs['spent'] / macs['exact']:.2f} / 1 / {macs['full'] / macs['exact']:.2f}"


def speed(device: torch.device, quick: bool) -> Iterator[RateRow]:
    """ZFNet at 224 px: every setting's positions/s against full re-inference and exact incremental."""
    torch.manual_seed(0)
    model = zfnet().eval().to(device)
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    occ = Occlusion(model)
    for stride in (8,) if quick else (8, 4):
        count = len(images) * ((224 - 32) // stride + 1) ** 2
        sweep = lambda a=None, s=stride: occ.sweep(images, window=32, stride=s, approximate=a)  # noqa: E731
        sweep()  # warm-up
        chosen = settings(quick) if stride == 8 else [Approximation.default()]
        runs = {"full": lambda s=stride: occ.sweep(images, window=32, stride=s, incremental=False), "exact": sweep}
        spent: dict[str, dict] = {}  # each setting's MAC report, from its timed runs
        runs.update({name(a): (lambda a=a, run=sweep, out=spent: out.__setitem__(name(a), run(a).macs))
                     for a in chosen if not a.exact})  # fmt: skip
        rate = _rates(runs, count, device, 1 if quick else 3)
        full, exact = rate.pop("full"), rate.pop("exact")
        for a in chosen:
            if a.exact:
                continue
            macs = spent[name(a)]
            yield RateRow(
                "occlusion_approx", f"zfnet 224 px, window 32 stride {stride} ({count} positions): {name(a)}",
                UNIT, "full re-inference", full, {"approximate": rate[name(a)]},
                {"exact incremental": f"{exact:.3g} {UNIT}", "vs exact": f"{rate[name(a)] / exact:.2f}x",
                 "MACs spent / exact / full": _macs(macs)},
                {"vs_exact": rate[name(a)] / exact, **_macs_values(macs)},
            )  # fmt: skip


def rows(device: torch.device, quick: bool, roofline_gbs: float, warmup: int, reps: int) -> Iterator[RateRow]:
    yield from quality(device, quick)
    yield from speed(device, quick)


def _setting(case: str) -> str:
    return case.rsplit(": ", 1)[1]


def choose(rows_: list[RateRow]) -> tuple[str | None, dict[str, float], dict[str, float]]:
    """(the fastest setting on ZFNet 224 px, window 32 stride 8, whose mean probability-map SSIM is >=
    SSIM_BAR at every stride of the bundled model; the mean SSIM per setting; the speed-up per setting).

    "Fastest" counts the multiply-accumulates spent, not the measured time: at 224 px a tau of 0.8
    cuts no MAC, so a faster time for it is run-to-run noise; equal counts go to the higher SSIM."""
    worst_mean: dict[str, float] = {}
    for r in rows_:
        if r.case.startswith("bundled"):
            mean = r.values["prob_ssim_mean"]
            key = _setting(r.case)
            worst_mean[key] = min(worst_mean.get(key, 1.0), mean)
    speedup = {_setting(r.case): r.ours["approximate"] / r.reference_rate for r in rows_
               if r.case.startswith("zfnet 224 px, window 32 stride 8")}  # fmt: skip
    spent = {_setting(r.case): r.values["macs_spent_over_exact"] for r in rows_
             if r.case.startswith("zfnet 224 px, window 32 stride 8")}  # fmt: skip
    good = [k for k, m in worst_mean.items() if m >= SSIM_BAR and k in speedup]
    best = min(good, key=lambda k: (round(spent[k], 3), -worst_mean[k])) if good else None
    return best, worst_mean, speedup


def draw(rows_: list[RateRow], folder: Path) -> Path | None:
    """Speed-up over full re-inference (ZFNet 224 px, window 32 stride 8) against mean probability-map
    SSIM (the bundled model), one point per setting, as occlusion_approx.png in ``folder``."""
    best, quality_, speed_ = choose(rows_)
    keys = [k for k in speed_ if k in quality_]
    if not keys:
        return None
    from matplotlib.lines import Line2D

    from zfaccel.analysis.plotting import CYCLE, FONT, SMALL, TITLE, new_figure, save

    fig = new_figure(8.5, 4.8)
    ax = fig.add_subplot()
    # 16 settings: one colour per tau and one marker per drill-down share (a legend, not 16 labels
    # that overlap where settings land close together)
    taus = sorted({k.split(",")[0] for k in keys}, reverse=True)
    drills = sorted({k.partition(", ")[2] or "no drill-down" for k in keys})
    markers = "osD^vP"
    for k in keys:
        tau, _, drill = k.partition(", ")
        ax.scatter(quality_[k], speed_[k], color=CYCLE[taus.index(tau) % len(CYCLE)],
                   marker=markers[drills.index(drill or "no drill-down") % 6], s=36)  # fmt: skip
    if best is not None:
        ax.annotate(f"default: {best}", (quality_[best], speed_[best]), fontsize=SMALL, xytext=(-10, 18),
                    textcoords="offset points", ha="right", arrowprops={"arrowstyle": "->", "lw": 0.8})  # fmt: skip

    def key(colour: str, marker: str, label: str) -> Line2D:
        return Line2D([], [], color=colour, marker=marker, linestyle="", label=label)

    handles = [key(CYCLE[i % len(CYCLE)], "o", t) for i, t in enumerate(taus)]
    handles += [key("grey", markers[i % 6], d) for i, d in enumerate(drills)]
    ax.legend(handles=handles, fontsize=FONT, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.axvline(SSIM_BAR, color="tab:red", linestyle="--", linewidth=1)
    ax.axhline(SPEED_BAR, color="tab:red", linestyle=":", linewidth=1)
    ax.margins(x=0.08, y=0.12)
    ax.set_xlabel("mean SSIM of the probability map against the exact one (bundled model, worst stride)", fontsize=FONT)
    ax.set_ylabel("speed-up over full re-inference\n(ZFNet 224 px, window 32 stride 8)", fontsize=FONT)
    ax.set_title("Approximate occlusion: speed against quality (red: the bars, SSIM 0.9 and 10x)", fontsize=TITLE)
    path = Path(folder) / "occlusion_approx.png"
    save(fig, path)
    return path
