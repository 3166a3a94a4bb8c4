"""The report of a dataset sweep (``zfaccel sweep-report``): what a sweep's store holds, as one HTML page.

``summarize`` reads the store once, one chunk at a time, and keeps only running statistics
whose size does not grow with the store: the counts, the first failures, histograms over
fixed bins in [0, 1], per-class sums of the drop maps, and bounded heaps of the images most
sensitive to occlusion, of those whose label the occluder flips most often, and of a seeded
random sample of done images (the ``top`` smallest of a random key drawn for every image).
``sweep_report`` draws them (matplotlib via zfaccel.analysis.plotting, imported only to draw) and the paper's Fig. 7
panels of the chosen images, and writes ``index.html`` with ``zfaccel.pages``.

An image's *drop map* is ``clean_prob - prob`` over the occluder grid: how much the target's
probability falls with the occluder at each position; its *largest drop* is the map's maximum.
Only done images count; pending and failed ones are counted and listed, nothing more.
"""

from __future__ import annotations

import heapq
import html
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from zfaccel.analysis.labels import class_name, verdict
from zfaccel.analysis.occlusion.store import DONE, FAILED, PENDING, Failure, SweepStore, open_sweep
from zfaccel.pages import Section, write_page

BINS = 50  # histogram bins over [0, 1]
FAILURES_LISTED = 20
MAX_CLASS_MAPS = 40  # mean maps drawn: the classes with the most done images


@dataclass(frozen=True)
class ImageStats:
    """One done image's numbers, as the report ranks and captions it.

    drop: ``clean_prob - min_prob``, the largest fall of the target's probability over the grid;
    flip_share: the share of occluder positions whose most probable class is not ``clean_label``;
    flipped_to: the class most often predicted there instead (the lowest on ties; None: never flipped).
    """

    index: int
    path: str
    target: int
    clean_prob: float
    min_prob: float
    drop: float
    clean_label: int
    clean_label_prob: float
    true_label: int | None
    flip_share: float
    flipped_to: int | None


@dataclass
class SweepSummary:
    """What ``summarize`` keeps of a store: counts, the first failures, histograms, per-class sums of
    the drop maps and the chosen images (each list best first; ``random`` in index order)."""

    location: str
    attrs: dict
    images: int
    counts: dict[int, int]  # PENDING, DONE, FAILED -> images
    failures: list[Failure]  # the first FAILURES_LISTED
    edges: np.ndarray  # (BINS + 1,) bin edges over [0, 1]
    clean_hist: np.ndarray  # (BINS,) int64: clean probabilities of the target
    drop_hist: np.ndarray  # (BINS,) int64: largest drops, clipped to [0, 1]
    negative_drops: int  # images whose probability never fell (counted in the first bin)
    seed: int = 0  # what chose ``random``
    class_sums: dict[int, np.ndarray] = field(default_factory=dict)  # class -> (nH, nW) float64
    class_counts: dict[int, int] = field(default_factory=dict)
    most_sensitive: list[ImageStats] = field(default_factory=list)
    most_flipped: list[ImageStats] = field(default_factory=list)
    random: list[ImageStats] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.counts[DONE]

    @property
    def class_names(self) -> list[str] | None:
        return self.attrs.get("class_names")

    @property
    def classes(self) -> list[int]:
        """The classes with done images (true label where known, else the clean prediction), in order."""
        return sorted(self.class_counts)

    def mean_map(self, c: int) -> np.ndarray:
        """(nH, nW) float64: the mean drop map of class ``c``'s done images. KeyError for a class without any."""
        if c not in self.class_counts:
            raise KeyError(f"no done image of class {c}")
        return self.class_sums[c] / self.class_counts[c]


