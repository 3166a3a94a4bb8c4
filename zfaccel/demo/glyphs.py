"""The glyphs data: generated 64 x 64 pictures of the digits 0-9, a dataset the bundled model never saw.

Each digit is a handful of pen strokes (polylines, arcs sampled every 22.5
degrees) in a 0.6 x 1 box, drawn by the same painter as the shapes data
(zfaccel.demo.drawing): the same cluttered backgrounds, colours kept apart from
the background, one-pixel soft edges and pixel noise, so only the objects are
new. A glyph is 20-40 px tall and 10-30 px wide (0.6 of its height, stretched
0.8-1.25 x), slanted up to 0.25, turned up to 20 degrees (so 6 and 9 stay
apart) and stroked 2.6-5 px wide, at least 1.6 times the clutter's thickest
line (1.6 px).

The strokes are zfaccel's own rather than a font's: Pillow's default font is a
6 x 11 bitmap before Pillow 10.1 and a scalable one after, so a font would give
different data on different installs; these strokes give the same images for
the same seed everywhere (up to numpy's last-bit differences, see drawing.draw).

A split is drawn in chunks of ``CHUNK`` images, chunk c from the seed sequence
``(seed, TAG, split, c)``, so train and test never share an image and no image
repeats the shapes data's ``(seed, split, c)`` streams. Image i shows digit i % 10.
"""

from __future__ import annotations

import numpy as np
import torch

from zfaccel.demo.drawing import SIZE, coverage, finish, paint, scene
from zfaccel.demo.shapes import SPLITS, ShapesDataset, check_split

CLASSES: tuple[str, ...] = tuple("0123456789")
TAG = 0x6C79  # ASCII "ly": a fourth seed word keeps the glyphs' streams apart from the shapes data's three
CHUNK = 50  # images per seed sequence: 5 of each digit, so a small set draws little more than it needs
HEIGHT = (20.0, 40.0)  # glyph height in pixels: the tallest, widest, most slanted one still fits
STRETCH = (0.8, 1.25)  # width factor on the 0.6 x 1 box
SLANT = 0.25  # horizontal shear, at most, either way
TURN = np.radians(20.0)
STROKE = (1.3, 2.5)  # half-width of a stroke in pixels

_Y, _X = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5  # pixel centres


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float) -> list[tuple[float, float]]:
    """Points of an elliptic arc from angle ``start`` to ``stop`` degrees (0 = right, 90 = down)."""
    steps = max(2, int(np.ceil(abs(stop - start) / 22.5)))
    angles = np.radians(np.linspace(start, stop, steps + 1))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in angles]


