"""zfaccel.checks.check_int: the one rule every count and size argument goes through."""

from __future__ import annotations

import pytest
import torch

from zfaccel.checks import check_int


def test_ints_at_or_above_the_floor_pass_through():
    assert check_int(1, "k") == 1 and check_int(0, "seed", low=0) == 0 and check_int(10**12, "n") == 10**12
    assert check_int(None, "batch_size", none=True) is None


@pytest.mark.parametrize(
    ("value", "kwargs", "match"),
    [
        (0, {}, r"^k must be a positive int, got 0$"),
        (True, {}, r"^k must be a positive int, got True$"),  # a bool is not a count
        (2.0, {}, r"^k must be a positive int, got 2\.0$"),
        ("3", {}, r"^k must be a positive int, got '3'$"),
        (None, {}, r"^k must be a positive int, got None$"),
        (-1, {"low": 0}, r"^k must be an int >= 0, got -1$"),
        (0, {"none": True}, r"^k must be a positive int or None, got 0$"),
    ],
)
def test_everything_else_is_a_value_error_naming_the_argument(value, kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_int(value, "k", **kwargs)


def test_classes_from_tensors_and_sequences():
    from zfaccel.checks import check_classes

    assert check_classes([2, 0], 2, "labels").tolist() == [2, 0]
    got = check_classes(torch.tensor([[1], [3]], dtype=torch.int32), 2, "target", classes=4)
    assert got.dtype == torch.int64 and got.tolist() == [1, 3]  # any shape with one per image


@pytest.mark.parametrize(
    ("values", "kwargs", "error", "match"),
    [
        ([0, 1, 2], {}, ValueError, r"^labels must give one class per image \(2\), got 3$"),
        ([0, -1], {}, ValueError, r"^labels must be >= 0, got \[0, -1\]$"),
        ([0, 4], {"classes": 4}, ValueError, r"^labels classes must lie in 0\.\.3, got \[0, 4\]$"),
        ([0, -1], {"classes": 4}, ValueError, r"^labels classes must lie in 0\.\.3"),
        ([0.0, 1.0], {}, TypeError, r"^labels must hold ints, got \[0\.0, 1\.0\]$"),
        ([True, False], {}, TypeError, "labels must hold ints"),
        ("01", {}, TypeError, "labels must be a sequence of ints or an int tensor, got str"),
        (None, {}, TypeError, "labels must be a sequence of ints or an int tensor, got NoneType"),
    ],
)
def test_bad_classes_name_the_argument(values, kwargs, error, match):
    from zfaccel.checks import check_classes

    with pytest.raises(error, match=match):
        check_classes(values, 2, "labels", **kwargs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool, torch.complex64])
def test_class_tensors_must_be_integers(dtype):
    from zfaccel.checks import check_classes

    with pytest.raises(TypeError, match=f"labels must hold integer classes, got a {dtype} tensor"):
        check_classes(torch.zeros(2, dtype=dtype), 2, "labels")
