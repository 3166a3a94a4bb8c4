// Max-pooling with uint8 switches on the CPU (OpenMP over output rows).
//
// Each output takes the maximum of its window with torch's rule, visited in
// row-major window order: a value replaces the running maximum when it is
// larger or NaN, starting from -inf and the window's first in-bounds element.
// So the first maximum wins, and if the window holds NaN, the last NaN wins,
// exactly as aten's kernels choose their indices.
//
// Both layouts run 16 lanes at a time (simd_cpu.h). NCHW: items are bands of
// output rows of a plane, pooled separably along the rows (NchwPool); NHWC:
// items are output rows of an image, lanes run over channels (pool_nhwc).
// Items are scheduled dynamically, so a thread slowed by another process
// takes fewer of them instead of holding the others at the barrier.
#include <algorithm>
#include <limits>
#include <vector>

#include "bands_cpu.h"
#include "dtype_cpu.h"
#include "kernels.h"
#include "pool_shape.h"
#include "simd_cpu.h"

namespace zfaccel {
namespace {

template <typename A>
inline void take(A v, int32_t code, A& m, int32_t& s) {
  const bool up = (v > m) | is_nan(v);
  m = up ? v : m;
  s = up ? code : s;
}

// NCHW pooling, separable and exact, over a band of output rows of one plane,
// in three passes over buffers padded to whole vectors:
// 1. every input row the band needs is split into its sw stride phases
//    (phase[r][j] = row[j * sw + r]), so every later read is unit-stride;
// 2. each row is reduced across its kw taps: per output column the first
//    maximum (last NaN) and its kw, one vector select per tap and 16 columns;
// 3. each output row folds its kh reduced rows in kh order.
// Folding rows in order, and taps in order within a row, visits the window in
// row-major order, so the first maximum (or last NaN) wins as in torch. Whole
// passes, not a row at a time: a vector load that straddles two stores still
// in the store buffer stalls (single-threaded, row at a time: 9.9 ms for the
// (16, 96, 110, 110) 3x3/2 pool). Border columns (windows reaching into
// padding or past the row) are redone per row with clipped taps, from the input.
template <typename T>
class NchwPool {
  using K = Lanes<T>;
  using S = typename T::storage;
  using A = typename T::acc;
  using V = typename K::V;
  using I = typename K::I;
  static constexpr int64_t L = K::L;

 public:
  NchwPool(const PoolShape& g, const S* end, int64_t max_rows)
      : g_(g), end_(end), owp_(round_up(g.ow, L)), guard_(round_up(g.pw + 1, L)),
        reach_(owp_ + floor_div((g.kw - 1) * g.dw - g.pw, g.sw) + 1),
        plen_(guard_ + round_up(std::max((g.w + g.sw - 1) / g.sw + 2 * L, reach_ + L), L)),
        phase_(max_rows * g.sw * plen_, A(0)), m_(max_rows * owp_, A(0)), kw_(max_rows * owp_, 0),
        row_copy_(round_up(g.w, 2 * L), S{}) {
    // Everything that divides, once per call rather than per row (an integer
    // division costs 20-40 cycles; per row they took half of the reduction).
    for (int64_t kw = 0; kw < g.kw; ++kw) {
      const int64_t t = kw * g.dw - g.pw;
      const int64_t q = floor_div(t, g.sw);
      tap_.push_back((t - q * g.sw) * plen_ + guard_ + q);
    }
    // Columns whose window starts in the left padding are redone with clipped
    // taps. Windows reaching past the right edge need nothing: phases are -inf
    // there, which never replaces a running maximum, and their first tap is in.
    for (int64_t ow = 0; ow < g.ow && ow * g.sw - g.pw < 0; ++ow) {
      const int64_t ws = ow * g.sw - g.pw;
      left_.push_back({ow, ws, first_tap(ws, g.kw, g.dw, g.w), end_tap(ws, g.kw, g.dw, g.w)});
    }
    for (int64_t r = 0; r < g.sw; ++r) phase_end_.push_back((g.w - r + g.sw - 1) / g.sw);
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      const int64_t hs = oh * g.sh - g.ph;
      kh_.push_back({first_tap(hs, g.kh, g.dh, g.h), end_tap(hs, g.kh, g.dh, g.h)});
    }
  }

  // Input rows that output rows [oh0, oh1) read: [first, last).
  static void input_rows(const PoolShape& g, int64_t oh0, int64_t oh1, int64_t& first, int64_t& last) {
    first = std::max<int64_t>(0, oh0 * g.sh - g.ph);
    last = std::min<int64_t>(g.h, (oh1 - 1) * g.sh - g.ph + (g.kh - 1) * g.dh + 1);
  }

