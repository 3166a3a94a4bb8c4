"""The bundled model's feature-generalisation study on the glyphs data, and its shipped record.

``glyphs_study()`` runs zfaccel.analysis.generalisation for ``pretrained_small()`` (trained on the shapes
data's ten outlines) on the digits of zfaccel.demo.glyphs, which it never saw: a pool of ``train_per_class``
training images per class, from which each seed draws its 1, 5, 15 and 30, and ``test_per_class`` test
images per class. ``python -m zfaccel.demo.generalisation_record`` runs it with the defaults and rewrites
``RECORD``, which the demo can show without running anything (``GeneralisationResult.load(RECORD)``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from torch import nn

from zfaccel.analysis.generalisation import generalisation
from zfaccel.analysis.generalisation_result import GeneralisationResult
from zfaccel.demo.glyphs import CLASSES, GlyphsDataset
from zfaccel.models.registry import ASSETS, pretrained_small

RECORD = ASSETS / "generalisation.json"


def glyphs_study(
    model: nn.Module | None = None,
    *,
    train_per_class: int = 50,
    test_per_class: int = 50,
    data_seed: int = 0,
    show_progress: bool = False,
    **kwargs,
) -> GeneralisationResult:
    """The study of ``model`` (default: the bundled one) on the glyphs; ``kwargs`` go to ``generalisation``
    (shots, seeds, epochs, ...). Train and test images come from the glyphs' disjoint splits of ``data_seed``."""
    train = GlyphsDataset("train", train_per_class * len(CLASSES), data_seed)
    test = GlyphsDataset("test", test_per_class * len(CLASSES), data_seed)
    model = pretrained_small() if model is None else model
    result = generalisation(model, train, test, dataset="glyphs 0-9", show_progress=show_progress, **kwargs)
    result.settings.update(train=repr(train), test=repr(test))
    return result


def write_record(path: str | os.PathLike = RECORD, **kwargs) -> GeneralisationResult:
    """Run ``glyphs_study(**kwargs)`` and save it at ``path`` (default: the shipped record)."""
    result = glyphs_study(**kwargs)
    result.save(Path(path))
    return result


if __name__ == "__main__":
    done = write_record(sys.argv[1] if len(sys.argv) > 1 else RECORD, show_progress=True)
    print(done.markdown())
    print(f"{done.seconds:.0f} s")