def _flip(strokes: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
    return [[(-u, -v) for u, v in stroke] for stroke in strokes]


_SIX = [_arc(0, 0.2, 0.3, 0.3, 0, 360), _arc(0.35, 0.2, 0.65, 0.7, 180, 255)]
# Polylines in a box u in [-0.3, 0.3] (right), v in [-0.5, 0.5] (down).
STROKES: dict[str, list[list[tuple[float, float]]]] = {
    "0": [_arc(0, 0, 0.3, 0.5, 0, 360)],
    "1": [[(-0.15, -0.33), (0.0, -0.5), (0.0, 0.5)]],
    "2": [_arc(0, -0.22, 0.28, 0.28, 180, 380) + [(-0.3, 0.5), (0.3, 0.5)]],
    "3": [_arc(0, -0.25, 0.26, 0.25, -160, 90), _arc(0, 0.25, 0.3, 0.25, -90, 160)],
    "4": [[(0.15, 0.5), (0.15, -0.5), (-0.3, 0.2), (0.3, 0.2)]],
    "5": [[(0.28, -0.5), (-0.22, -0.5), (-0.26, -0.03)] + _arc(0, 0.2, 0.3, 0.3, -130, 150)],
    "6": _SIX,
    "7": [[(-0.3, -0.5), (0.3, -0.5), (-0.08, 0.5)]],
    "8": [_arc(0, -0.26, 0.24, 0.24, 0, 360), _arc(0, 0.24, 0.3, 0.26, 0, 360)],
    "9": _flip(_SIX),
}
# Each digit as the (start, end) of its straight pieces: (S, 2, 2) float32.
_SEGMENTS = {
    k: np.array([[a, b] for s in strokes for a, b in zip(s, s[1:], strict=False)], np.float32)
    for k, strokes in STROKES.items()
}


def _segment_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in pixels from every pixel centre to the segments a -> b, both (n, 2) (x, y): (n, H, W)."""
    d = (b - a)[:, :, None, None]
    px, py = _X - a[:, 0, None, None], _Y - a[:, 1, None, None]
    t = np.clip((px * d[:, 0] + py * d[:, 1]) / np.maximum((d**2).sum(1), 1e-6), 0, 1)
    return np.hypot(px - t * d[:, 0], py - t * d[:, 1])


def _glyphs(canvas: np.ndarray, labels: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> None:
    """Paint digit ``labels[i]`` (an index into CLASSES) onto canvas[i] in ``colour[i]``, in place."""
    n = len(labels)
    height = rng.uniform(*HEIGHT, n).astype(np.float32)
    width = height * rng.uniform(*STRETCH, n).astype(np.float32)  # pixels per unit of u: the box is 0.6 wide
    slant = rng.uniform(-SLANT, SLANT, n).astype(np.float32)
    turn = rng.uniform(-TURN, TURN, n).astype(np.float32)
    half = rng.uniform(*STROKE, n).astype(np.float32)
    # Glyph box (u, v) -> pixels: scale, slant (x += slant * y), turn, then move the centre, which keeps
    # the slanted box's half-diagonal plus the stroke inside the image (at most 28.3 + 2.5 of 32 px).
    cos, sin = np.cos(turn), np.sin(turn)
    matrix = np.stack(
        [
            np.stack([width * cos, (slant * cos - sin) * height], -1),
            np.stack([width * sin, (slant * sin + cos) * height], -1),
        ],
        1,
    )
    reach = np.hypot(0.3 * width + 0.5 * np.abs(slant) * height, 0.5 * height) + half
    centre = reach[:, None] + rng.uniform(0, 1, (n, 2)).astype(np.float32) * (SIZE - 2 * reach[:, None])
    alpha = np.zeros((n, SIZE, SIZE), np.float32)
    for k, name in enumerate(CLASSES):
        pick = np.flatnonzero(labels == k)
        if not len(pick):
            continue
        ends = np.einsum("nij,sej->nsei", matrix[pick], _SEGMENTS[name]) + centre[pick, None, None]  # (m, S, 2, 2)
        distance = np.full((len(pick), SIZE, SIZE), np.inf, np.float32)
        for s in range(ends.shape[1]):
            np.minimum(distance, _segment_distance(ends[:, s, 0], ends[:, s, 1]), out=distance)
        alpha[pick] = coverage(distance - half[pick, None, None])
    paint(canvas, alpha, colour)


def draw_glyphs(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Images of the digits ``labels`` (n,) int (indices into CLASSES) -> (n, 3, 64, 64) uint8 RGB.

    Everything random comes from ``rng`` in a fixed order: the same state and labels give the same images.
    """
    labels = np.asarray(labels)
    canvas, colour = scene(len(labels), rng)
    _glyphs(canvas, labels, colour, rng)
    return finish(canvas, rng)


def glyph_images(split: str = "train", size: int = 1_000, seed: int = 0) -> torch.Tensor:
    """The first ``size`` images of a split as (size, 3, 64, 64) uint8: a smaller size is a prefix of a larger."""
    check_split(split, size, seed)
    chunks = []
    for c in range(-(-size // CHUNK)):
        labels = (np.arange(c * CHUNK, (c + 1) * CHUNK) % len(CLASSES)).astype(np.int64)
        chunks.append(torch.from_numpy(draw_glyphs(labels, np.random.default_rng([seed, TAG, SPLITS[split], c]))))
    return torch.cat(chunks)[:size]


class GlyphsDataset(ShapesDataset):
    """The glyphs data as a torch Dataset: item i is (image (3, 64, 64) float32 normalised with the shapes
    data's statistics, as the bundled model expects; label int, digit i % 10).

    Args:
        split: "train" or "test" (disjoint).
        size: how many images (the first ``size`` of the split): 10 * n holds n of each digit.
        seed: which version of the data.

    ``pixels`` (size, 3, 64, 64) uint8 and ``targets`` (size,) int64 hold the whole split. Everything but
    the pictures is ShapesDataset's.
    """

    classes = CLASSES

    def __init__(self, split: str = "train", size: int = 1_000, seed: int = 0) -> None:
        super().__init__(split, size, seed)

    @staticmethod
    def draw(split: str, size: int, seed: int) -> torch.Tensor:
        return glyph_images(split, size, seed)
