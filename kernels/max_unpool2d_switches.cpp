// Switch unpooling (+ optional ReLU) on the CPU: the exact transpose of max-pooling.
//
// Every pooled value goes to the input position its switch names, and values
// that land on the same position (overlapping windows, e.g. ZFNet's 3x3 stride
// 2) are summed. A thread owns whole rows of the output, accumulates each row
// in registers/L1 in the compute type and stores it once, so there are no
// atomics and each position sums its contributions in one fixed order: the
// windows that cover it, by pooled row, then by kernel column. Identical bits
// on every run and any thread count.
#include <algorithm>
#include <vector>

#include "dtype_cpu.h"
#include "kernels.h"
#include "pool_shape.h"

namespace zfaccel {
namespace {

template <typename T, int SW>
void unpool_nchw(const PoolShape& g, const void* yv, const uint8_t* sp, void* xv, bool use_relu, int nt) {
  using S = typename T::storage;
  using A = typename T::acc;
  const S* y = static_cast<const S*>(yv);
  S* x = static_cast<S*>(xv);
  const int64_t sw = SW > 0 ? SW : g.sw;
  const int64_t planes = g.n * g.c;
#pragma omp parallel num_threads(nt)
  {
    std::vector<A> acc(g.w);
#pragma omp for collapse(2) schedule(static)
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t h = 0; h < g.h; ++h) {
        std::fill(acc.begin(), acc.end(), A(0));
        int64_t oh_lo, oh_hi;
        covering(h, g.ph, g.kh, g.sh, g.dh, g.oh, oh_lo, oh_hi);
        for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
          const int64_t off = h + g.ph - oh * g.sh;
          if (off % g.dh != 0) continue;
          const int64_t kh = off / g.dh;
          const S* yrow = y + (p * g.oh + oh) * g.ow;
          const uint8_t* srow = sp + (p * g.oh + oh) * g.ow;
          for (int64_t kw = 0; kw < g.kw; ++kw) {
            const int64_t base = kw * g.dw - g.pw;  // input column of pooled column 0's tap kw
            const int64_t lo = base < 0 ? (-base + sw - 1) / sw : 0;
            const int64_t hi = g.w - 1 - base < 0 ? 0 : std::min<int64_t>(g.ow, (g.w - 1 - base) / sw + 1);
            const uint8_t code = static_cast<uint8_t>(kh * g.kw + kw);
            A* dst = acc.data();
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * sw + base] += srow[ow] == code ? T::load(yrow[ow]) : A(0);
          }
        }
        S* xrow = x + (p * g.h + h) * g.w;
        for (int64_t w = 0; w < g.w; ++w) xrow[w] = T::store(use_relu ? relu(acc[w]) : acc[w]);
      }
  }
}

template <typename T>
void unpool_nhwc(const PoolShape& g, const void* yv, const uint8_t* sp, void* xv, bool use_relu, int nt) {
  using S = typename T::storage;
  using A = typename T::acc;
  const S* y = static_cast<const S*>(yv);
  S* x = static_cast<S*>(xv);
  const int64_t C = g.c;
#pragma omp parallel num_threads(nt)
  {
    std::vector<A> acc(C);
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t h = 0; h < g.h; ++h) {
        int64_t oh_lo, oh_hi;
        covering(h, g.ph, g.kh, g.sh, g.dh, g.oh, oh_lo, oh_hi);
        for (int64_t w = 0; w < g.w; ++w) {
          std::fill(acc.begin(), acc.end(), A(0));
          int64_t ow_lo, ow_hi;
          covering(w, g.pw, g.kw, g.sw, g.dw, g.ow, ow_lo, ow_hi);
          for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
            const int64_t offh = h + g.ph - oh * g.sh;
            if (offh % g.dh != 0) continue;
            for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) {
              const int64_t offw = w + g.pw - ow * g.sw;
              if (offw % g.dw != 0) continue;
              const uint8_t code = static_cast<uint8_t>((offh / g.dh) * g.kw + offw / g.dw);
              const int64_t o = ((n * g.oh + oh) * g.ow + ow) * C;
              const S* yo = y + o;
              const uint8_t* so = sp + o;
              for (int64_t c = 0; c < C; ++c) acc[c] += so[c] == code ? T::load(yo[c]) : A(0);
            }
          }
          S* xo = x + ((n * g.h + h) * g.w + w) * C;
          for (int64_t c = 0; c < C; ++c) xo[c] = T::store(use_relu ? relu(acc[c]) : acc[c]);
        }
      }
  }
}

template <typename T>
void unpool_dispatch(const PoolShape& g, int layout, const void* y, const uint8_t* s, void* x, bool use_relu,
                     int nt) {
  if (layout == kNHWC) return unpool_nhwc<T>(g, y, s, x, use_relu, nt);
  if (g.sw == 1) return unpool_nchw<T, 1>(g, y, s, x, use_relu, nt);
  if (g.sw == 2) return unpool_nchw<T, 2>(g, y, s, x, use_relu, nt);
  return unpool_nchw<T, 0>(g, y, s, x, use_relu, nt);
}

}  // namespace

void max_unpool2d_switches_cpu(const PoolShape& g, int dtype, int layout, const void* y, const uint8_t* s, void* x,
                               bool use_relu, int num_threads) {
  check_pool_shape(g, dtype, layout, "max_unpool2d_switches_cpu");
  check_pointers(y, s, x, "max_unpool2d_switches_cpu");
  require(num_threads >= 1, "max_unpool2d_switches_cpu", "num_threads must be at least 1");
  dispatch_traits(dtype, [&](auto traits) {
    unpool_dispatch<decltype(traits)>(g, layout, y, s, x, use_relu, num_threads);
  });
}

}  // namespace zfaccel
