"""Drawing the shapes data: one coloured object on a cluttered background, a batch at a time in numpy.

Every object is a signed distance function of object coordinates (u, v): the
pixel grid rotated by the object's angle and divided by its radius, so the
object fills the unit disc. Distances times the radius are pixels, and
``clip(0.5 - d, 0, 1)`` is a one-pixel anti-aliased edge. A batch of n images
costs a handful of (n, 64, 64) float32 array operations per layer of paint
(about 16 MB for n = 1000), so 12,000 images take a few seconds.

Paint order: smooth two-colour gradient with a faint stripe texture, thin
lines and small dots (the clutter, drawn below the object so it is never
hidden), the object, pixel noise.
"""

from __future__ import annotations

import numpy as np

SIZE = 64
# The object's radius in pixels: 11 px keeps the hole of a ring (0.52 r) at 5.7 px,
# 21 px lets it span 42 of the 64 pixels.
RADIUS = (11.0, 21.0)
# Square, frame and diamond are the same outline 45 degrees apart, so they turn at most
# 12 degrees; every other class turns at most 30 degrees, and a bar turns freely.
TURN_SQUARES, TURN_OTHERS = np.radians(12.0), np.radians(30.0)
MIN_CONTRAST = 0.45  # RGB distance between object and background colour (the diagonal is 1.73)
# Backgrounds are half as saturated as objects (mixed 50:50 with their grey level): the
# object stands out by colour as well as by edges, which shortens the first plateau of training.
BACKGROUND_SATURATION = 0.5
LINES, DOTS = 2, 3  # clutter items per image, each present with probability 0.6
NOISE = 0.02  # pixel noise, standard deviation in [0, 1] units

_Y, _X = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5  # pixel centres


def _box(u, v, a, b):
    return np.maximum(np.abs(u) - a, np.abs(v) - b)


def _circle(u, v):
    return np.hypot(u, v) - 0.85


def _ring(u, v):
    return np.abs(np.hypot(u, v) - 0.7) - 0.18


def _square(u, v):
    return _box(u, v, 0.68, 0.68)


def _frame(u, v):
    return np.abs(_square(u, v) + 0.1) - 0.14


def _triangle(u, v):
    # Equilateral, flat side up and tip down (+v), circumradius 0.95: three half-planes at inradius 0.475.
    s = np.float32(np.sqrt(3) / 2)
    return np.maximum(np.maximum(-v, s * u + 0.5 * v), -s * u + 0.5 * v) - 0.475


def _diamond(u, v):
    return (np.abs(u) + np.abs(v)) * np.float32(np.sqrt(0.5)) - 0.62


def _cross(u, v):
    return np.minimum(_box(u, v, 0.92, 0.26), _box(u, v, 0.26, 0.92))


def _star(u, v):
    # Five points: the radius swings from 0.38 between points to 0.98 at them, linearly in angle.
    turn = (np.arctan2(u, -v) * (5 / (2 * np.pi))) % 1.0
    return np.hypot(u, v) - (0.38 + 0.6 * np.abs(2 * turn - 1))


def _bar(u, v):
    return _box(u, v, 0.95, 0.24)


def _crescent(u, v):
    return np.maximum(np.hypot(u, v) - 0.85, 0.68 - np.hypot(u - 0.42, v))


OUTLINES = {
    "circle": _circle,
    "ring": _ring,
    "square": _square,
    "frame": _frame,
    "triangle": _triangle,
    "diamond": _diamond,
    "cross": _cross,
    "star": _star,
    "bar": _bar,
    "crescent": _crescent,
}


def _polar(degrees: float, r: float) -> tuple[float, float]:
    """(u, v) at distance r, ``degrees`` clockwise from straight up (the star's arctan2(u, -v))."""
    a = np.radians(degrees)
    return float(r * np.sin(a)), float(-r * np.cos(a))


