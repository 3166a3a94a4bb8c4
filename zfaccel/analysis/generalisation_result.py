"""What the feature-generalisation study (zfaccel.analysis.generalisation) found: table, figure and JSON record."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zfaccel.atomic import replace_atomically

if TYPE_CHECKING:  # matplotlib loads only to draw (import zfaccel stays light)
    from matplotlib.figure import Figure

FORMAT = "zfaccel.generalisation/1"  # the "format" of a saved record
METHODS = ("frozen", "scratch")
FONT = 10  # points: the smallest text of the figure is this
COLOURS = {"frozen": "#1f6fb4", "scratch": "#d1495b"}
LABELS = {"frozen": "frozen features + new softmax", "scratch": "same architecture from scratch"}
UNDERFIT = 0.95  # a scratch net that fits less of its own training examples than this is undertrained


@dataclass(repr=False)
class GeneralisationResult:
    """Test accuracies of the two methods for each number of training examples per class.

    shots: examples per class, ascending. frozen, scratch: (len(shots), seeds) float64 test accuracies in
    [0, 1] of the frozen features + new softmax and of the same architecture trained from scratch;
    scratch_fit: the same shape, each scratch net's accuracy on its own training examples (how far it
    trained). num_classes: classes of the new task (chance is 1 / num_classes); test_size: test images;
    settings: how it was run (epochs, learning rates, weight decays, ...); seconds: wall time of the study.
    """

    shots: tuple[int, ...]
    frozen: np.ndarray
    scratch: np.ndarray
    scratch_fit: np.ndarray
    num_classes: int
    test_size: int
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def seeds(self) -> int:
        return self.frozen.shape[1]

    @property
    def _draws(self) -> str:
        return f"{self.seeds} draw{'s' * (self.seeds != 1)}"

    @property
    def chance(self) -> float:
        return 1.0 / self.num_classes

    def mean(self, method: str) -> np.ndarray:
        """(len(shots),) mean test accuracy over seeds of ``method``: "frozen" or "scratch"."""
        return self._accuracies(method).mean(1)

    def std(self, method: str) -> np.ndarray:
        """(len(shots),) standard deviation over seeds (ddof 0: zeros for one seed) of ``method``."""
        return self._accuracies(method).std(1)

    def _accuracies(self, method: str) -> np.ndarray:
        if method not in METHODS:
            raise ValueError(f"method must be 'frozen' or 'scratch', got {method!r}")
        return getattr(self, method)

    def __repr__(self) -> str:
        pct = lambda a: "[" + ", ".join(f"{100 * v:.1f}" for v in a) + "]"
        return (
            f"GeneralisationResult(shots={self.shots}, seeds={self.seeds}, classes={self.num_classes}, "
            f"frozen%={pct(self.mean('frozen'))}, scratch%={pct(self.mean('scratch'))})"
        )

    def markdown(self) -> str:
        """A markdown table: a row per number of examples, mean ± std over seeds in percent, the gap, and how
        well the scratch nets fit their own training examples; then a line saying what was measured."""
        lines = [
            "| examples per class | frozen features + new softmax | same net from scratch | difference "
            "| scratch nets' training accuracy |",
            "|---:|---:|---:|---:|---:|",
        ]
        f_mean, f_std, s_mean, s_std = (
            100 * v for v in (self.mean("frozen"), self.std("frozen"), self.mean("scratch"), self.std("scratch"))
        )
        fit = 100 * self.scratch_fit.mean(1)
        for i, n in enumerate(self.shots):
            lines.append(
                f"| {n} | {f_mean[i]:.1f} ± {f_std[i]:.1f} % | {s_mean[i]:.1f} ± {s_std[i]:.1f} % "
                f"| {f_mean[i] - s_mean[i]:+.1f} | {fit[i]:.0f} % |"
            )
        lines += [
            "",
            f"Test accuracy on {self.test_size} images of {self.num_classes} classes "
            f"(chance {100 * self.chance:.1f} %), mean ± std over {self._draws} of the training examples.",
        ]
        under = [n for n, f in zip(self.shots, self.scratch_fit.mean(1), strict=True) if f < UNDERFIT]
        if under:
            lines.append(
                f"The scratch nets fit under {UNDERFIT:.0%} of their training examples at "
                f"{', '.join(map(str, under))} per class: more epochs would likely raise their accuracy."
            )
        return "\n".join(lines)

    def render(self, path: str | os.PathLike | None = None) -> Figure:
        """The paper's Fig. 9 curve: test accuracy against examples per class for both methods, error bars
        of one std over seeds and each seed's accuracy a faint dot, chance dashed. Saves a PNG at ``path``
        when given; returns the Figure."""
        from zfaccel.analysis.plotting import new_figure, save

        fig = new_figure(6.4, 4.4)
        ax = fig.add_subplot()
        x = np.asarray(self.shots)
        for method in METHODS:
            ax.errorbar(
                x,
                100 * self.mean(method),
                yerr=100 * self.std(method),
                color=COLOURS[method],
                marker="o",
                markersize=5,
                linewidth=2,
                capsize=4,
                label=LABELS[method],
            )
            # Each draw as a faint dot: with 3 draws a std hides whether one draw or all of them moved.
            runs = 100 * self._accuracies(method)
            ax.scatter(np.repeat(x, runs.shape[1]), runs.ravel(), s=14, color=COLOURS[method], alpha=0.35, lw=0)
        ax.axhline(
            100 * self.chance, color="0.35", linestyle="--", linewidth=1.2, label=f"chance ({100 * self.chance:.3g} %)"
        )
        ax.set_xticks(x)
        ax.set_xlim(0, x.max() * 1.05 + 1)
        ax.set_ylim(0, 100)
        ax.set_xlabel("training examples per class", fontsize=FONT + 1)
        ax.set_ylabel("test accuracy (%)", fontsize=FONT + 1)
        ax.tick_params(labelsize=FONT)
        ax.grid(alpha=0.3)
        # Below the axes: inside, it would cover one curve or the other wherever they run.
        handles, labels = ax.get_legend_handles_labels()  # the chance line comes first: put it last
        fig.legend(
            handles[1:] + handles[:1],
            labels[1:] + labels[:1],
            loc="outside lower center",
            ncols=2,
            fontsize=FONT,
            frameon=False,
        )
        model = self.settings.get("model") or "the model"
        task = self.settings.get("dataset") or f"{self.num_classes} classes"
        ax.set_title(
            f"{model} on a task it never saw: {task}\n"
            f"test accuracy on {self.test_size} images, mean ± std over {self._draws} of the examples",
            fontsize=FONT + 1,
        )
        return save(fig, path)

    def to_dict(self) -> dict:
        """A JSON-ready dict (accuracies as nested lists)."""
        return {
            "format": FORMAT,
            "shots": list(self.shots),
            "frozen": self.frozen.tolist(),
            "scratch": self.scratch.tolist(),
            "scratch_fit": self.scratch_fit.tolist(),
            "num_classes": self.num_classes,
            "test_size": self.test_size,
            "settings": self.settings,
            "seconds": round(self.seconds, 2),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the record as JSON (atomically); ``load`` reads it back."""
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        return replace_atomically(path, lambda tmp: Path(tmp).write_text(text))

    @classmethod
    def load(cls, path: str | os.PathLike) -> GeneralisationResult:
        """A record written by ``save``; ValueError when the file is not one."""
        record = json.loads(Path(path).read_text())
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise ValueError(f"{os.fspath(path)!r} is not a generalisation record ({FORMAT})")
        shots = tuple(int(n) for n in record["shots"])
        arrays = [np.asarray(record[k], dtype=np.float64) for k in ("frozen", "scratch", "scratch_fit")]
        if any(a.ndim != 2 or a.shape != arrays[0].shape for a in arrays) or arrays[0].shape[0] != len(shots):
            raise ValueError(
                f"{os.fspath(path)!r}: accuracies of shapes {[a.shape for a in arrays]} do not "
                f"match {len(shots)} shot counts"
            )
        return cls(
            shots,
            *arrays,
            int(record["num_classes"]),
            int(record["test_size"]),
            dict(record.get("settings", {})),
            float(record.get("seconds", 0.0)),
        )
