"""torchvision's AlexNet and VGG (11, 13, 16, 19; no batch norm), without torchvision.

Same modules in the same order as torchvision's, so their state_dicts have exactly
torchvision's keys and shapes and its weight files load as they are (read without
running code, see zfaccel.models.weights). Pools are zfaccel.nn.MaxPool2d, a drop-in
nn.MaxPool2d, as in ZFNet. Feature maps for a 3 x 224 x 224 input:

    AlexNet  conv1 64 x 11x11 / 4, padding 2  -> 55 x 55    (224 + 4 - 11) // 4 + 1 = 55
             pool1 3x3 / 2                    -> 27 x 27
             conv2 192 x 5x5, padding 2, pool2 -> 27, 13
             conv3 384, conv4 256, conv5 256 x 3x3, padding 1 -> 13; pool5 -> 6 x 6
             classifier: Dropout, fc6 4096, ReLU, Dropout, fc7 4096, ReLU, fc8 (Linears at 1, 4, 6)
    VGG      3x3 convolutions (padding 1, each with a ReLU) in five blocks of 64, 128, 256, 512,
             512 channels, each block ending in a 2x2 / 2 max-pool: 224 -> 112, 56, 28, 14, 7;
             classifier: fc6 4096, ReLU, Dropout, fc7 4096, ReLU, Dropout, fc8 (Linears at 0, 3, 6)

Between ``features`` and ``classifier`` both have torchvision's ``avgpool``, an
nn.AdaptiveAvgPool2d: the identity at 224 px, it lets other input sizes run.
"""

from __future__ import annotations

from torch import nn

from zfaccel.models.layers import ImageNetCNN, check_num_classes, classifier
from zfaccel.nn import MaxPool2d

# torchvision's VGG configurations A, B, D, E: conv widths, "M" a 2x2 / 2 max-pool.
VGG_CONFIGS: dict[int, tuple[int | str, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


class AlexNet(ImageNetCNN):
    """torchvision's AlexNet (the one-GPU variant of Krizhevsky et al. 2012), same keys and shapes."""

    def __init__(self, num_classes: int = 1000, *, dropout: float = 0.5) -> None:
        super().__init__()
        check_num_classes(num_classes)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )


class VGG(ImageNetCNN):
    """torchvision's VGG ``depth`` (11, 13, 16 or 19 weight layers, no batch norm), same keys and shapes.

    Random weights are initialised as torchvision does: convolutions Kaiming-normal (fan out),
    linear layers N(0, 0.01), biases 0.
    """

    def __init__(self, depth: int = 16, num_classes: int = 1000, *, dropout: float = 0.5) -> None:
        super().__init__()
        if isinstance(depth, bool) or depth not in VGG_CONFIGS:
            raise ValueError(f"depth must be one of {', '.join(map(str, VGG_CONFIGS))}, got {depth!r}")
        layers: list[nn.Module] = []
        channels = 3
        for width in VGG_CONFIGS[depth]:
            if width == "M":
                layers.append(MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
                channels = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = classifier(512 * 7 * 7, 4096, num_classes, dropout)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)


def alexnet(num_classes: int = 1000) -> AlexNet:
    """torchvision's AlexNet with random weights; :func:`zfaccel.models.load_weights` loads torchvision's."""
    return AlexNet(num_classes)


def vgg(depth: int, num_classes: int = 1000) -> VGG:
    """torchvision's VGG11/13/16/19 (``depth``) with random weights; load torchvision's with load_weights."""
    return VGG(depth, num_classes)
