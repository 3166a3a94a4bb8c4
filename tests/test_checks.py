"""zfaccel.checks.check_int: the one rule every count and size argument goes through."""

from __future__ import annotations

import pytest

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