# Named parts of the objects with corners or tips, in object coordinates (u right, v down, radius 1 before the
# turn), each placed well inside the outline so that its pixel lies on the object: a star's tips (0.98 out) at
# 0.75, where the point is still 0.36 wide; a square's corners (0.68, 0.68) at 0.55; a frame's on the middle of
# its band (0.44 - 0.72); the cross's arm ends (0.92) and the diamond's points (0.88) at 0.7; the triangle's
# corners (0.95 out) at 0.6 of the way. Circle, ring and crescent have no such parts, and a bar turns end over end.
PARTS: dict[str, dict[str, tuple[float, float]]] = {
    "star": {
        "top tip": _polar(0, 0.75),
        "upper right tip": _polar(72, 0.75),
        "lower right tip": _polar(144, 0.75),
        "lower left tip": _polar(216, 0.75),
        "upper left tip": _polar(288, 0.75),
    },
    "square": {
        "top left corner": (-0.55, -0.55),
        "top right corner": (0.55, -0.55),
        "bottom right corner": (0.55, 0.55),
        "bottom left corner": (-0.55, 0.55),
    },
    "frame": {
        "top left corner": (-0.58, -0.58),
        "top right corner": (0.58, -0.58),
        "bottom right corner": (0.58, 0.58),
        "bottom left corner": (-0.58, 0.58),
    },
    "cross": {"top end": (0.0, -0.7), "right end": (0.7, 0.0), "bottom end": (0.0, 0.7), "left end": (-0.7, 0.0)},
    "diamond": {
        "top point": (0.0, -0.7),
        "right point": (0.7, 0.0),
        "bottom point": (0.0, 0.7),
        "left point": (-0.7, 0.0),
    },
    "triangle": {
        "top left corner": _polar(-60, 0.57),
        "top right corner": _polar(60, 0.57),
        "bottom tip": _polar(180, 0.57),
    },
}


def coverage(distance_px: np.ndarray) -> np.ndarray:
    """Signed distance in pixels -> coverage in [0, 1] with a one-pixel soft edge."""
    return np.clip(0.5 - distance_px, 0.0, 1.0)