  void band(const S* plane, int64_t oh0, int64_t oh1, S* y, uint8_t* s, bool use_relu) {
    int64_t first, last;
    input_rows(g_, oh0, oh1, first, last);
    for (int64_t ih = first; ih < last; ++ih) split_phases(plane + ih * g_.w, phase_.data() + (ih - first) * g_.sw * plen_);
    for (int64_t ih = first; ih < last; ++ih)
      reduce_row(plane + ih * g_.w, phase_.data() + (ih - first) * g_.sw * plen_, m_.data() + (ih - first) * owp_,
                 kw_.data() + (ih - first) * owp_);
    for (int64_t oh = oh0; oh < oh1; ++oh)
      output_row(oh, first, y + oh * g_.ow, s + oh * g_.ow, y + oh1 * g_.ow, use_relu);
  }

 private:
  // Phase j of stride phase r goes to ph[r * plen_ + guard_ + j].
  void split_phases(const S* row, A* ph) {
    const int64_t sw = g_.sw, w = g_.w;
    ph += guard_;
    if (sw == 2 && L > 1) {
      // Whole vectors read up to round_up(w, 2L) elements: past the row, into the
      // next one; the tensor's last rows go through a padded copy instead.
      if (row + round_up(w, 2 * L) > end_) {
        std::copy(row, row + w, row_copy_.begin());
        row = row_copy_.data();
      }
      for (int64_t j = 0; 2 * j < w; j += L) K::deinterleave2(row + 2 * j, ph + j, ph + plen_ + j);
    } else {
      for (int64_t r = 0; r < sw; ++r)
        for (int64_t j = 0; j < phase_end_[r]; ++j) ph[r * plen_ + j] = T::load(row[j * sw + r]);
    }
    const V neg_inf = K::splat(-std::numeric_limits<A>::infinity());
    for (int64_t r = 0; r < sw; ++r)  // the reduction reads phases up to reach_
      for (int64_t j = phase_end_[r]; j < reach_; j += L) K::store(ph + r * plen_ + j, neg_inf);
  }

  void reduce_row(const S* row, const A* ph, A* m, int32_t* kwv) {
    const A* taps[kMaxWindow];
    for (int64_t kw = 0; kw < g_.kw; ++kw) taps[kw] = ph + tap_[kw];
    for (int64_t i = 0; i < owp_; i += L) {
      V mv = K::load(taps[0] + i);
      I kv = K::splati(0);
      for (int64_t kw = 1; kw < g_.kw; ++kw) {
        const V v = K::load(taps[kw] + i);
        const auto up = K::greater_or_nan(v, mv);
        mv = K::select(up, v, mv);
        kv = K::select(up, K::splati(static_cast<int32_t>(kw)), kv);
      }
      K::store(m + i, mv);
      std::memcpy(kwv + i, &kv, sizeof kv);
    }
    // Windows starting in the left padding: taps clipped; the running maximum
    // starts at -inf with the first in-bounds tap's kw.
    for (const Clip& c : left_) {
      A mv = -std::numeric_limits<A>::infinity();
      int32_t kv = static_cast<int32_t>(c.lo);
      for (int64_t kw = c.lo; kw < c.hi; ++kw) take(T::load(row[c.start + kw * g_.dw]), static_cast<int32_t>(kw), mv, kv);
      m[c.o] = mv;
      kwv[c.o] = kv;
    }
  }

  // A row's last block is stored whole when it ends inside the band: it spills
  // into the rows below, which come next here (rows ascend) and overwrite it.
  void output_row(int64_t oh, int64_t first, S* yrow, uint8_t* srow, const S* y_end, bool use_relu) {
    const int64_t kh_lo = kh_[oh].first, kh_hi = kh_[oh].second;
    const int64_t row0 = oh * g_.sh - g_.ph - first;  // buffer row of tap kh = 0
    const int64_t ow_n = g_.ow;
    for (int64_t i = 0; i < owp_; i += L) {
      int64_t at = (row0 + kh_lo * g_.dh) * owp_ + i;
      V m = K::load(m_.data() + at);
      I k;
      std::memcpy(&k, kw_.data() + at, sizeof k);
      I s = k + K::splati(static_cast<int32_t>(kh_lo * g_.kw));
      for (int64_t kh = kh_lo + 1; kh < kh_hi; ++kh) {
        at = (row0 + kh * g_.dh) * owp_ + i;
        const V v = K::load(m_.data() + at);
        std::memcpy(&k, kw_.data() + at, sizeof k);
        const auto up = K::greater_or_nan(v, m);
        m = K::select(up, v, m);
        s = K::select(up, k + K::splati(static_cast<int32_t>(kh * g_.kw)), s);
      }
      if (use_relu) m = K::relu(m);
      if (i + L <= ow_n || yrow + i + L <= y_end) {
        K::store_exact(yrow + i, m);
        K::store_switch(srow + i, s);
      } else {
        store_exact_n<K>(yrow + i, m, ow_n - i);
        store_switch_n<K>(srow + i, s, ow_n - i);
      }
    }
  }

