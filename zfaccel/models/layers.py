"""What the bundled architectures share: the ImageNet model's frame, the ``num_classes`` check, the classifier."""

from __future__ import annotations

from torch import nn

from zfaccel.checks import check_int
from zfaccel.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD


class ImageNetCNN(nn.Module):
    """``features`` -> ``avgpool`` -> flatten -> ``classifier``, torchvision's layout (ZFNet, AlexNet, VGG).

    ``input_size``, ``mean`` and ``std`` tell zfaccel.models.preprocessing how images reach it:
    224 x 224 pixels normalised with ImageNet's per-channel statistics. Subclasses set the three modules.
    """

    input_size = 224
    mean = IMAGENET_MEAN
    std = IMAGENET_STD

    def forward(self, x):
        """x: (N, 3, 224, 224) float -> logits (N, num_classes)."""
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def check_num_classes(num_classes: object) -> int:
    """``num_classes`` itself when it is a positive int; ValueError naming it otherwise."""
    return check_int(num_classes, "num_classes")


def classifier(in_features: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    """fc6, fc7 (each Linear, ReLU, Dropout) and fc8: the head of ZFNet, VGG and the demo model.

    Its Linears sit at indices 0, 3 and 6, so the parameter names are torchvision VGG's
    (classifier.0.weight ... classifier.6.bias). Maps (N, in_features) float to (N, num_classes).
    """
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, check_num_classes(num_classes)),
    )
