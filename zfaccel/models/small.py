"""A small ZFNet-shaped model for the bundled 64 x 64 demo data, trainable on 2 CPU cores.

Same pattern as ZFNet (five convolutions, ReLU after each, 3x3 stride-2 max-pools
after conv1, conv2 and conv5, local response norm after pool1 and pool2, three
fully connected layers), scaled to 64 x 64 inputs (about 20 MMAC per image):

    conv1  32 x 5x5 / 2, padding 2   -> 32 x 32 x 32
    pool1  3x3 / 2, ceil_mode        -> 32 x 16 x 16,  norm1
    conv2  64 x 3x3, padding 1       -> 64 x 16 x 16
    pool2  3x3 / 2, ceil_mode        -> 64 x 8 x 8,    norm2
    conv3  96 x 3x3, padding 1       -> 96 x 8 x 8
    conv4  96 x 3x3, padding 1       -> 96 x 8 x 8
    conv5  64 x 3x3, padding 1       -> 64 x 8 x 8
    pool5  3x3 / 2, ceil_mode        -> 64 x 4 x 4
    fc6 256, fc7 256 (ReLU, dropout), fc8 num_classes

One addition to ZFNet: a BatchNorm2d between conv2-conv5 and their ReLUs.
Without them, AdamW at 3e-3 left the loss at ln(10) = 2.30 for 4 epochs on the
shapes data; with them the model passes 90 % within a few epochs. conv1 has none,
as in the paper: with a BatchNorm after it, its filters trained to near noise
(mean spectral concentration 0.53; zfaccel.demo.train says how conv1 is trained
instead). The deconvnet filters with each convolution's BatchNorm-folded weights
(zfaccel.models.folding).

``first_layer="alexnet"`` is the paper's Fig. 6 comparison: AlexNet's first layer
(11x11 filters at stride 4 against ZFNet's 7x7 at stride 2) scaled the same way,
9x9 at stride 4 (padding 4). It gives conv1 16 x 16 maps and pool5 2 x 2, so fc6
takes 64 x 2 x 2 inputs; everything else is the same.
"""

from __future__ import annotations

from torch import nn

from zfaccel.demo.shapes import CLASSES, MEAN, STD
from zfaccel.geometry import pooled_size
from zfaccel.models.layers import check_num_classes, classifier
from zfaccel.nn import MaxPool2d

INPUT_SIZE = 64
# conv1 (kernel, stride, padding) per first_layer.
FIRST_LAYERS = {"zfnet": (5, 2, 2), "alexnet": (9, 4, 4)}


def check_first_layer(first_layer: object) -> str:
    """``first_layer`` when it names one of FIRST_LAYERS; ValueError naming the argument otherwise."""
    if not isinstance(first_layer, str) or first_layer not in FIRST_LAYERS:
        raise ValueError(f"first_layer must be one of {', '.join(map(repr, FIRST_LAYERS))}, got {first_layer!r}")
    return first_layer


class SmallZFNet(nn.Module):
    """``features`` -> flatten -> ``classifier``, for (N, 3, 64, 64) inputs.

    ``input_size``, ``mean`` and ``std`` tell zfaccel.models.preprocessing how images reach it:
    64 x 64 pixels normalised with the shapes data's per-channel statistics. ``class_names``
    names its 10 outputs, the shapes data's classes (zfaccel.models.class_names checks the count).
    """

    input_size = INPUT_SIZE
    mean = MEAN
    std = STD
    class_names = tuple(CLASSES)

    def __init__(self, num_classes: int = len(CLASSES), *, dropout: float = 0.3, first_layer: str = "zfnet") -> None:
        super().__init__()
        check_num_classes(num_classes)
        self.first_layer = check_first_layer(first_layer)
        kernel, stride, padding = FIRST_LAYERS[first_layer]
        side = (INPUT_SIZE + 2 * padding - kernel) // stride + 1  # conv1's maps: 32 (zfnet), 16 (alexnet)
        for _ in range(3):  # pool1, pool2, pool5 (3x3 / 2, ceil mode): 4 (zfnet), 2 (alexnet)
            side = pooled_size(side, 3, 2, 0, 1, True)
        lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel, stride=stride, padding=padding),
            nn.ReLU(inplace=True),
            MaxPool2d(3, 2, ceil_mode=True),
            lrn(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            MaxPool2d(3, 2, ceil_mode=True),
            lrn(),
            nn.Conv2d(64, 96, 3, padding=1),
            nn.BatchNorm2d(96),
            nn.ReLU(inplace=True),
            nn.Conv2d(96, 96, 3, padding=1),
            nn.BatchNorm2d(96),
            nn.ReLU(inplace=True),
            nn.Conv2d(96, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            MaxPool2d(3, 2, ceil_mode=True),
        )
        self.classifier = classifier(64 * side * side, 256, num_classes, dropout)

    def forward(self, x):
        """x: (N, 3, 64, 64) float -> logits (N, num_classes)."""
        return self.classifier(self.features(x).flatten(1))


def small_zfnet(num_classes: int = len(CLASSES), first_layer: str = "zfnet") -> SmallZFNet:
    """The demo model with random weights; ``zfaccel.models.pretrained_small()`` loads the bundled ones."""
    return SmallZFNet(num_classes, first_layer=first_layer)