  // A window clipped to the input: output index, start, taps [lo, hi).
  struct Clip {
    int64_t o, start, lo, hi;
  };

  const PoolShape g_;
  const S* end_;  // one past the input tensor: whole-vector reads stop before it
  // owp_: pooled row padded to whole vectors; guard_: phase slots before j = 0;
  // reach_: phase slots the reduction reads (from j = 0); plen_: one phase.
  const int64_t owp_, guard_, reach_, plen_;
  std::vector<int64_t> tap_, phase_end_;
  std::vector<Clip> left_;
  std::vector<std::pair<int64_t, int64_t>> kh_;
  std::vector<A> phase_, m_;
  std::vector<int32_t> kw_;
  std::vector<S> row_copy_;
};

template <typename T>
void pool_nchw(const PoolShape& shape, const void* xv, void* yv, uint8_t* sp, bool use_relu, int nt) {
  using S = typename T::storage;
  const S* x = static_cast<const S*>(xv);
  S* y = static_cast<S*>(yv);
  const Bands bands(shape.n * shape.c, shape.oh, shape.sh * shape.w, nt);
  const S* end = x + shape.n * shape.c * shape.h * shape.w;
  const int64_t max_rows = bands.largest([&](int64_t oh0, int64_t oh1) {  // input rows of the tallest band
    int64_t first, last;
    NchwPool<T>::input_rows(shape, oh0, oh1, first, last);
    return last - first;
  });
  const int64_t in_plane = shape.h * shape.w, out_plane = shape.oh * shape.ow;
  bands.run(
      nt, [&] { return NchwPool<T>(shape, end, max_rows); },
      [&](NchwPool<T>& pool, const Band& b) {
        pool.band(x + b.plane * in_plane, b.first, b.last, y + b.plane * out_plane, sp + b.plane * out_plane,
                  use_relu);
      });
}

// NHWC: an item is one output row of one image; the inner loop runs over
// channels, a vector of 16 at a time, so each tap is one load and one select.
template <typename T>
void pool_nhwc(const PoolShape& shape, const void* xv, void* yv, uint8_t* sp, bool use_relu, int nt) {
  using K = Lanes<T>;
  using S = typename T::storage;
  using V = typename K::V;
  using I = typename K::I;
  constexpr int64_t L = K::L;
  const S* x = static_cast<const S*>(xv);
  S* y = static_cast<S*>(yv);
  const PoolShape g = shape;
  const int64_t C = g.c;
  const int64_t grab = grab_size(g.n * g.oh, nt);
#pragma omp parallel for num_threads(nt) schedule(dynamic, grab)
  for (int64_t item = 0; item < g.n * g.oh; ++item) {
    const int64_t n = item / g.oh, oh = item % g.oh;
    const int64_t hs = oh * g.sh - g.ph;
    const int64_t kh_lo = first_tap(hs, g.kh, g.dh, g.h), kh_hi = end_tap(hs, g.kh, g.dh, g.h);
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      const int64_t ws = ow * g.sw - g.pw;
      const int64_t kw_lo = first_tap(ws, g.kw, g.dw, g.w), kw_hi = end_tap(ws, g.kw, g.dw, g.w);
      const int64_t out = ((n * g.oh + oh) * g.ow + ow) * C;
      const S* first = x + ((n * g.h + hs + kh_lo * g.dh) * g.w + ws + kw_lo * g.dw) * C;
      for (int64_t c = 0; c < C; c += L) {
        const int64_t left = C - c;
        auto load = [&](const S* p) { return left >= L ? K::load_s(p + c) : load_s_n<K>(p + c, left); };
        V m = load(first);
        I s = K::splati(static_cast<int32_t>(kh_lo * g.kw + kw_lo));
        for (int64_t kh = kh_lo; kh < kh_hi; ++kh)
          for (int64_t kw = (kh == kh_lo ? kw_lo + 1 : kw_lo); kw < kw_hi; ++kw) {
            const V v = load(x + ((n * g.h + hs + kh * g.dh) * g.w + ws + kw * g.dw) * C);
            const auto up = K::greater_or_nan(v, m);
            m = K::select(up, v, m);
            s = K::select(up, K::splati(static_cast<int32_t>(kh * g.kw + kw)), s);
          }
        if (use_relu) m = K::relu(m);
        if (left >= L) {
          K::store_exact(y + out + c, m);
          K::store_switch(sp + out + c, s);
        } else {
          store_exact_n<K>(y + out + c, m, left);
          store_switch_n<K>(sp + out + c, s, left);
        }
      }
    }
  }
}

template <typename T>
void pool_dispatch(const PoolShape& g, int layout, const void* x, void* y, uint8_t* s, bool use_relu, int nt) {
  if (layout == kNHWC) return pool_nhwc<T>(g, x, y, s, use_relu, nt);
  return pool_nchw<T>(g, x, y, s, use_relu, nt);
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
