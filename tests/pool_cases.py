"""The table of pooling configurations every kernel test crosses with dtypes and backends."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PoolCase:
    """One configuration; every test input has N*C >= 3 planes so it holds all three kinds of data."""

    name: str
    shape: tuple[int, int, int, int]  # (N, C, H, W) on compiled backends
    kernel: int | tuple[int, int]
    stride: int | tuple[int, int] | None
    padding: int | tuple[int, int]
    dilation: int | tuple[int, int]
    ceil_mode: bool
    small: tuple[int, int, int, int] | None = None  # shape under the Triton interpreter (default: shape)

    def input_shape(self, interpreted: bool) -> tuple[int, int, int, int]:
        return self.small if interpreted and self.small else self.shape

    def kwargs(self) -> dict:
        return dict(
            kernel_size=self.kernel,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            ceil_mode=self.ceil_mode,
        )

    def unpool_kwargs(self) -> dict:
        return dict(kernel_size=self.kernel, stride=self.stride, padding=self.padding, dilation=self.dilation)


CASES = [
    # ZFNet (paper Fig. 3), 3x3 stride-2 pools: 110 -> 55 needs ceil_mode, 26 -> 13, 13 -> 6.
    PoolCase("zfnet_pool1", (2, 96, 110, 110), 3, 2, 0, 1, True, small=(1, 3, 21, 21)),
    PoolCase("zfnet_pool2", (2, 256, 26, 26), 3, 2, 0, 1, True, small=(1, 4, 14, 14)),
    PoolCase("zfnet_pool5", (2, 256, 13, 13), 3, 2, 0, 1, False, small=(2, 3, 13, 13)),
    # torchvision AlexNet: 3x3/2 without ceil_mode, 55 -> 27.
    PoolCase("alexnet_pool1", (2, 64, 55, 55), 3, 2, 0, 1, False, small=(1, 3, 15, 15)),
    # VGG: 2x2/2, windows that never overlap.
    PoolCase("vgg_pool", (2, 64, 112, 112), 2, None, 0, 1, False, small=(1, 3, 16, 16)),
    # ResNet stem: 3x3/2 with padding 1 (windows reach into the padding).
    PoolCase("padded", (2, 64, 56, 56), 3, 2, 1, 1, False, small=(1, 3, 17, 17)),
    # Inception-style 3x3 stride 1, padding 1: the output keeps the input's size.
    PoolCase("stride1_3x3", (2, 16, 15, 15), 3, 1, 1, 1, False, small=(1, 3, 9, 9)),
    # Non-square kernel, stride and padding.
    PoolCase("non_square", (2, 5, 31, 23), (3, 2), (2, 1), (1, 0), 1, False, small=(1, 3, 11, 9)),
    # Stride larger than the kernel: gaps between windows; ceil_mode clips the last one.
    PoolCase("stride_gt_kernel", (2, 3, 20, 21), 2, 3, 0, 1, True, small=(1, 3, 11, 12)),
    # Dilation (taps spread out), with and without ceil_mode, odd sizes 2^k + 17.
    PoolCase("dilated", (2, 4, 33, 29), 3, 2, 1, 2, False, small=(1, 3, 13, 11)),
    PoolCase("dilated_ceil", (1, 3, 49, 33), (3, 2), (2, 3), (1, 1), (2, 3), True, small=(1, 3, 17, 15)),
    PoolCase("odd_2k_plus_17", (1, 3, 81, 49), 3, 2, 1, 1, True, small=(1, 3, 33, 25)),
    # Degenerate maps: 1x1 maps with a 1x1 window, and one window covering the whole map.
    PoolCase("map_1x1", (3, 7, 1, 1), 1, 1, 0, 1, False),
    PoolCase("global_window", (2, 8, 7, 7), 7, 1, 0, 1, False, small=(1, 3, 7, 7)),
    # A single row, a wide 1x3 kernel with ceil_mode.
    PoolCase("single_row", (2, 2, 1, 40), (1, 3), (1, 2), 0, 1, True),
    # The largest window switches allow: 15 x 17 = 255 elements, padded by half.
    PoolCase("window_255", (1, 3, 20, 21), (15, 17), 1, (7, 8), 1, False, small=(1, 3, 2, 17)),
    # 1x1 kernel with stride 2: plain subsampling, every switch 0.
    PoolCase("subsample", (2, 3, 9, 9), 1, 2, 0, 1, False),
]

CASE_IDS = [c.name for c in CASES]


def crossed(targets: list, dtypes: list, layouts: list) -> list:
    """pytest params (target, case, dtype, layout): the full cross on compiled backends.

    Under the Triton interpreter (about 1000x slower) each case runs float32 in
    every layout and each other dtype in one layout, rotating with the case, so
    every (dtype, layout) pair still runs on some case: addressing and dtype
    conversion are independent parts of the kernels.
    """
    import pytest

    params = []
    for target in targets:
        (device, backend) = target.values[0]
        for i, case in enumerate(CASES):
            for j, dtype in enumerate(dtypes):
                for k, layout in enumerate(layouts):
                    if (device, backend) == ("cpu", "triton") and j > 0 and k != (i + j) % len(layouts):
                        continue
                    params.append(
                        pytest.param(
                            target.values[0], case, dtype, layout,
                            marks=target.marks, id=f"{target.id}-{case.name}-{str(dtype)[6:]}-{layout}",
                        )
                    )  # fmt: skip
    return params
