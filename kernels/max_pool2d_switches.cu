// Max-pooling with uint8 switches on CUDA: one thread per pooled output, in the
// output's memory order (NCHW or NHWC), so consecutive threads write
// consecutive bytes. Same tie rule as the CPU kernel and aten: a tap replaces
// the running maximum when it is larger or NaN, starting from -inf and the
// window's first in-bounds tap.
#include <cstdint>
#include <cmath>

#include "dtype_cuda.cuh"
#include "kernels.h"

namespace zfaccel {
namespace {

template <typename S, bool NHWC>
__global__ void max_pool2d_switches_kernel(PoolShape g, const S* __restrict__ x, S* __restrict__ y,
                                           uint8_t* __restrict__ s, bool use_relu, int64_t total) {
  using A = typename Dev<S>::acc;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t n, c, oh, ow, t;
    if (NHWC) {
      c = i % g.c; t = i / g.c; ow = t % g.ow; t /= g.ow; oh = t % g.oh; n = t / g.oh;
    } else {
      ow = i % g.ow; t = i / g.ow; oh = t % g.oh; t /= g.oh; c = t % g.c; n = t / g.c;
    }
    const int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
    const int64_t kh_lo = first_tap(hs, g.kh, g.dh, g.h), kh_hi = end_tap(hs, g.kh, g.dh, g.h);
    const int64_t kw_lo = first_tap(ws, g.kw, g.dw, g.w), kw_hi = end_tap(ws, g.kw, g.dw, g.w);
    A m = -INFINITY;  // std::numeric_limits is host-only in device code
    int code = static_cast<int>(kh_lo * g.kw + kw_lo);
    for (int64_t kh = kh_lo; kh < kh_hi; ++kh) {
      const int64_t ih = hs + kh * g.dh;
      for (int64_t kw = kw_lo; kw < kw_hi; ++kw) {
        const int64_t iw = ws + kw * g.dw;
        const int64_t idx = NHWC ? ((n * g.h + ih) * g.w + iw) * g.c + c : ((n * g.c + c) * g.h + ih) * g.w + iw;
        const A v = Dev<S>::load(x[idx]);
        if (v > m || v != v) {
          m = v;
          code = static_cast<int>(kh * g.kw + kw);
        }
      }
    }
    y[i] = Dev<S>::store(use_relu ? relu_dev(m) : m);
    s[i] = static_cast<uint8_t>(code);
  }
}

template <typename S>
void launch(const PoolShape& g, int layout, const void* x, void* y, uint8_t* s, bool use_relu, cudaStream_t st) {
  const int64_t total = g.n * g.c * g.oh * g.ow;
  if (layout == kNHWC)
    max_pool2d_switches_kernel<S, true><<<grid_for(total), kThreads, 0, st>>>(
        g, static_cast<const S*>(x), static_cast<S*>(y), s, use_relu, total);
  else
    max_pool2d_switches_kernel<S, false><<<grid_for(total), kThreads, 0, st>>>(
        g, static_cast<const S*>(x), static_cast<S*>(y), s, use_relu, total);
}

}  // namespace

void max_pool2d_switches_cuda(const PoolShape& g, int dtype, int layout, const void* x, void* y, uint8_t* s,
                              bool use_relu, uintptr_t stream) {
  check_pool_shape(g, dtype, layout, "max_pool2d_switches_cuda");
  check_pointers(x, y, s, "max_pool2d_switches_cuda");
  const cudaStream_t st = reinterpret_cast<cudaStream_t>(stream);
  dispatch_storage(dtype, [&](auto tag) { launch<typename decltype(tag)::type>(g, layout, x, y, s, use_relu, st); });
  check_launch("max_pool2d_switches_cuda");
}

}  // namespace zfaccel