def paint(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """canvas (n, 3, H, W) <- colour (n, 3) where alpha (n, H, W) says, in place."""
    a = alpha[:, None]
    canvas *= 1 - a
    canvas += a * colour[:, :, None, None]


def _background(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, H, W) float32 gradients with stripes, and their mean colours (n, 3)."""
    start = rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)
    start += (1 - BACKGROUND_SATURATION) * (start.mean(1, keepdims=True) - start)
    end = np.clip(start + rng.normal(0.0, 0.2, (n, 3)), 0, 1).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    ramp = (np.cos(angle)[:, None, None] * (_X - 32) + np.sin(angle)[:, None, None] * (_Y - 32)) / 90 + 0.5
    canvas = start[:, :, None, None] + (end - start)[:, :, None, None] * ramp[:, None]
    # Stripes of 12-60 px period, 0.06 amplitude: texture without edges as strong as an object's.
    freq = rng.uniform(0.1, 0.5, n).astype(np.float32)
    turn = rng.uniform(0, np.pi, n).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    wave = np.sin(
        freq[:, None, None] * (np.cos(turn)[:, None, None] * _X + np.sin(turn)[:, None, None] * _Y)
        + phase[:, None, None]
    )
    canvas += 0.06 * wave[:, None] * rng.choice([-1.0, 1.0], (n, 3, 1, 1)).astype(np.float32)
    return canvas, (start + end) / 2


def _clutter(canvas: np.ndarray, rng: np.random.Generator) -> None:
    """Thin lines (1-1.6 px wide, 8-40 px long) and dots (radius 1.5-3 px) in random colours, in place."""
    n = canvas.shape[0]
    for _ in range(LINES):
        a = rng.uniform(0, SIZE, (n, 2)).astype(np.float32)
        length = rng.uniform(8, 40, n).astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
        d = np.stack([np.cos(angle), np.sin(angle)], 1) * length[:, None]
        px, py = _X - a[:, 0, None, None], _Y - a[:, 1, None, None]
        t = np.clip((px * d[:, 0, None, None] + py * d[:, 1, None, None]) / (length**2)[:, None, None], 0, 1)
        dist = np.hypot(px - t * d[:, 0, None, None], py - t * d[:, 1, None, None])
        half = rng.uniform(0.5, 0.8, n).astype(np.float32)[:, None, None]
        shown = (rng.random(n) < 0.6).astype(np.float32)[:, None, None]
        paint(canvas, coverage(dist - half) * shown, rng.uniform(0, 1, (n, 3)).astype(np.float32))
    for _ in range(DOTS):
        c = rng.uniform(0, SIZE, (n, 2)).astype(np.float32)
        r = rng.uniform(1.5, 3.0, n).astype(np.float32)[:, None, None]
        dist = np.hypot(_X - c[:, 0, None, None], _Y - c[:, 1, None, None]) - r
        shown = (rng.random(n) < 0.6).astype(np.float32)[:, None, None]
        paint(canvas, coverage(dist) * shown, rng.uniform(0, 1, (n, 3)).astype(np.float32))


def _object_colours(background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random colours (n, 3) at least MIN_CONTRAST from ``background`` (n, 3): colour is no class cue,
    but the object must stand out. Rejection sampling; the rare leftovers take the complement."""
    colour = rng.uniform(0, 1, background.shape).astype(np.float32)
    for _ in range(20):
        low = np.linalg.norm(colour - background, axis=1) < MIN_CONTRAST
        if not low.any():
            break
        colour[low] = rng.uniform(0, 1, (int(low.sum()), 3))
    low = np.linalg.norm(colour - background, axis=1) < MIN_CONTRAST
    colour[low] = 1 - background[low]
    return colour


def _geometry(
    labels: np.ndarray, rng: np.random.Generator, margin: float = 0.8, centred: bool = False
) -> tuple[np.ndarray, ...]:
    """Where objects ``labels`` (n,) go: centres (n, 2) float32 (x, y) in pixels (pixel (i, j) has its centre
    at (j + 0.5, i + 0.5)), radii (n,) and turns (n,) in radians, all float32.

    Centres keep ``margin`` times the radius inside the image: 0.8 (the data's) lets objects touch the
    border; 1.0 (``parts``) keeps the whole unit disc, every part included, inside. ``centred`` puts every
    centre in the middle of the image instead (after drawing the same numbers, so the rest stays the same).
    """
    n = len(labels)
    names = list(OUTLINES)
    radius = rng.uniform(*RADIUS, n).astype(np.float32)
    low = margin * radius[:, None]
    centre = (rng.uniform(0, 1, (n, 2)).astype(np.float32) * (SIZE - 2 * low) + low).astype(np.float32)
    if centred:
        centre[:] = SIZE / 2
    squares = np.isin(labels, [names.index(k) for k in ("square", "frame", "diamond")])
    turn = rng.uniform(-1, 1, n).astype(np.float32) * np.where(squares, TURN_SQUARES, TURN_OTHERS)
    turn = np.where(labels == names.index("bar"), rng.uniform(0, np.pi, n), turn).astype(np.float32)
    return centre, radius, turn


def _coverages(labels: np.ndarray, centre: np.ndarray, radius: np.ndarray, turn: np.ndarray) -> np.ndarray:
    """Object coverage (n, H, W) float32 in [0, 1] of objects ``labels`` placed as ``_geometry`` says."""
    n = len(labels)
    cos, sin = np.cos(turn)[:, None, None], np.sin(turn)[:, None, None]
    dx, dy = _X - centre[:, 0, None, None], _Y - centre[:, 1, None, None]
    scale = radius[:, None, None]
    u, v = (dx * cos + dy * sin) / scale, (dy * cos - dx * sin) / scale
    alpha = np.empty((n, SIZE, SIZE), np.float32)
    for k, outline in enumerate(OUTLINES.values()):
        pick = labels == k
        if pick.any():
            alpha[pick] = coverage(outline(u[pick], v[pick]) * scale[pick])
    return alpha


def scene(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """What every picture starts from: n cluttered backgrounds (n, 3, 64, 64) float32 in about [0, 1],
    and a colour (n, 3) float32 for each one's object, at least MIN_CONTRAST from its background.

    Other generated data (zfaccel.demo.glyphs) paint their own objects on these with ``paint``."""
    canvas, background = _background(n, rng)
    _clutter(canvas, rng)
    return canvas, _object_colours(background, rng)


def finish(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixel noise on a painted canvas (n, 3, H, W) float32 in [0, 1] (in place) -> (n, 3, H, W) uint8."""
    canvas += rng.normal(0, NOISE, canvas.shape).astype(np.float32)
    return (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)


def _draw(
    labels: np.ndarray, rng: np.random.Generator, margin: float = 0.8, centred: bool = False
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Images of objects ``labels`` (n,) (indices into OUTLINES): (n, 3, 64, 64) uint8 RGB, the objects'
    coverage (n, 64, 64) float32 in [0, 1], and their geometry (``_geometry``'s centres, radii, turns).

    Everything random comes from ``rng``, in a fixed order (background, clutter, colours, geometry,
    noise), whatever ``margin`` and ``centred`` are."""
    canvas, colour = scene(len(labels), rng)
    geometry = _geometry(labels, rng, margin, centred)
    alpha = _coverages(labels, *geometry)
    paint(canvas, alpha, colour)
    return finish(canvas, rng), alpha, geometry


def draw(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Images of the objects ``labels`` (n,) int (indices into OUTLINES) -> (n, 3, 64, 64) uint8 RGB.

    Everything random comes from ``rng``, in a fixed order: the same generator state
    and labels give the same images (numpy's float32 sin/hypot may differ in the last
    bit between platforms, which moves a rare pixel by one level).
    """
    return _draw(np.asarray(labels), rng)[0]


def draw_with_coverage(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """:func:`draw`'s images (the same ones, from the same ``rng`` state) and each object's coverage
    (n, 64, 64) float32 in [0, 1]: the share of a pixel the object's outline covers, before the
    noise (the clutter lies below the object, so it never hides it)."""
    return _draw(np.asarray(labels), rng)[:2]


def parts(
    label: str, n: int, rng: np.random.Generator, centred: bool = False
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """``n`` images of one class with the pixel positions of its named parts (``PARTS[label]``).

    Drawn as ``draw`` draws (same background, clutter, colours, noise), except that the whole object
    lies inside the image (centres 1.0 radius from the border, not 0.8), so every part is in it; ``centred``
    puts every object in the middle of the image (size and turn still vary), as the paper's frontal dog faces.
    ``draw``'s images are untouched: this is a separate stream of images.

    Returns:
        images (n, 3, 64, 64) uint8 RGB; parts: name -> (n, 2) float32 (row, col) of the part's centre in
        pixel-index units (pixel (i, j) is at (i, j)); masks (n, 64, 64) bool, where the object covers
        at least half of a pixel.
    """
    if label not in PARTS:
        raise ValueError(f"label must be one of {', '.join(PARTS)} (the classes with named parts), got {label!r}")
    labels = np.full(n, list(OUTLINES).index(label), np.int64)
    images, alpha, (centre, radius, turn) = _draw(labels, rng, margin=1.0, centred=centred)
    cos, sin = np.cos(turn), np.sin(turn)
    where = {}
    for name, (u, v) in PARTS[label].items():
        # The inverse of _coverages' turn: (dx, dy) = radius * (u cos - v sin, u sin + v cos), then
        # from drawing coordinates (pixel centres at + 0.5) to pixel indices.
        x = centre[:, 0] + radius * (u * cos - v * sin) - 0.5
        y = centre[:, 1] + radius * (u * sin + v * cos) - 0.5
        where[name] = np.stack([y, x], 1).astype(np.float32)
    return images, where, alpha >= 0.5
