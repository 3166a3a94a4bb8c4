// Max-pooling with uint8 switches on the CPU (OpenMP over output rows).
//
// Each output takes the maximum of its window with torch's rule, visited in
// row-major window order: a value replaces the running maximum when it is
// larger or NaN, starting from -inf and the window's first in-bounds element.
// So the first maximum wins, and if the window holds NaN, the last NaN wins,
// exactly as aten's kernels choose their indices.
//
// NCHW: a thread owns an output row; windows wholly inside the row (the
// interior columns) run as (kh, kw) sweeps over contiguous outputs, which the
// compiler vectorises for unit and stride-2 steps; border columns clip taps.
// NHWC: a thread owns an output row; the inner loop runs over channels.
#include <algorithm>
#include <limits>
#include <vector>

#include "dtype_cpu.h"
#include "kernels.h"
#include "pool_shape.h"

namespace zfaccel {
namespace {

// Output columns [lo, hi) whose windows lie wholly inside the input row.
struct Cols {
  int64_t lo, hi;
};

Cols interior_cols(const PoolShape& g) {
  const int64_t lo = std::min<int64_t>((g.pw + g.sw - 1) / g.sw, g.ow);
  const int64_t last = g.w - 1 + g.pw - (g.kw - 1) * g.dw;  // ow * sw <= last
  int64_t hi = last < 0 ? 0 : std::min<int64_t>(last / g.sw + 1, g.ow);
  return {lo, std::max(hi, lo)};
}

template <typename T>
inline void take(typename T::acc v, int32_t code, typename T::acc& m, int32_t& s) {
  const bool up = (v > m) | is_nan(v);
  m = up ? v : m;
  s = up ? code : s;
}

template <typename T, int SW>
// g by value, not by reference: see pool_nchw's private copy.
void pool_row_nchw(const PoolShape g, const Cols cols, const typename T::storage* plane, int64_t oh,
                   typename T::acc* m, int32_t* s, typename T::storage* yrow, uint8_t* srow, bool use_relu) {
  using A = typename T::acc;
  const int64_t sw = SW > 0 ? SW : g.sw;
  const int64_t hs = oh * g.sh - g.ph;
  const int64_t kh_lo = first_tap(hs, g.kh, g.dh, g.h);
  const int64_t kh_hi = end_tap(hs, g.kh, g.dh, g.h);
  const A neg_inf = -std::numeric_limits<A>::infinity();

  for (int64_t ow = cols.lo; ow < cols.hi; ++ow) {
    m[ow] = neg_inf;
    s[ow] = static_cast<int32_t>(kh_lo * g.kw);
  }
  for (int64_t kh = kh_lo; kh < kh_hi; ++kh) {
    const typename T::storage* row = plane + (hs + kh * g.dh) * g.w;
    for (int64_t kw = 0; kw < g.kw; ++kw) {
      const typename T::storage* p = row + kw * g.dw - g.pw;
      const int32_t code = static_cast<int32_t>(kh * g.kw + kw);
      for (int64_t ow = cols.lo; ow < cols.hi; ++ow) take<T>(T::load(p[ow * sw]), code, m[ow], s[ow]);
    }
  }
  // Border columns: windows that reach into the padding, taps clipped.
  auto border = [&](int64_t ow) {
    const int64_t ws = ow * sw - g.pw;
    const int64_t kw_lo = first_tap(ws, g.kw, g.dw, g.w);
    const int64_t kw_hi = end_tap(ws, g.kw, g.dw, g.w);
    A mv = neg_inf;
    int32_t sv = static_cast<int32_t>(kh_lo * g.kw + kw_lo);
    for (int64_t kh = kh_lo; kh < kh_hi; ++kh) {
      const typename T::storage* row = plane + (hs + kh * g.dh) * g.w + ws;
      for (int64_t kw = kw_lo; kw < kw_hi; ++kw)
        take<T>(T::load(row[kw * g.dw]), static_cast<int32_t>(kh * g.kw + kw), mv, sv);
    }
    m[ow] = mv;
    s[ow] = sv;
  };
  for (int64_t ow = 0; ow < cols.lo; ++ow) border(ow);
  for (int64_t ow = cols.hi; ow < g.ow; ++ow) border(ow);
  for (int64_t ow = 0; ow < g.ow; ++ow) {
    yrow[ow] = T::store_exact(use_relu ? relu(m[ow]) : m[ow]);
    srow[ow] = static_cast<uint8_t>(s[ow]);
  }
}

template <typename T, int SW>
void pool_nchw(const PoolShape& shape, const void* xv, void* yv, uint8_t* sp, bool use_relu, int nt) {
  using S = typename T::storage;
  const S* x = static_cast<const S*>(xv);
  S* y = static_cast<S*>(yv);
  const Cols cols = interior_cols(shape);
  const int64_t planes = shape.n * shape.c;
#pragma omp parallel num_threads(nt)
  {
    // A private copy: stores through uint8_t pointers may alias a shared g,
    // which would force every loop bound to be re-read from memory.
    const PoolShape g = shape;
    std::vector<typename T::acc> m(g.ow);
    std::vector<int32_t> s(g.ow);
#pragma omp for collapse(2) schedule(static)
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t oh = 0; oh < g.oh; ++oh)
        pool_row_nchw<T, SW>(g, cols, x + p * g.h * g.w, oh, m.data(), s.data(), y + (p * g.oh + oh) * g.ow,
                             sp + (p * g.oh + oh) * g.ow, use_relu);
  }
}

template <typename T>
void pool_nhwc(const PoolShape& shape, const void* xv, void* yv, uint8_t* sp, bool use_relu, int nt) {
  using S = typename T::storage;
  using A = typename T::acc;
  const S* x = static_cast<const S*>(xv);
  S* y = static_cast<S*>(yv);
  const int64_t C = shape.c;
#pragma omp parallel num_threads(nt)
  {
    // A private copy: stores through uint8_t pointers may alias a shared g,
    // which would force every loop bound to be re-read from memory.
    const PoolShape g = shape;
    std::vector<A> m(C);
    std::vector<int32_t> s(C);
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t oh = 0; oh < g.oh; ++oh) {
        const int64_t hs = oh * g.sh - g.ph;
        const int64_t kh_lo = first_tap(hs, g.kh, g.dh, g.h), kh_hi = end_tap(hs, g.kh, g.dh, g.h);
        for (int64_t ow = 0; ow < g.ow; ++ow) {
          const int64_t ws = ow * g.sw - g.pw;
          const int64_t kw_lo = first_tap(ws, g.kw, g.dw, g.w), kw_hi = end_tap(ws, g.kw, g.dw, g.w);
          const int32_t first = static_cast<int32_t>(kh_lo * g.kw + kw_lo);
          for (int64_t c = 0; c < C; ++c) {
            m[c] = -std::numeric_limits<A>::infinity();
            s[c] = first;
          }
          for (int64_t kh = kh_lo; kh < kh_hi; ++kh)
            for (int64_t kw = kw_lo; kw < kw_hi; ++kw) {
              const S* p = x + ((n * g.h + hs + kh * g.dh) * g.w + ws + kw * g.dw) * C;
              const int32_t code = static_cast<int32_t>(kh * g.kw + kw);
              for (int64_t c = 0; c < C; ++c) take<T>(T::load(p[c]), code, m[c], s[c]);
            }
          S* yo = y + ((n * g.oh + oh) * g.ow + ow) * C;
          uint8_t* so = sp + ((n * g.oh + oh) * g.ow + ow) * C;
          for (int64_t c = 0; c < C; ++c) {
            yo[c] = T::store_exact(use_relu ? relu(m[c]) : m[c]);
            so[c] = static_cast<uint8_t>(s[c]);
          }
        }
      }
  }
}

template <typename T>
void pool_dispatch(const PoolShape& g, int layout, const void* x, void* y, uint8_t* s, bool use_relu, int nt) {
  if (layout == kNHWC) return pool_nhwc<T>(g, x, y, s, use_relu, nt);
  // Specialised strides let the compiler turn the strided loads into vector shuffles.
  if (g.sw == 1) return pool_nchw<T, 1>(g, x, y, s, use_relu, nt);
  if (g.sw == 2) return pool_nchw<T, 2>(g, x, y, s, use_relu, nt);
  return pool_nchw<T, 0>(g, x, y, s, use_relu, nt);
}

}  // namespace

void max_pool2d_switches_cpu(const PoolShape& g, int dtype, int layout, const void* x, void* y, uint8_t* s,
                             bool use_relu, int num_threads) {
  check_pool_shape(g, dtype, layout, "max_pool2d_switches_cpu");
  check_pointers(x, y, s, "max_pool2d_switches_cpu");
  require(num_threads >= 1, "max_pool2d_switches_cpu", "num_threads must be at least 1");
  dispatch_traits(dtype, [&](auto traits) {
    pool_dispatch<decltype(traits)>(g, layout, x, y, s, use_relu, num_threads);
  });
}

}  // namespace zfaccel
