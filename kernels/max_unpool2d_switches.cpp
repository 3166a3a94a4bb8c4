// Switch unpooling (+ optional ReLU) on the CPU: the exact transpose of max-pooling.
//
// Every pooled value goes to the input position its switch names, and values
// that land on the same position (overlapping windows, e.g. ZFNet's 3x3 stride
// 2) are summed, in one fixed order and without atomics: identical bits on
// every run and any thread count. Both layouts gather: each input position
// sums, over the windows that cover it, the pooled value where the switch names
// it, 16 lanes at a time (simd_cpu.h). NCHW: items are bands of input rows of
// a plane, lanes run along the row (NchwUnpool); NHWC: items are input rows of
// an image, lanes run over channels (unpool_nhwc). Items are scheduled
// dynamically, so a thread slowed by another process takes fewer of them.
#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include "bands_cpu.h"
#include "dtype_cpu.h"
#include "kernels.h"
#include "pool_shape.h"
#include "simd_cpu.h"

namespace zfaccel {
namespace {

// NCHW unpooling as a gather, one input row at a time, in stride phases: slot j
// of phase r is input column j * sw + r. The pooled value at column ow reaches,
// through tap kw, phase r(kw) at slot ow + q(kw), so for one phase every tap is
// the pooled row shifted by q: a block of 16 slots sums, over the pooled rows
// covering the input row and their taps, select(switch == tap, value, 0), in
// registers. The pooled rows of a band are first widened into padded buffers
// (value, int32 switch; 0 and 255 outside the row), so every load is whole and
// none straddles a recent store. Order of the sum per position: pooled rows
// ascending, then pooled columns ascending (taps descending), from +0: the
// order the scatter of earlier versions used, so results keep their bits.
template <typename T>
class NchwUnpool {
  using K = Lanes<T>;
  using S = typename T::storage;
  using A = typename T::acc;
  using V = typename K::V;
  using I = typename K::I;
  static constexpr int64_t L = K::L;

  struct Tap {
    int32_t code;  // kh * kw_size + kw
    int64_t shift;  // pooled column = slot - shift
  };
  struct Cover {
    int64_t oh, kh;
  };

 public:
  NchwUnpool(const PoolShape& g, int64_t max_pooled_rows)
      : g_(g), slots_(round_up((g.w + g.sw - 1) / g.sw, L)) {
    int64_t qmin = 0, qmax = 0;
    for (int64_t r = 0; r < g.sw; ++r) by_phase_.emplace_back();
    for (int64_t kw = g.kw - 1; kw >= 0; --kw) {
      const int64_t t = kw * g.dw - g.pw;
      const int64_t q = floor_div(t, g.sw);
      by_phase_[t - q * g.sw].push_back({static_cast<int32_t>(kw), q});
      qmin = std::min(qmin, q);
      qmax = std::max(qmax, q);
    }
    // Pooled column ow sits at lead_ + ow; slots read columns slot - q.
    lead_ = round_up(qmax + 1, L);
    row_len_ = lead_ + round_up(std::max(slots_ - qmin, g.ow), L) + L;
    for (int64_t ih = 0; ih < g.h; ++ih) {
      cover_start_.push_back(cover_.size());
      for (int64_t kh = g.kh - 1; kh >= 0; --kh) {  // kh descending: oh ascending
        const int64_t num = ih + g.ph - kh * g.dh;
        if (num < 0 || num % g.sh != 0 || num / g.sh >= g.oh) continue;
        cover_.push_back({num / g.sh, kh});
      }
    }
    cover_start_.push_back(cover_.size());
    yv_.assign(max_pooled_rows * row_len_, A(0));
    sv_.assign(max_pooled_rows * row_len_, 255);
    phase_.assign(g.sw * slots_, A(0));
  }