class _Top:
    """The ``k`` largest (score, index) pairs seen, ties to the lower index; an entry is built (``make``)
    only for a pair that gets in."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.heap: list[tuple[float, int, ImageStats]] = []

    def offer(self, score: float, index: int, make: Callable[[], ImageStats]) -> None:
        key = (score, -index)
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, (*key, make()))
        elif self.k and key > self.heap[0][:2]:
            heapq.heapreplace(self.heap, (*key, make()))

    def best_first(self) -> list[ImageStats]:
        return [entry for *_, entry in sorted(self.heap, key=lambda item: item[:2], reverse=True)]

    def offer_chunk(self, scores: np.ndarray, rows: np.ndarray, lo: int, make: Callable[[int], ImageStats]) -> None:
        """Offer ``scores[j]`` of image ``lo + rows[j]`` for the chunk's ``k`` best ``j`` only."""
        best = np.argsort(-scores, kind="stable")[: self.k]
        for j in best.tolist():
            self.offer(float(scores[j]), lo + int(rows[j]), lambda j=j: make(j))


def _open(store: SweepStore | str | os.PathLike) -> SweepStore:
    return store if isinstance(store, SweepStore) else open_sweep(store)


def _count(value: object, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}")
    return int(value)


def summarize(
    store: SweepStore | str | os.PathLike, *, top: int = 16, seed: int = 0, show_progress: bool = False
) -> SweepSummary:
    """Read ``store`` (a SweepStore or its location) chunk by chunk into a SweepSummary: ``top`` images
    most sensitive (largest drop), most often flipped (flip share > 0 only) and chosen at random among
    the done ones (``seed``: the same seed picks the same images)."""
    store = _open(store)
    top = _count(top, "top")
    seed = _count(seed, "seed")
    edges = np.linspace(0.0, 1.0, BINS + 1)
    s = SweepSummary(store.location, dict(store.attrs), len(store), {PENDING: 0, DONE: 0, FAILED: 0}, [],
                     edges, np.zeros(BINS, np.int64), np.zeros(BINS, np.int64), 0, seed)  # fmt: skip
    sensitive, flipped, sample = _Top(top), _Top(top), _Top(top)
    rng = np.random.default_rng(seed)
    chunks = math.ceil(len(store) / store.chunk)
    for lo, hi in tqdm(store.chunks(), total=chunks, unit="chunk", desc="sweep-report", disable=not show_progress):
        status = np.asarray(store.status[lo:hi])
        keys = rng.random(hi - lo)  # one key per image, done or not: the sample depends on the seed alone
        for value in (PENDING, DONE, FAILED):
            s.counts[value] += int((status == value).sum())
        bad = np.nonzero(status == FAILED)[0]
        if len(bad) and len(s.failures) < FAILURES_LISTED:
            paths, errors = store.path[lo:hi], store.error[lo:hi]
            s.failures += [Failure(lo + int(i), str(paths[i]), str(errors[i])) for i in bad]
            del s.failures[FAILURES_LISTED:]
        rows = np.nonzero(status == DONE)[0]
        if len(rows):
            _add_chunk(store, s, lo, hi, rows, keys[rows], sensitive, flipped, sample)
    s.most_sensitive, s.most_flipped = sensitive.best_first(), flipped.best_first()
    s.random = sorted(sample.best_first(), key=lambda e: e.index)
    return s


