"""ZFNet, the 8-layer convnet of Zeiler & Fergus (2014), Fig. 3.

Feature maps for a 3 x 224 x 224 input:

    conv1  96 x 7x7 / 2, padding 1        -> 96 x 110 x 110   (224 + 2 - 7) // 2 + 1 = 110
    pool1  3x3 / 2, ceil_mode             -> 96 x 55 x 55     floor mode would give 54
    norm1  local response norm (5)
    conv2  256 x 5x5 / 2, no padding      -> 256 x 26 x 26    (55 - 5) // 2 + 1 = 26
    pool2  3x3 / 2, ceil_mode             -> 256 x 13 x 13    floor mode would give 12
    norm2  local response norm (5)
    conv3  384 x 3x3, padding 1           -> 384 x 13 x 13
    conv4  384 x 3x3, padding 1           -> 384 x 13 x 13
    conv5  256 x 3x3, padding 1           -> 256 x 13 x 13
    pool5  3x3 / 2                        -> 256 x 6 x 6      (13 - 3) // 2 + 1 = 6
    fc6 4096, fc7 4096 (ReLU, dropout), fc8 num_classes

Each convolution is followed by a ReLU; "contrast normalisation" is
nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2), as in pytorchcv's ZFNet,
the one public pretrained ZFNet. The paper pools, then normalises;
``lrn_before_pool=True`` gives pytorchcv's order (normalise, then pool) for its weights.
"""

from __future__ import annotations

from torch import nn

from zfaccel.models.layers import ImageNetCNN, check_num_classes, classifier
from zfaccel.nn import MaxPool2d


def _lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)


class ZFNet(ImageNetCNN):
    """``features`` (an nn.Sequential of standard modules) -> ``avgpool`` -> flatten -> ``classifier``.

    ``avgpool`` is nn.AdaptiveAvgPool2d((6, 6)): the identity at 224 x 224 (the
    features are 6 x 6 already), it lets other input sizes run, as in torchvision.
    """

    def __init__(self, num_classes: int = 1000, *, lrn_before_pool: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        check_num_classes(num_classes)

        def stage(conv: nn.Conv2d, pool: bool, norm: bool) -> list[nn.Module]:
            tail = []
            if pool:
                tail.append(MaxPool2d(3, 2, ceil_mode=norm))  # pool1/pool2 need ceil_mode; pool5 does not
            if norm:
                tail.insert(0 if lrn_before_pool else len(tail), _lrn())
            return [conv, nn.ReLU(inplace=True), *tail]

        self.features = nn.Sequential(
            *stage(nn.Conv2d(3, 96, 7, stride=2, padding=1), pool=True, norm=True),
            *stage(nn.Conv2d(96, 256, 5, stride=2), pool=True, norm=True),
            *stage(nn.Conv2d(256, 384, 3, padding=1), pool=False, norm=False),
            *stage(nn.Conv2d(384, 384, 3, padding=1), pool=False, norm=False),
            *stage(nn.Conv2d(384, 256, 3, padding=1), pool=True, norm=False),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = classifier(256 * 6 * 6, 4096, num_classes, dropout)


def zfnet(num_classes: int = 1000, *, lrn_before_pool: bool = False) -> ZFNet:
    """The paper's ZFNet (Fig. 3) with random weights; see :class:`ZFNet`."""
    return ZFNet(num_classes, lrn_before_pool=lrn_before_pool)
