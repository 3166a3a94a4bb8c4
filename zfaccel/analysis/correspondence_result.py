"""What the correspondence analysis found (paper Table 1): Delta per layer and part, as numbers, Markdown, PNG.

Two scales of the same numbers:

- ``delta``: the paper's sum, ``Delta = sum over pairs i < j of H(sign(eps_i), sign(eps_j))``, H the
  Hamming distance (the count of features whose change differs in sign; a change of 0 has sign 0). The
  paper writes the sum over i != j, which counts every pair twice: 2 x ``delta``. For the control it is
  the mean over the random draws.
- ``mean`` and ``std``: per pair and per feature, ``H / D`` over the N (N - 1) / 2 pairs, D the layer's
  feature dimension: ``mean = delta / (pairs x D)``, the fraction of features whose change differs in
  sign between two images. This is the scale of the paper's numbers (0.067 - 0.107 at layer 5, so it
  divided by the dimension); the paper does not say what its +- is over, here it is the population
  standard deviation over the pairs (over the pairs of every draw, for the control).
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # matplotlib loads only to draw (import zfaccel stays light)
    from matplotlib.figure import Figure

RANDOM = "random"  # the control's entry, so no part may have this name


@dataclass(repr=False)
class CorrespondenceResult:
    """Delta for each layer and part, and for the random control (``delta``, ``mean`` and ``std`` are
    computed once, on first use: the table and the figures read them per cell).

    layers: the layers' names (``penultimate`` resolved, e.g. to ``fc7``); parts: the part names in order;
    window: the square's (height, width); num_images: N; random_draws: sets of random squares;
    random_on_object: whether those were centred on the object masks (else anywhere in the image);
    dims: layer -> feature dimension D; hamming: layer -> (len(parts) + random_draws, N (N - 1) / 2) int64,
    the Hamming distance of each pair i < j (``torch.triu_indices(N, N, 1)`` order), a row per part then
    a row per random draw; changed: layer -> (len(parts) + random_draws, N) float64, the fraction of the
    features the square changed (sign not 0), same rows; corners: (len(parts) + random_draws, N, 2) int64,
    the squares' top-left pixels.
    """

    layers: tuple[str, ...]
    parts: tuple[str, ...]
    window: tuple[int, int]
    num_images: int
    random_draws: int
    random_on_object: bool
    dims: dict[str, int]
    hamming: dict[str, torch.Tensor]
    changed: dict[str, torch.Tensor]
    corners: torch.Tensor

    @property
    def rows(self) -> tuple[str, ...]:
        """The table's entries per layer: the parts, then ``random``."""
        return (*self.parts, RANDOM)

    @property
    def pairs(self) -> int:
        return self.num_images * (self.num_images - 1) // 2

    def _distances(self, layer: str, row: str) -> torch.Tensor:
        """(draws, pairs) float64 Hamming distances / D of one entry (one draw for a part)."""
        h = self.hamming[layer].double() / self.dims[layer]
        k = len(self.parts)
        return h[k:] if row == RANDOM else h[self.parts.index(row)][None]

    @cached_property
    def delta(self) -> dict[str, dict[str, float]]:
        """layer -> entry -> the sum over pairs i < j of the Hamming distances (random: mean over draws)."""
        return {layer: {row: float(self._distances(layer, row).sum(1).mean() * self.dims[layer])
                        for row in self.rows} for layer in self.layers}  # fmt: skip

    @cached_property
    def mean(self) -> dict[str, dict[str, float]]:
        """layer -> entry -> mean over pairs of Hamming distance / D (the paper's scale)."""
        return {layer: {row: float(self._distances(layer, row).mean()) for row in self.rows} for layer in self.layers}

    @cached_property
    def std(self) -> dict[str, dict[str, float]]:
        """layer -> entry -> population std over pairs (and draws) of Hamming distance / D."""
        return {layer: {row: float(self._distances(layer, row).std(correction=0)) for row in self.rows}
                for layer in self.layers}  # fmt: skip

    def parts_summary(self, layer: str) -> tuple[float, float]:
        """(mean, population std) over the parts of their per-part means, at ``layer``."""
        means = torch.tensor([self.mean[layer][p] for p in self.parts], dtype=torch.float64)
        return float(means.mean()), float(means.std(correction=0))

    def __repr__(self) -> str:
        rows = ", ".join(f"{layer}: parts {self.parts_summary(layer)[0]:.4f} vs random {self.mean[layer][RANDOM]:.4f}"
                         for layer in self.layers)  # fmt: skip
        return (f"CorrespondenceResult(images={self.num_images}, parts={len(self.parts)}, window={self.window}, "
                f"{rows})")  # fmt: skip

    def _control(self, short: bool = False) -> str:
        where = "on the object" if self.random_on_object else "anywhere in the image"
        draws = f"{self.random_draws} draw{'s' if self.random_draws > 1 else ''}"
        return f"random squares ({draws}, {where})" if not short else f"random ({draws}, {where})"

    def table(self) -> tuple[list[str], list[list[str]]]:
        """The Markdown and PNG table: header, then a row per layer of 'mean ± std' strings."""
        header = ["layer (D)", *self.parts, "all parts (mean ± std over parts)", self._control()]
        body = []
        for layer in self.layers:
            cells = [f"{self.mean[layer][p]:.4f} ± {self.std[layer][p]:.4f}" for p in self.parts]
            m, s = self.parts_summary(layer)
            r = f"{self.mean[layer][RANDOM]:.4f} ± {self.std[layer][RANDOM]:.4f}"
            body.append([f"{layer} ({self.dims[layer]})", *cells, f"{m:.4f} ± {s:.4f}", r])
        return header, body

    def _caption(self) -> str:
        return (
            f"Mean sign change (Zeiler & Fergus Table 1): Hamming(sign eps_i, sign eps_j) / D, mean ± std over "
            f"the {self.pairs} pairs of {self.num_images} images, grey square of {self.window[0]} x {self.window[1]} "
            f"px; 'all parts' is the mean ± std over the {len(self.parts)} parts. Lower = the change is more alike "
            f"across images."
        )

    def markdown(self) -> str:
        """Two Markdown tables, a row per layer: the paper's normalised scale (mean ± std), then Delta (the
        sums over pairs); and the share of the features each square changed."""
        header, body = self.table()
        lines = [self._caption(), "", _row(header), "|" + "---|" * len(header), *map(_row, body), ""]
        lines.append(
            "Delta = sum over pairs i < j of the Hamming distance (the paper's sum over i != j is twice this; "
            "random: mean over draws):"
        )
        head = ["layer (D)", *self.parts, self._control(short=True)]
        lines += ["", _row(head), "|" + "---|" * len(head)]
        for layer in self.layers:
            lines.append(_row([f"{layer} ({self.dims[layer]})", *(f"{self.delta[layer][r]:.0f}" for r in self.rows)]))
        k = len(self.parts)
        changed = [
            f"{layer} parts {float(self.changed[layer][:k].mean()):.1%}, "
            f"random {float(self.changed[layer][k:].mean()):.1%}"
            for layer in self.layers
        ]
        lines += ["", "Features changed (sign not 0) per image, mean: " + "; ".join(changed)]
        return "\n".join(lines) + "\n"

    def render(self, path: str | os.PathLike | None = None) -> Figure:
        """The table as a figure (a row per layer, a column per part, the parts' mean and the control); saved
        as a PNG at ``path`` when given."""
        header, body = self.table()
        header = [textwrap.fill(h, 15) for h in header]
        # Heights in inches: each header line 0.18, each layer's row 0.32, the two-line title 0.6.
        head_h = 0.18 * max(h.count("\n") + 1 for h in header) + 0.1
        table_h = head_h + 0.32 * len(body)
        fig_h = table_h + 0.75
        from zfaccel.analysis.plotting import new_figure, save

        fig = new_figure(max(7.0, 1.5 * len(header)), fig_h, layout=None)
        ax = fig.add_axes((0.01, 0.05 / fig_h, 0.98, table_h / fig_h))
        ax.set_axis_off()
        fig.suptitle(
            f"Correspondence of object parts (paper Table 1): mean ± std over {self.pairs} image pairs of the "
            f"fraction of features whose change\ndiffers in sign when a grey square of {self.window[0]} px covers "
            "the part (lower = the part changes the features more alike)",
            fontsize=10,
        )
        table = ax.table(cellText=body, colLabels=header, loc="upper center", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        for (row, _), cell in table.get_celld().items():
            cell.set_height((head_h if row == 0 else 0.32) / table_h)
            if row == 0:
                cell.set_text_props(fontweight="bold")
        return save(fig, path)


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"