def _add_chunk(store: SweepStore, s: SweepSummary, lo: int, hi: int, rows: np.ndarray, keys: np.ndarray,
               sensitive: _Top, flipped: _Top, sample: _Top) -> None:  # fmt: skip
    """Add the done ``rows`` of chunk [lo, hi) to the running statistics and heaps."""
    read = lambda name: np.asarray(getattr(store, name)[lo:hi])[rows]  # noqa: E731
    prob, label = read("prob"), read("label")
    clean_prob, clean_label, true = read("clean_prob"), read("clean_label"), read("true_label")
    clean_label_prob, target = read("clean_label_prob"), read("target")
    min_prob = prob.min(axis=(1, 2))
    drop = clean_prob - min_prob
    s.clean_hist += np.histogram(np.clip(clean_prob, 0, 1), s.edges)[0]
    s.drop_hist += np.histogram(np.clip(drop, 0, 1), s.edges)[0]
    s.negative_drops += int((drop < 0).sum())
    maps = clean_prob[:, None, None] - prob
    cls = np.where(true >= 0, true, clean_label)
    for c in np.unique(cls).tolist():
        mine = cls == c
        s.class_sums[c] = s.class_sums.get(c, 0.0) + maps[mine].sum(axis=0, dtype=np.float64)
        s.class_counts[c] = s.class_counts.get(c, 0) + int(mine.sum())
    flips = label != clean_label[:, None, None]
    share = flips.mean(axis=(1, 2))
    paths = store.path[lo:hi]

    def make(j: int) -> ImageStats:
        changed = label[j][flips[j]]
        to = None
        if len(changed):
            values, counts = np.unique(changed, return_counts=True)
            to = int(values[np.argmax(counts)])
        return ImageStats(
            index=lo + int(rows[j]),
            path=str(paths[rows[j]]),
            target=int(target[j]),
            clean_prob=float(clean_prob[j]),
            min_prob=float(min_prob[j]),
            drop=float(drop[j]),
            clean_label=int(clean_label[j]),
            clean_label_prob=float(clean_label_prob[j]),
            true_label=None if true[j] < 0 else int(true[j]),
            flip_share=float(share[j]),
            flipped_to=to,
        )

    sensitive.offer_chunk(drop, rows, lo, make)
    some = np.nonzero(share > 0)[0]
    flipped.offer_chunk(share[some], rows[some], lo, lambda j: make(int(some[j])))
    sample.offer_chunk(-keys, rows, lo, make)


# Drawing -------------------------------------------------------------------------------------------


def _histogram(path: Path, edges: np.ndarray, counts: np.ndarray, title: str, xlabel: str) -> Path:
    from matplotlib.ticker import MaxNLocator

    from zfaccel.analysis.plotting import FONT, SMALL, TITLE, new_figure, save

    fig = new_figure(6.4, 3.6)
    ax = fig.add_subplot()
    ax.stairs(counts, edges, fill=True, color="#4c72b0", alpha=0.85)
    ax.set_xlim(0, 1)
    ax.set_title(title, fontsize=TITLE)
    ax.set_xlabel(xlabel, fontsize=FONT)
    ax.set_ylabel("images", fontsize=FONT)
    ax.tick_params(labelsize=SMALL)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", alpha=0.3)
    save(fig, path)
    return path


def _shown_classes(s: SweepSummary) -> list[int]:
    """The classes whose maps are drawn: the MAX_CLASS_MAPS with the most done images, in class order."""
    busiest = sorted(s.class_counts, key=lambda c: (-s.class_counts[c], c))[:MAX_CLASS_MAPS]
    return sorted(busiest)


def _class_maps(path: Path, s: SweepSummary) -> Path:
    """The mean drop map of each shown class, one small heat map each, with one shared colour bar."""
    from zfaccel.analysis.plotting import FONT, SMALL, TITLE, new_figure, save, wrap

    classes = _shown_classes(s)
    maps = [s.mean_map(c) for c in classes]
    vmax = max(float(np.abs(m).max()) for m in maps) or 1e-6
    cols = min(len(classes), 6)
    rows = math.ceil(len(classes) / cols)
    n_h, n_w = np.asarray(maps[0]).shape
    cell = 1.9
    width = cols * cell + 1.3
    fig = new_figure(width, rows * cell * max(0.5, min(2.0, n_h / n_w)) + rows * 0.45 + 0.7)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, c, m in zip(axes.flat, classes, maps, strict=False):
        image = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        n = s.class_counts[c]
        ax.set_title(f"{class_name(c, s.class_names, 18)}\n{n} image{'s' * (n != 1)}", fontsize=SMALL)
    bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=min(1.0, 0.4 + 0.2 * rows))
    bar.set_label("mean drop of p(target): clean - occluded", fontsize=FONT)
    bar.ax.tick_params(labelsize=SMALL)
    fig.suptitle(wrap("Mean sensitivity map per class (red: occluding there lowers the probability)", width * 90,
                      TITLE), fontsize=TITLE)  # fmt: skip
    save(fig, path)
    return path


