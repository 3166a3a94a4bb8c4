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
#include <utility>
#include <vector>

#include "dtype_cpu.h"
#include "kernels.h"
#include "pool_shape.h"

namespace zfaccel {
namespace {

// NCHW rows for a compile-time kernel width, stride and dilation (the common
// 3x3/2, 2x2/2 and 3x3/1 pools). Columns split by phase: padded column
// u = q*SW + r takes, from pooled row oh, the pooled columns q - j for every kw
// with kw*DW = j*SW + r. With KW, SW, DW constant those kw are known at compile
// time, so the loop over q is unit-stride with SW interleaved stores, which
// the compiler vectorises; the pooled row is copied into a buffer with
// sentinels (switch 255 matches no tap) so that the loop needs no bounds.
// Measured on (16, 96, 110, 110) 3x3/2 float32, 2 threads: 39 ms for the
// generic strided loop below, and this one is several times faster.
// Tap K of phase R: padded column q*SW + R takes pooled column q - K*DW/SW
// when K*DW = j*SW + R. The value is loaded unconditionally and selected.
template <int SW, int DW, int R>
constexpr bool in_phase(int k) {
  return (k * DW) % SW == R;
}

template <typename A, int SW, int DW, int K>
inline A tap(const A* __restrict__ yq, const uint8_t* __restrict__ sq, int code0) {
  constexpr int j = (K * DW) / SW;
  const A value = yq[-j];
  return sq[-j] == code0 + K ? value : A(0);
}

// The sum of phase R's taps K..KW-1 onto `sum`. Seeding with the first tap
// rather than 0 matters: GCC turns `0.f + (m ? a : 0.f)` into a branch and
// then refuses to vectorise the loop.
template <typename A, int KW, int SW, int DW, int R, int K>
inline A add_taps(const A* __restrict__ yq, const uint8_t* __restrict__ sq, int code0, A sum) {
  if constexpr (K == KW) {
    return sum;
  } else if constexpr (in_phase<SW, DW, R>(K)) {
    return add_taps<A, KW, SW, DW, R, K + 1>(yq, sq, code0, sum + tap<A, SW, DW, K>(yq, sq, code0));
  } else {
    return add_taps<A, KW, SW, DW, R, K + 1>(yq, sq, code0, sum);
  }
}

template <typename A, int KW, int SW, int DW, int R, int K = 0>
inline A phase_sum(const A* __restrict__ yq, const uint8_t* __restrict__ sq, int code0) {
  if constexpr (K == KW) {
    return A(0);  // a phase no tap reaches (stride > dilated kernel)
  } else if constexpr (in_phase<SW, DW, R>(K)) {
    return add_taps<A, KW, SW, DW, R, K + 1>(yq, sq, code0, tap<A, SW, DW, K>(yq, sq, code0));
  } else {
    return phase_sum<A, KW, SW, DW, R, K + 1>(yq, sq, code0);
  }
}

// Unrolled at compile time over phases and taps, so the caller's loop over q
// is straight-line code with SW interleaved stores.
template <typename A, int KW, int SW, int DW, int... Rs>
inline void add_phases(A* __restrict__ accq, const A* __restrict__ yq, const uint8_t* __restrict__ sq, int code0,
                       std::integer_sequence<int, Rs...>) {
  ((accq[Rs] += phase_sum<A, KW, SW, DW, Rs>(yq, sq, code0)), ...);
}

template <typename T, int KW, int SW, int DW>
void unpool_nchw_fixed(const PoolShape& shape, const void* yv, const uint8_t* sp, void* xv, bool use_relu, int nt) {
  using S = typename T::storage;
  using A = typename T::acc;
  constexpr int64_t J = (KW - 1) * DW / SW;  // largest column shift q - ow
  const S* y = static_cast<const S*>(yv);
  S* x = static_cast<S*>(xv);
  const int64_t planes = shape.n * shape.c;
#pragma omp parallel num_threads(nt)
  {
    // A private copy: stores through uint8_t pointers may alias a shared g,
    // which would force every loop bound to be re-read from memory.
    const PoolShape g = shape;
    const int64_t q_count = (g.w + g.pw + SW - 1) / SW;  // phases cover u in [0, W + pw)
    const int64_t ow_count = g.ow;
    const int64_t buf_len = J + std::max(q_count, ow_count) + 1;
    std::vector<A> acc_v(q_count * SW), ybuf_v(buf_len);
    std::vector<uint8_t> sbuf_v(buf_len, 255);
    A* __restrict__ acc = acc_v.data();
    A* __restrict__ ybuf = ybuf_v.data();
    uint8_t* __restrict__ sbuf = sbuf_v.data();
#pragma omp for collapse(2) schedule(static)
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t h = 0; h < g.h; ++h) {
        std::fill(acc, acc + q_count * SW, A(0));
        int64_t oh_lo, oh_hi;
        covering(h, g.ph, g.kh, g.sh, g.dh, g.oh, oh_lo, oh_hi);
        for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
          const int64_t off = h + g.ph - oh * g.sh;
          if (off % g.dh != 0) continue;
          const int code0 = static_cast<int>((off / g.dh) * KW);
          const S* yrow = y + (p * g.oh + oh) * g.ow;
          const uint8_t* srow = sp + (p * g.oh + oh) * g.ow;
          for (int64_t ow = 0; ow < ow_count; ++ow) {
            ybuf[J + ow] = T::load(yrow[ow]);
            sbuf[J + ow] = srow[ow];
          }
          for (int64_t q = 0; q < q_count; ++q)
            add_phases<A, KW, SW, DW>(acc + q * SW, ybuf + J + q, sbuf + J + q, code0,
                                      std::make_integer_sequence<int, SW>{});
        }
        S* xrow = x + (p * g.h + h) * g.w;
        const A* src = acc + g.pw;
        for (int64_t w = 0; w < g.w; ++w) xrow[w] = T::store(use_relu ? relu(src[w]) : src[w]);
      }
  }
}

