"""zfaccel.identity: model and listing hashes, and the one-line message naming settings that differ."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from zfaccel.identity import describe_mismatch, format_value, listing_identity, model_identity
from zfaccel.models import small_zfnet


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return small_zfnet(10).eval()


def test_same_weights_same_hash(model):
    twin = small_zfnet(10)
    twin.load_state_dict(model.state_dict())
    digest = model_identity(model)
    assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")
    assert model_identity(twin) == digest
    assert model_identity(copy.deepcopy(model).train()) == digest  # the mode is no weight


def test_any_changed_weight_changes_the_hash(model):
    digest = model_identity(model)
    seen = {digest}
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            continue
        other = copy.deepcopy(model)
        with torch.no_grad():
            flat = other.state_dict()[key].view(-1)
            flat[-1] = torch.nextafter(flat[-1], torch.tensor(float("inf")))  # one ulp of one element
        seen.add(model_identity(other))
    floats = sum(v.is_floating_point() for v in model.state_dict().values())
    assert floats > 10 and len(seen) == floats + 1


def test_class_shape_and_dtype_count():
    a = nn.Sequential(nn.Linear(2, 3))
    b = nn.Sequential(nn.Linear(2, 3))
    b.load_state_dict(a.state_dict())
    assert model_identity(a) == model_identity(b)
    assert model_identity(nn.ModuleList(a)) != model_identity(a)  # same state_dict, other class
    assert model_identity(copy.deepcopy(a).double()) != model_identity(a)
    assert model_identity(copy.deepcopy(a).bfloat16()) != model_identity(copy.deepcopy(a).half())
    # The same bytes under another shape: (3, 2) weights viewed as (2, 3).
    c = copy.deepcopy(a)
    c[0].weight = nn.Parameter(a[0].weight.detach().reshape(2, 3))
    assert model_identity(c) != model_identity(a)
    with pytest.raises(TypeError, match="model must be"):
        model_identity(a.state_dict())


def test_listing_identity():
    base = listing_identity(["a.png", "b.png"])
    assert listing_identity(["a.png", "b.png"]) == base
    assert listing_identity(["b.png", "a.png"]) != base  # order is the caller's
    assert listing_identity(["a.pngb.png"]) != base
    assert listing_identity(["a", "b"]) != listing_identity(["ab"]) != listing_identity(["a", "", "b"])
    assert len(listing_identity([])) == 64
    with pytest.raises(ValueError, match=r"items\[1\] holds a NUL"):
        listing_identity(["a", "b\0c"])
    with pytest.raises(TypeError, match=r"items\[0\] must be a str"):
        listing_identity([3])
    with pytest.raises(TypeError, match="sequence of strings"):
        listing_identity("a.png")


def test_describe_mismatch_names_every_difference():
    h1, h2 = "3f2a" + "0" * 60, "91bc" + "1" * 60
    saved = {"model": h1, "k": 9, "window": (16, 16), "channels": [3, 7], "layer": "conv5"}
    assert describe_mismatch(saved, dict(saved), "the checkpoint") is None
    current = {**saved, "model": h2, "k": 5, "window": (8, 16)}
    message = describe_mismatch(saved, current, "the checkpoint")
    assert message == (
        "model (hash 91bc11111111…) differs from the checkpoint's (hash 3f2a00000000…); "
        "k 5 differs from the checkpoint's 9; window 8x16 differs from the checkpoint's 16x16"
    )
    assert "\n" not in message


def test_describe_mismatch_keys_on_one_side():
    message = describe_mismatch({"k": 9, "old": 1}, {"k": 9, "new": "x"}, "the store")
    assert message == "new x is not recorded in the store; the store records old 1, missing here"
    assert describe_mismatch({}, {}, "the store") is None
    with pytest.raises(TypeError, match="mappings"):
        describe_mismatch([("k", 9)], {"k": 9}, "the store")


def test_format_value():
    assert format_value((224, 224)) == "224x224"
    assert format_value((0.5, 0.5)) == "(0.5, 0.5)"  # floats are no size
    assert format_value([3, 7]) == "[3, 7]"  # a list of two channels is no size either
    assert format_value(list(range(256))) == "[0, 1, 2, …, 255] (256 values)"
    assert format_value(None) == "none"
    assert format_value("conv5") == "conv5"
    assert format_value("abc123") == "abc123"  # too short for a hash