def _table(headers: list[str] | None, rows: list[list[object]]) -> str:
    """An HTML table, every cell escaped (paths and errors come from the data)."""
    head = "" if headers is None else "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _caption(e: ImageStats, names: list[str] | None, flips: bool = False) -> str:
    said = verdict(e.true_label, e.clean_label, e.clean_label_prob, names)
    text = (f"{e.path} (image {e.index}): {said}; largest drop {e.drop:.2f}: "
            f"p({class_name(e.target, names)}) {e.clean_prob:.2f} -> {e.min_prob:.2f}")  # fmt: skip
    if flips and e.flipped_to is not None:
        text += f"; the occluder changes the label at {e.flip_share:.0%} of positions, mostly to "
        text += class_name(e.flipped_to, names)
    return text


class _Panels:
    """Fig. 7 panels of chosen images, each drawn once (an image can be in several lists); an image that
    cannot be drawn (file moved, a Dataset's item) is noted instead."""

    def __init__(self, store: SweepStore, folder: Path) -> None:
        self.store, self.folder = store, folder
        self.drawn: dict[int, Path | str] = {}
        self.names = store.attrs.get("class_names")

    def figures(self, entries: list[ImageStats], flips: bool = False) -> tuple[list[tuple[Path, str]], str]:
        """(png, caption) of each entry that could be drawn, and an HTML note on those that could not."""
        out, missing = [], []
        for e in entries:
            if e.index not in self.drawn:
                self.drawn[e.index] = self._draw(e)
            done = self.drawn[e.index]
            if isinstance(done, Path):
                out.append((done, _caption(e, self.names, flips)))
            else:
                missing.append(f"{e.path}: {done}")
        note = ""
        if missing:
            note = (f"<p class='note'>{len(missing)} panel(s) could not be drawn, e.g. "
                    f"{html.escape(missing[0])}</p>")  # fmt: skip
        return out, note

    def _draw(self, e: ImageStats) -> Path | str:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            result = self.store.result(e.index)
        except (OSError, ValueError) as err:
            return str(err)
        path = self.folder / f"image_{e.index}.png"
        result.render_panel(path, 0, class_names=self.names, preprocessing=self.store.preprocessing(),
                            name=f"{e.path} (image {e.index})")  # fmt: skip
        return path


def _output_folder(out: str | os.PathLike) -> Path:
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the report folder {str(out)!r}: {err.strerror or err}") from err
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write in the report folder {str(out)!r}")
    return out


def _overview(s: SweepSummary) -> str:
    a = s.attrs
    (wh, ww), (sh, sw), (n_h, n_w) = a["window"], a["stride"], a["grid"]
    occluder = f"window {wh}x{ww}, stride {sh}x{sw}, grid {n_h}x{n_w} positions"
    rows = [
        ["store", s.location],
        ["images", s.images],
        ["done", s.counts[DONE]],
        ["failed", s.counts[FAILED]],
        ["pending", s.counts[PENDING]],
        ["occluder", occluder],
        ["target", a.get("target")],
        ["feature layer", a.get("feature_layer")],
        ["model", (a.get("model") or {}).get("class", "?")],
        ["data", a.get("data_root", "a Dataset")],
    ]
    return _table(None, rows)


def sweep_report(
    store: SweepStore | str | os.PathLike,
    out: str | os.PathLike,
    *,
    panels: int = 16,
    seed: int = 0,
    show_progress: bool = False,
) -> Path:
    """Write ``out/index.html`` and its PNGs: a sweep store's counts and failures, the distributions of
    clean probabilities and largest drops, the mean sensitivity map per class, and Fig. 7 panels of the
    ``panels`` images most sensitive to occlusion, of the ``panels`` whose label it flips most often and
    of ``panels`` done images chosen at random (``seed``). Reads the store a chunk at a time (see
    ``summarize``). ValueError when ``store`` is not a sweep or ``out`` cannot be written. Returns the
    page's path."""
    store = _open(store)
    panels = _count(panels, "panels")
    out = _output_folder(out)
    s = summarize(store, top=panels, seed=seed, show_progress=show_progress)
    names = s.class_names
    done, failed = s.counts[DONE], s.counts[FAILED]
    intro = (f"{s.location}: {s.images} images, {done} done, {failed} failed, {s.counts[PENDING]} pending. "
             "Only done images count in the statistics and panels.")  # fmt: skip
    if done == 0:
        intro += " Nothing is done yet, so there is nothing to draw: run (or resume) zfaccel sweep first."
    sections = [Section("Overview", html_body=_overview(s))]
    if s.failures:
        sections.append(Section(
            "Failures",
            f"{failed} image(s) could not be read" + (f"; the first {len(s.failures)} are listed "
            "(zfaccel.open_sweep(STORE).failures() lists them all)" if failed > len(s.failures) else "") + ".",
            html_body=_table(["index", "path", "error"], [[f.index, f.path, f.error] for f in s.failures]),
        ))  # fmt: skip
    if done:
        sections += _statistics(s, out)
        drawer = _Panels(store, out / "panels")
        sections += _panel_sections(s, drawer, names)
    return write_page(out / "index.html", "zfaccel sweep report", intro, sections)