template <typename T, int SW>
void unpool_nchw(const PoolShape& shape, const void* yv, const uint8_t* sp, void* xv, bool use_relu, int nt) {
  using S = typename T::storage;
  using A = typename T::acc;
  const S* y = static_cast<const S*>(yv);
  S* x = static_cast<S*>(xv);
  const int64_t sw = SW > 0 ? SW : shape.sw;
  const int64_t planes = shape.n * shape.c;
#pragma omp parallel num_threads(nt)
  {
    // A private copy: stores through uint8_t pointers may alias a shared g,
    // which would force every loop bound to be re-read from memory.
    const PoolShape g = shape;
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
            A* __restrict__ dst = acc.data();
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * sw + base] += srow[ow] == code ? T::load(yrow[ow]) : A(0);
          }
        }
        S* xrow = x + (p * g.h + h) * g.w;
        for (int64_t w = 0; w < g.w; ++w) xrow[w] = T::store(use_relu ? relu(acc[w]) : acc[w]);
      }
  }
}

template <typename T>
void unpool_nhwc(const PoolShape& shape, const void* yv, const uint8_t* sp, void* xv, bool use_relu, int nt) {
  using S = typename T::storage;
  using A = typename T::acc;
  const S* y = static_cast<const S*>(yv);
  S* x = static_cast<S*>(xv);
  const int64_t C = shape.c;
#pragma omp parallel num_threads(nt)
  {
    // A private copy: stores through uint8_t pointers may alias a shared g,
    // which would force every loop bound to be re-read from memory.
    const PoolShape g = shape;
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
  if (g.dw == 1 && g.kw == 3 && g.sw == 2) return unpool_nchw_fixed<T, 3, 2, 1>(g, y, s, x, use_relu, nt);
  if (g.dw == 1 && g.kw == 2 && g.sw == 2) return unpool_nchw_fixed<T, 2, 2, 1>(g, y, s, x, use_relu, nt);
  if (g.dw == 1 && g.kw == 3 && g.sw == 1) return unpool_nchw_fixed<T, 3, 1, 1>(g, y, s, x, use_relu, nt);
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