  // Pooled rows that input rows [ih0, ih1) read: [first, last).
  void pooled_rows(int64_t ih0, int64_t ih1, int64_t& first, int64_t& last) const {
    first = g_.oh;
    last = 0;
    for (size_t c = cover_start_[ih0]; c < cover_start_[ih1]; ++c) {
      first = std::min(first, cover_[c].oh);
      last = std::max(last, cover_[c].oh + 1);
    }
  }

  void band(const S* yp, const uint8_t* sp, int64_t ih0, int64_t ih1, S* xp, bool use_relu) {
    int64_t first, last;
    pooled_rows(ih0, ih1, first, last);
    for (int64_t oh = first; oh < last; ++oh) widen(yp + oh * g_.ow, sp + oh * g_.ow, (oh - first) * row_len_);
    const bool fixed = L > 1 && g_.sw == 2 && g_.dw == 1 && g_.pw == 0;
    S* const x_end = xp + ih1 * g_.w;  // the band's last element + 1
    for (int64_t ih = ih0; ih < ih1; ++ih) {
      if (fixed && g_.kw == 3) {
        gather_s2<3>(ih, first, xp + ih * g_.w, x_end, use_relu);
      } else if (fixed && g_.kw == 2) {
        gather_s2<2>(ih, first, xp + ih * g_.w, x_end, use_relu);
      } else {
        gather(ih, first);
        write_row(xp + ih * g_.w, use_relu);
      }
    }
  }

 private:
  void widen(const S* y, const uint8_t* s, int64_t at) {
    A* yb = yv_.data() + at + lead_;
    int32_t* sb = sv_.data() + at + lead_;
    for (int64_t i = 0; i < g_.ow; i += L) {
      const int64_t left = g_.ow - i;
      const V v = left >= L ? K::load_s(y + i) : load_s_n<K>(y + i, left);
      const I c = left >= L ? K::load_switch(s + i) : load_switch_n<K>(s + i, left);
      K::store(yb + i, v);
      std::memcpy(sb + i, &c, sizeof c);
    }
  }

  // The stride-2 pools of ZFNet (3x3/2) and VGG (2x2/2), no padding or
  // dilation: taps known at compile time, both phases summed in registers and
  // interleaved straight into the output row (a third of the generic path's
  // time: no per-pass loop setup, no accumulator round trips).
  // A row's last block may be written whole when it ends inside the band: it
  // spills into the rows below, which this thread writes next (rows ascend),
  // so the spill is overwritten; the band's last block is copied to length.
  template <int KW>
  void gather_s2(int64_t ih, int64_t first, S* x, const S* x_end, bool use_relu) {
    const int64_t w = g_.w;
    for (int64_t j = 0; 2 * j < w; j += L) {
      V e = K::zero(), o = K::zero();
      for (size_t c = cover_start_[ih]; c < cover_start_[ih + 1]; ++c) {
        const int64_t at = (cover_[c].oh - first) * row_len_ + lead_ + j;
        const int32_t base = static_cast<int32_t>(cover_[c].kh * KW);
        // Taps descending: pooled columns ascending at each position.
        for (int kw = KW - 1; kw >= 0; --kw) {
          const int64_t q = kw / 2;
          I sw;
          std::memcpy(&sw, sv_.data() + at - q, sizeof sw);
          const V v = K::select(K::equal(sw, K::splati(base + kw)), K::load(yv_.data() + at - q), K::zero());
          if (kw % 2 == 0) {
            e += v;
          } else {
            o += v;
          }
        }
      }
      if (x + 2 * j + 2 * L <= x_end) {
        K::interleave2_round(e, o, use_relu, x + 2 * j);
      } else {
        S tmp[2 * L];
        K::interleave2_round(e, o, use_relu, tmp);
        std::copy(tmp, tmp + (w - 2 * j), x + 2 * j);
      }
    }
  }