def _statistics(s: SweepSummary, out: Path) -> list[Section]:
    target = s.attrs.get("target")
    clean = _histogram(out / "clean_prob.png", s.edges, s.clean_hist, f"Clean probability ({s.done} done images)",
                       f"p(target) without occluder (target: {target})")  # fmt: skip
    drop = _histogram(out / "largest_drop.png", s.edges, s.drop_hist, f"Largest drop per image ({s.done} done)",
                      "clean p(target) - lowest p(target) over the occluder grid")  # fmt: skip
    below = f"; {s.negative_drops} image(s) whose probability never fell are counted at 0" if s.negative_drops else ""
    shown = _shown_classes(s)
    more = len(s.class_counts) - len(shown)
    return [
        Section(
            "Distributions",
            f"How sure the model is of each image's target class without the occluder, and how far the occluder "
            f"can push that probability down at its worst position ({BINS} bins over [0, 1]).",
            [(clean, "clean probability of the target class"), (drop, "largest probability drop per image" + below)],
        ),
        Section(
            "Mean sensitivity map per class",
            "For each class (the true label where known, else the prediction), the mean over its done images of "
            "clean p(target) - p(target) with the occluder at each grid position (cells laid out as on the "
            "image). All maps share one colour scale."
            + (f" The {len(shown)} classes with the most images are shown; {more} more are not." if more else ""),
            [(_class_maps(out / "class_maps.png", s), f"{len(shown)} classes; image counts under each name")],
        ),
    ]


def _panel_sections(s: SweepSummary, drawer: _Panels, names: list[str] | None) -> list[Section]:
    sensitive, sensitive_note = drawer.figures(s.most_sensitive)
    flipped, flipped_note = drawer.figures(s.most_flipped, flips=True)
    sample, sample_note = drawer.figures(s.random)
    flip_rows = [[e.index, e.path, f"{e.flip_share:.0%}", class_name(e.clean_label, names),
                  "" if e.flipped_to is None else class_name(e.flipped_to, names)] for e in s.most_flipped]  # fmt: skip
    flip_table = _table(["index", "path", "positions flipped", "clean label", "most often flipped to"], flip_rows)
    flip_note = (f"The {len(s.most_flipped)} images whose most probable class the occluder changes at the largest "
                 "share of its positions (images it never flips are left out), with their panels.")  # fmt: skip
    return [
        Section(
            "Most sensitive to occlusion",
            f"The {len(s.most_sensitive)} done images whose target probability the occluder lowers the most "
            "(largest drop first). Panels as the paper's Fig. 7: (a) the image, (b) the total activation of the "
            "strongest feature map, (d) p(target), (e) the most probable class, each at every occluder position.",
            sensitive,
            html_body=sensitive_note,
        ),
        Section(
            "Labels flipped most often",
            flip_note if s.most_flipped else "",
            flipped,
            html_body=(flip_table + flipped_note) if s.most_flipped else "",
        ),  # fmt: skip
        Section(
            f"Random done images (seed {s.seed})",
            f"{len(s.random)} done images chosen at random, in index order, for comparison.",
            sample,
            html_body=sample_note,
        ),  # fmt: skip
    ]
