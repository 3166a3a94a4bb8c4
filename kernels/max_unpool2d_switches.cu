// Switch unpooling (+ optional ReLU) on CUDA as a gather: one thread per
// unpooled position visits the pooled windows that cover it (by pooled row,
// then column), adds the values whose switch names it, and stores once. No
// atomics: identical bits on every run.
#include <cstdint>

#include "dtype_cuda.cuh"
#include "kernels.h"

namespace zfaccel {
namespace {

template <typename S, bool NHWC>
__global__ void max_unpool2d_switches_kernel(PoolShape g, const S* __restrict__ y, const uint8_t* __restrict__ s,
                                             S* __restrict__ x, bool use_relu, int64_t total) {
  using A = typename Dev<S>::acc;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t n, c, h, w, t;
    if (NHWC) {
      c = i % g.c; t = i / g.c; w = t % g.w; t /= g.w; h = t % g.h; n = t / g.h;
    } else {
      w = i % g.w; t = i / g.w; h = t % g.h; t /= g.h; c = t % g.c; n = t / g.c;
    }
    int64_t oh_lo, oh_hi, ow_lo, ow_hi;
    covering(h, g.ph, g.kh, g.sh, g.dh, g.oh, oh_lo, oh_hi);
    covering(w, g.pw, g.kw, g.sw, g.dw, g.ow, ow_lo, ow_hi);
    A acc = A(0);
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
      const int64_t offh = h + g.ph - oh * g.sh;
      if (offh % g.dh != 0) continue;
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) {
        const int64_t offw = w + g.pw - ow * g.sw;
        if (offw % g.dw != 0) continue;
        const int code = static_cast<int>((offh / g.dh) * g.kw + offw / g.dw);
        const int64_t o = NHWC ? ((n * g.oh + oh) * g.ow + ow) * g.c + c : ((n * g.c + c) * g.oh + oh) * g.ow + ow;
        if (s[o] == code) acc += Dev<S>::load(y[o]);
      }
    }
    x[i] = Dev<S>::store(use_relu ? relu_dev(acc) : acc);
  }
}

template <typename S>
void launch(const PoolShape& g, int layout, const void* y, const uint8_t* s, void* x, bool use_relu, cudaStream_t st) {
  const int64_t total = g.n * g.c * g.h * g.w;
  if (layout == kNHWC)
    max_unpool2d_switches_kernel<S, true><<<grid_for(total), kThreads, 0, st>>>(
        g, static_cast<const S*>(y), s, static_cast<S*>(x), use_relu, total);
  else
    max_unpool2d_switches_kernel<S, false><<<grid_for(total), kThreads, 0, st>>>(
        g, static_cast<const S*>(y), s, static_cast<S*>(x), use_relu, total);
}

}  // namespace

void max_unpool2d_switches_cuda(const PoolShape& g, int dtype, int layout, const void* y, const uint8_t* s, void* x,
                                bool use_relu, uintptr_t stream) {
  check_pool_shape(g, dtype, layout, "max_unpool2d_switches_cuda");
  check_pointers(y, s, x, "max_unpool2d_switches_cuda");
  const cudaStream_t st = reinterpret_cast<cudaStream_t>(stream);
  dispatch_storage(dtype, [&](auto tag) { launch<typename decltype(tag)::type>(g, layout, y, s, x, use_relu, st); });
  check_launch("max_unpool2d_switches_cuda");
}

}  // namespace zfaccel