  void gather(int64_t ih, int64_t first) {
    A* ph = phase_.data();
    const int64_t n = g_.sw * slots_;
    for (int64_t j = 0; j < n; j += L) K::store(ph + j, K::zero());
    // Pooled rows ascending, taps descending: the order of the sum (see above).
    // Each pass runs over a phase's whole row; the accumulator block it loads is
    // the one it stored a pass earlier, at the same address (forwarded).
    for (size_t c = cover_start_[ih]; c < cover_start_[ih + 1]; ++c) {
      const int64_t at = (cover_[c].oh - first) * row_len_ + lead_;
      const int32_t base = static_cast<int32_t>(cover_[c].kh * g_.kw);
      for (int64_t r = 0; r < g_.sw; ++r) {
        A* out = ph + r * slots_;
        for (const Tap& t : by_phase_[r]) {
          const A* yr = yv_.data() + at - t.shift;
          const int32_t* sr = sv_.data() + at - t.shift;
          const I code = K::splati(base + t.code);
          for (int64_t j = 0; j < slots_; j += L) {
            I sw;
            std::memcpy(&sw, sr + j, sizeof sw);
            K::store(out + j, K::load(out + j) + K::select(K::equal(sw, code), K::load(yr + j), K::zero()));
          }
        }
      }
    }
  }

  void write_row(S* x, bool use_relu) {
    const A* ph = phase_.data();
    const int64_t w = g_.w;
    if (g_.sw == 2 && L > 1) {
      for (int64_t j = 0; 2 * j < w; j += L) {
        if (2 * j + 2 * L <= w) {
          K::interleave2_round(ph + j, ph + slots_ + j, use_relu, x + 2 * j);
        } else {
          S tmp[2 * L];
          K::interleave2_round(ph + j, ph + slots_ + j, use_relu, tmp);
          std::copy(tmp, tmp + (w - 2 * j), x + 2 * j);
        }
      }
      return;
    }
    for (int64_t iw = 0; iw < w; ++iw) {
      const A v = ph[(iw % g_.sw) * slots_ + iw / g_.sw];
      x[iw] = T::store(use_relu ? relu(v) : v);
    }
  }

