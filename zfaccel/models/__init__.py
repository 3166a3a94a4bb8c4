"""Models: the paper's ZFNet, the small demo model, weight loading, and the plain-CNN adapter."""

from zfaccel.models.classes import class_names
from zfaccel.models.plain import PlainCNN, layer_names, split_model
from zfaccel.models.preprocessing import load_images
from zfaccel.models.registry import load_model, pretrained_small
from zfaccel.models.small import SmallZFNet, small_zfnet
from zfaccel.models.torchvision_style import VGG, AlexNet, alexnet, vgg
from zfaccel.models.weights import load_weights, read_state_dict, zfnet_from_pytorchcv
from zfaccel.models.zfnet import ZFNet, zfnet

__all__ = [
    "VGG",
    "AlexNet",
    "PlainCNN",
    "SmallZFNet",
    "ZFNet",
    "alexnet",
    "class_names",
    "layer_names",
    "load_images",
    "load_model",
    "load_weights",
    "pretrained_small",
    "read_state_dict",
    "small_zfnet",
    "split_model",
    "vgg",
    "zfnet",
    "zfnet_from_pytorchcv",
]
