"""Approximate occlusion: tau = 1 is the exact engine bit for bit; the projective-field threshold cuts
regions as specified; drill-down keeps the requested grid, refines where the coarse map drops most and
is exact where it sweeps; MAC reports; clear errors where the engine cannot approximate."""

from __future__ import annotations

import math

import pytest
import torch
from occlusion_support import build

import zfaccel
from zfaccel.analysis.occlusion.approximate import _bilinear
from zfaccel.analysis.occlusion.plan import cut


@pytest.fixture(scope="module")
def zf():
    return build("zfnet", seed=4)


@pytest.fixture(scope="module")
def small():
    return build("small", seed=2)


@pytest.mark.parametrize("kind", ["zfnet", "vgg", "alexnet", "small"])
def test_tau_one_is_the_exact_engine_bit_for_bit(kind, gen):
    model, size = build(kind, seed=1)
    images = torch.randn(2, 3, size, size, generator=gen)
    occ = zfaccel.Occlusion(model)
    window, stride = size // 4, size // 8
    exact = occ.sweep(images, window=window, stride=stride)
    same = occ.sweep(images, window=window, stride=stride, approximate=zfaccel.Approximation(tau=1.0))
    for name in ("prob", "label", "feature"):
        assert torch.equal(getattr(exact, name), getattr(same, name)), name
    assert same.approximation is None and same.macs is None  # nothing was approximated


def test_cut_keeps_at_most_tau_of_the_map_around_the_centre():
    lo, hi = torch.tensor([0, 10, 3, 5]), torch.tensor([8, 13, 20, 6])
    new_lo, new_hi = cut(lo, hi, 0.25, 20)  # at most ceil(5) = 5 cells
    assert (new_hi - new_lo).tolist() == [5, 3, 5, 1]
    assert new_lo.tolist() == [1, 10, 9, 5]  # centred: (8 - 5) // 2 = 1, (17 - 5) // 2 = 6 -> 3 + 6
    assert cut(lo, hi, 1.0, 20) == (lo, hi)


def test_small_tau_changes_the_maps_and_spends_fewer_macs(zf, gen):
    model, size = zf
    images = torch.randn(1, 3, size, size, generator=gen)
    occ = zfaccel.Occlusion(model)
    exact = occ.sweep(images, window=32, stride=32)
    approx = occ.sweep(images, window=32, stride=32, approximate=zfaccel.Approximation(tau=0.3))
    assert approx.grid_shape == exact.grid_shape and not torch.equal(approx.prob, exact.prob)
    macs = approx.macs
    assert macs["spent"] < macs["exact"] < macs["full"]
    counted = zfaccel.analysis.occlusion.macs.count_macs(model, (size, size), (32, 32), (32, 32), tau=0.3)
    cells = math.prod(approx.grid_shape)
    assert macs["spent"] == pytest.approx(counted.incremental * cells)
    assert macs["full"] == pytest.approx(counted.full * cells)


def test_bilinear_interpolation_on_the_coarse_grid():
    maps = torch.tensor([[[0.0, 2.0], [4.0, 6.0]]])
    out = _bilinear(maps, torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.0, 0.5, 1.0]))
    assert out[0].tolist() == [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [4.0, 5.0, 6.0]]


def test_drill_down_keeps_the_grid_and_is_exact_where_it_sweeps(small, gen, monkeypatch):
    model, size = small
    images = torch.randn(2, 3, size, size, generator=gen)
    occ = zfaccel.Occlusion(model)
    window, stride = 8, 2
    exact = occ.sweep(images, window=window, stride=stride)
    n = exact.grid_shape
    swept = []
    real = occ._evaluate
    monkeypatch.setattr(occ, "_evaluate", lambda engine, pos, *a: swept.append(pos.clone()) or real(engine, pos, *a))
    approx = occ.sweep(images, window=window, stride=stride, approximate=zfaccel.Approximation(drill_down=0.3))
    assert approx.grid_shape == n and approx.prob.shape == exact.prob.shape
    coarse, fine = swept
    assert len(coarse) == 2 * math.prod(zfaccel.analysis.occlusion.grid((size, size), (8, 8), (4, 4)))
    assert (coarse[:, 1:] % 4 == 0).all()  # the first pass at twice the stride
    cells = n[0] * n[1]
    assert len(fine) <= 2 * math.ceil(0.3 * cells) and len(fine) > 0
    # Every swept position (coarse or refined) holds the exact values; refined ones were the largest drops.
    for pos in (coarse, fine):
        b, i, j = pos[:, 0], pos[:, 1] // stride, pos[:, 2] // stride
        ok = (pos[:, 1] % stride == 0) & (pos[:, 2] % stride == 0)
        torch.testing.assert_close(approx.prob[b[ok], i[ok], j[ok]], exact.prob[b[ok], i[ok], j[ok]], rtol=0, atol=1e-6)
        assert torch.equal(approx.label[b[ok], i[ok], j[ok]], exact.label[b[ok], i[ok], j[ok]])
    assert approx.macs["spent"] < approx.macs["exact"]


def test_drill_down_of_everything_is_exact(small, gen):
    model, size = small
    images = torch.randn(1, 3, size, size, generator=gen)
    occ = zfaccel.Occlusion(model)
    exact = occ.sweep(images, window=8, stride=3)
    full = occ.sweep(images, window=8, stride=3, approximate=zfaccel.Approximation(drill_down=1.0))
    torch.testing.assert_close(full.prob, exact.prob, rtol=0, atol=1e-6)
    torch.testing.assert_close(full.feature, exact.feature, rtol=1e-5, atol=1e-4)
    assert torch.equal(full.label, exact.label)


def test_default_is_an_approximation():
    default = zfaccel.Approximation.default()
    assert not default.exact
    assert default.as_dict()["coarse_stride"] is None


@pytest.mark.parametrize("kwargs, error, match", [
    ({"tau": 0}, ValueError, "tau must lie in"),
    ({"tau": 1.5}, ValueError, "tau must lie in"),
    ({"tau": "0.5"}, TypeError, "tau must be a number"),
    ({"drill_down": 0}, ValueError, "drill_down must lie in"),
    ({"drill_down": True}, TypeError, "drill_down must be"),
    ({"coarse_stride": 8}, ValueError, "give drill_down too"),
    ({"drill_down": 0.5, "coarse_stride": 0}, ValueError, "coarse_stride"),
])  # fmt: skip
def test_bad_settings_name_themselves(kwargs, error, match):
    with pytest.raises(error, match=match):
        zfaccel.Approximation(**kwargs)


def test_models_the_engine_cannot_approximate_are_refused(small, gen):
    model, size = small
    images = torch.randn(1, 3, size, size, generator=gen)
    with pytest.raises(ValueError, match="incremental=False"):
        zfaccel.Occlusion(model).sweep(images, window=8, approximate=zfaccel.Approximation(tau=0.5), incremental=False)

    class Wrapped(torch.nn.Module):  # not a plain CNN: the incremental engine cannot serve it
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x):
            return self.inner(x)

    with pytest.raises(ValueError, match="tau=0.5 approximates incremental inference"):
        zfaccel.Occlusion(Wrapped()).sweep(images, window=8, feature_layer="inner",
                                           approximate=zfaccel.Approximation(tau=0.5))  # fmt: skip
    with pytest.raises(TypeError, match="approximate must be"):
        zfaccel.Occlusion(model).sweep(images, window=8, approximate=0.5)