  const PoolShape g_;
  const int64_t slots_;  // phase slots per input row, whole vectors
  int64_t lead_ = 0, row_len_ = 0;
  std::vector<std::vector<Tap>> by_phase_;  // per phase, taps in descending kw
  std::vector<Cover> cover_;                 // per input row, its pooled rows ascending
  std::vector<size_t> cover_start_;
  std::vector<A> yv_, phase_;
  std::vector<int32_t> sv_;
};

template <typename T>
void unpool_nchw(const PoolShape& shape, const void* yv, const uint8_t* sp, void* xv, bool use_relu, int nt) {
  using S = typename T::storage;
  const S* y = static_cast<const S*>(yv);
  S* x = static_cast<S*>(xv);
  const Bands bands(shape.n * shape.c, shape.h, shape.w, nt);
  const NchwUnpool<T> probe(shape, 0);
  const int64_t max_rows = bands.largest([&](int64_t ih0, int64_t ih1) {  // pooled rows of the tallest band
    int64_t first, last;
    probe.pooled_rows(ih0, ih1, first, last);
    return last - first;
  });
  const int64_t in_plane = shape.oh * shape.ow, out_plane = shape.h * shape.w;
  bands.run(
      nt, [&] { return NchwUnpool<T>(shape, max_rows); },
      [&](NchwUnpool<T>& unpool, const Band& b) {
        unpool.band(y + b.plane * in_plane, sp + b.plane * in_plane, b.first, b.last, x + b.plane * out_plane,
                    use_relu);
      });
}

// NHWC: an item is one input row of one image; per position, the windows that
// cover it (pooled rows, then columns, ascending) add their value where the
// switch names this position, 16 channels at a time.
template <typename T>
void unpool_nhwc(const PoolShape& shape, const void* yv, const uint8_t* sp, void* xv, bool use_relu, int nt) {
  using K = Lanes<T>;
  using S = typename T::storage;
  using V = typename K::V;
  using I = typename K::I;
  constexpr int64_t L = K::L;
  const S* y = static_cast<const S*>(yv);
  S* x = static_cast<S*>(xv);
  const PoolShape g = shape;
  const int64_t C = g.c;
  // Per input column, the pooled columns covering it (ascending) and their kw.
  std::vector<std::pair<int64_t, int64_t>> wcover;
  std::vector<size_t> wstart;
  for (int64_t iw = 0; iw < g.w; ++iw) {
    wstart.push_back(wcover.size());
    for (int64_t kw = g.kw - 1; kw >= 0; --kw) {
      const int64_t num = iw + g.pw - kw * g.dw;
      if (num >= 0 && num % g.sw == 0 && num / g.sw < g.ow) wcover.push_back({num / g.sw, kw});
    }
  }
  wstart.push_back(wcover.size());
  const int64_t grab = grab_size(g.n * g.h, nt);
#pragma omp parallel for num_threads(nt) schedule(dynamic, grab)
  for (int64_t item = 0; item < g.n * g.h; ++item) {
    const int64_t n = item / g.h, ih = item % g.h;
    std::pair<int64_t, int64_t> hcover[kMaxWindow];
    int64_t hn = 0;
    for (int64_t kh = g.kh - 1; kh >= 0; --kh) {
      const int64_t num = ih + g.ph - kh * g.dh;
      if (num >= 0 && num % g.sh == 0 && num / g.sh < g.oh) hcover[hn++] = {num / g.sh, kh};
    }
    for (int64_t iw = 0; iw < g.w; ++iw) {
      // The windows covering this position: pooled offsets and the code naming it.
      int64_t offset[kMaxWindow];  // at most kh * kw <= kMaxWindow windows cover a position
      int32_t codes[kMaxWindow];
      int64_t covers = 0;
      for (int64_t a = 0; a < hn; ++a)
        for (size_t b = wstart[iw]; b < wstart[iw + 1]; ++b) {
          offset[covers] = ((n * g.oh + hcover[a].first) * g.ow + wcover[b].first) * C;
          codes[covers++] = static_cast<int32_t>(hcover[a].second * g.kw + wcover[b].second);
        }
      S* out = x + ((n * g.h + ih) * g.w + iw) * C;
      // A block of channels sums its windows in a register (a sum kept in memory cost a load and a
      // store per window: the bfloat16 NHWC unpool ran slower than the float32 one).
      for (int64_t c = 0; c < C; c += L) {
        const int64_t left = C - c;
        V acc = K::zero();
        for (int64_t k = 0; k < covers; ++k) {
          const S* yo = y + offset[k] + c;
          const uint8_t* so = sp + offset[k] + c;
          const V v = left >= L ? K::load_s(yo) : load_s_n<K>(yo, left);
          const I s = left >= L ? K::load_switch(so) : load_switch_n<K>(so, left);
          acc += K::select(K::equal(s, K::splati(codes[k])), v, K::zero());
        }
        if (use_relu) acc = K::relu(acc);
        if (left >= L) {
          K::store_round(out + c, acc);
        } else {
          store_round_n<K>(out + c, acc, left);
        }
      }
    }
  }
}

template <typename T>
void unpool_dispatch(const PoolShape& g, int layout, const void* y, const uint8_t* s, void* x, bool use_relu,
                     int nt) {
  if (layout == kNHWC) return unpool_nhwc<T>(g, y, s, x, use_relu, nt);
  return unpool_nchw<T>(g, y, s, x, use_relu, nt);
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

namespace {

// How many of the n bytes at s are >= limit, over all threads in contiguous shares. In blocks of 64
// bytes into 8-bit counters flushed every 255 blocks, which compilers vectorise (one compare and
// one subtract per 16-64 bytes); a count per small plane, as before, cost 38 ns a plane: 0.16 ms of
// a 0.66 ms unpool of (16, 256, 13, 13) switches.
int64_t count_at_least(const uint8_t* s, int64_t n, int limit, int num_threads) {
  if (limit > 255 || n <= 0) return 0;
  const uint8_t lim = static_cast<uint8_t>(limit);
  constexpr int64_t kBlock = 64, kFlush = 255;
  const int64_t share = round_up((n + num_threads - 1) / num_threads, kBlock);
  int64_t total = 0;
#pragma omp parallel for reduction(+ : total) num_threads(num_threads) schedule(static)
  for (int64_t start = 0; start < n; start += share) {
    const int64_t end = std::min(n, start + share);
    int64_t i = start;
    while (end - i >= kBlock) {
      uint8_t counts[kBlock] = {};
      for (int64_t b = 0; b < kFlush && end - i >= kBlock; ++b, i += kBlock)
        for (int64_t j = 0; j < kBlock; ++j) counts[j] += s[i + j] >= lim;
      for (int64_t j = 0; j < kBlock; ++j) total += counts[j];
    }
    for (; i < end; ++i) total += s[i] >= lim;
  }
  return total;
}

}  // namespace

int64_t count_invalid_switches_cpu(const PoolShape& g, int layout, const uint8_t* s, int num_threads) {
  check_pool_shape(g, kFloat32, layout, "count_invalid_switches_cpu");
  require(s != nullptr, "count_invalid_switches_cpu", "null data pointer");
  require(num_threads >= 1, "count_invalid_switches_cpu", "num_threads must be at least 1");
  const int window = static_cast<int>(g.kh * g.kw);
  const int64_t items = layout == kNHWC ? g.n : g.n * g.c;
  const int64_t per_item = g.oh * g.ow * (layout == kNHWC ? g.c : 1);
  const int64_t lanes = layout == kNHWC ? g.c : 1;  // switches per position
  // Values outside the window, anywhere: one vectorised pass over all the switches.
  int64_t bad = count_at_least(s, items * per_item, window, num_threads);
  // A value inside the window can still name a padding position, but only at positions whose window
  // reaches past the input (the border rows and columns). Per such position, one table over the 256
  // switch values, 1 where the value names a row or column outside the input: a switch is then tested
  // with two loads and an add, no branch (per-row and per-column tables looked up through a
  // lambda cost 38 ns a plane: 0.16 ms of a 0.66 ms unpool of (16, 256, 13, 13) switches).
  std::vector<int64_t> where;  // element offset of each such position inside an item
  std::vector<uint8_t> tables;  // 256 per position
  for (int64_t oh = 0; oh < g.oh; ++oh)
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      uint8_t table[256] = {};
      bool any = false;
      for (int v = 0; v < window; ++v) {
        const int64_t ih = oh * g.sh - g.ph + (v / g.kw) * g.dh, iw = ow * g.sw - g.pw + (v % g.kw) * g.dw;
        table[v] = ih < 0 || ih >= g.h || iw < 0 || iw >= g.w;
        any |= table[v] != 0;
      }
      if (!any) continue;
      where.push_back((oh * g.ow + ow) * lanes);
      tables.insert(tables.end(), table, table + 256);
    }
  if (where.empty()) return bad;
  const int64_t positions = static_cast<int64_t>(where.size());
  const int64_t grab = grab_size(items, num_threads);
#pragma omp parallel for reduction(+ : bad) num_threads(num_threads) schedule(dynamic, grab)
  for (int64_t item = 0; item < items; ++item) {
    const uint8_t* sp = s + item * per_item;
    int64_t on_padding = 0;
    for (int64_t k = 0; k < positions; ++k) {
      const uint8_t* at = sp + where[k];
      const uint8_t* table = tables.data() + k * 256;
      for (int64_t c = 0; c < lanes; ++c) on_padding += table[at[c]];
    }
    bad += on_padding;
  }
  return bad;
}

}  // namespace zfaccel
