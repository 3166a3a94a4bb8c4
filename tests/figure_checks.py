"""Checks every figure test applies: a matplotlib Figure whose text is readable at 100%, and a real PNG."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def visible_texts(fig: Figure) -> list[Text]:
    """Every visible, non-empty text of ``fig`` after a draw (tick labels exist only once drawn); the ticks
    of axes switched off (pictures) are not drawn, so they do not count."""
    fig.canvas.draw()
    hidden = set()
    for ax in fig.axes:
        if not ax.axison:
            hidden.update(ax.xaxis.findobj(Text), ax.yaxis.findobj(Text))
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and t not in hidden]


def all_text(fig: Figure) -> str:
    """The figure's visible texts, one per line: what a reader can read on it."""
    return "\n".join(t.get_text() for t in visible_texts(fig))


def assert_readable(fig: Figure, minimum: float = 9) -> None:
    """``fig`` is a matplotlib Figure, holds some text, and none of it is smaller than ``minimum`` points."""
    assert isinstance(fig, Figure), type(fig)
    texts = visible_texts(fig)
    assert texts, "a figure without any text says nothing about what it shows"
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < minimum]
    assert not small, f"text under {minimum} pt: {small}"


def assert_png(path: Path, min_size: tuple[int, int] = (100, 100), max_size: tuple[int, int] = (6000, 4000)):
    """``path`` is a PNG (magic bytes) that opens, of a size between ``min_size`` and ``max_size`` (w, h)."""
    path = Path(path)
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
    assert min_size[0] <= w <= max_size[0] and min_size[1] <= h <= max_size[1], (path, im.size)
    return w, h
