// One target's switch unpooling on crops (unpool_crops.cpp; unpool_conv_transpose_crops.cpp unpools into a
// per-thread buffer and filters from there).
//
// Target t's pooled crop (c, h, w) covers pooled cells offset_in[t] + (i, j) of image image_index[t]; its
// switches are read straight from that image's full switch map (no gathered copy), each value lands at
// crop position (i * s + kh * d, j * s + kw * d), sums where windows overlap, and ReLU is applied to the
// sums. Pooled cells outside the map carry nothing; output cells outside the unpooled map (padding) stay
// zero. Fixed order, no atomics: identical bits on every run.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

#include "crops.h"
#include "dtype_cpu.h"

namespace zfaccel {

// g: the pooled crops (t, c, h, w), the pooling's kernel, stride and dilation, and the unpooled map
// (map_h, map_w); switches (images, c, pooled_h, pooled_w); offset_in (t, 2) the crops' cell (0, 0) in the
// pooled map.
template <typename A>
class CropUnpool {
 public:
  CropUnpool(const CropShape& g, int64_t pooled_h, int64_t pooled_w, const uint8_t* switches,
             const int64_t* image_index, const int64_t* offset_in, int64_t pad_h, int64_t pad_w, bool use_relu)
      : g_(g), ph_(pooled_h), pw_(pooled_w), sw_(switches), image_(image_index), off_(offset_in), pad_h_(pad_h),
        pad_w_(pad_w), relu_(use_relu) {
    for (int v = 0; v < 256; ++v) {  // values outside the window land nowhere
      const bool ok = v < g.kh * g.kw;
      tap_row_[v] = ok ? (v / g.kw) * g.dh : -(int64_t(1) << 40);
      tap_col_[v] = ok ? (v % g.kw) * g.dw : 0;
      offset_[v] = ok ? tap_row_[v] * g.out_w() + tap_col_[v] : 0;
    }
  }

  bool use_relu() const { return relu_; }

  // Target t's pooled crop x_t (c, h, w) unpooled into out (c, out_h, out_w), which it overwrites.
  void target(int64_t t, const A* x_t, A* out) const {
    const int64_t n = g_.out_h() * g_.out_w();
    for (int64_t c = 0; c < g_.c; ++c) {
      A* o = out + c * n;
      std::fill(o, o + n, A(0));
      channel(t, c, x_t, o, [](int64_t) {});
      if (relu_)
        for (int64_t e = 0; e < n; ++e) o[e] = relu(o[e]);
    }
  }

  // Channel c of target t summed into plane (out_h, out_w), pooled cells in row-major order; touched(e)
  // is called before each write to cell e. No ReLU. Zeros are added like any value: a branch on them
  // mispredicts on about half the cells. Cells whose whole window lies inside the map (all but the
  // crop's border) skip the bounds tests and find their cell with one table lookup (offset_): the
  // tests and two lookups were most of the work per value (about 20 instructions for one add), and
  // ZFNet's pool1 crops of 64 conv5 targets hold 6.7 M values. Same cells in the same order.
  template <typename F>
  void channel(int64_t t, int64_t c, const A* x_t, A* plane, F touched) const {
    const int64_t ow = g_.out_w();
    const int64_t p0 = off_[2 * t], q0 = off_[2 * t + 1];
    // Output crop cell (r, q) is unpooled-map cell (p0 * s - pad + r, q0 * s - pad + q).
    const int64_t r_base = p0 * g_.sh - pad_h_, q_base = q0 * g_.sw - pad_w_;
    const A* xin = x_t + c * g_.h * g_.w;
    const uint8_t* s = sw_ + (image_[t] * g_.c + c) * ph_ * pw_;
    // Pooled cells inside the pooled map: i in [i_lo, i_hi), j in [j_lo, j_hi); of those, the columns
    // whose windows lie inside the map: j in [in_lo, in_hi).
    const int64_t i_lo = std::max<int64_t>(0, -p0), i_hi = std::min(g_.h, ph_ - p0);
    const int64_t j_lo = std::max<int64_t>(0, -q0), j_hi = std::min(g_.w, pw_ - q0);
    int64_t in_lo = j_lo, in_hi = j_hi;
    while (in_lo < in_hi && q_base + in_lo * g_.sw < 0) ++in_lo;
    while (in_hi > in_lo && q_base + (in_hi - 1) * g_.sw + (g_.kw - 1) * g_.dw >= g_.map_w) --in_hi;
    const int window = static_cast<int>(g_.kh * g_.kw);
    const auto checked = [&](int64_t i, int64_t j) {
      const uint8_t v = s[(p0 + i) * pw_ + q0 + j];
      const int64_t r = i * g_.sh + tap_row_[v], col = j * g_.sw + tap_col_[v];
      if (r < 0 || r_base + r < 0 || r_base + r >= g_.map_h) return;
      if (q_base + col < 0 || q_base + col >= g_.map_w) return;
      touched(r * ow + col);
      plane[r * ow + col] += xin[i * g_.w + j];
    };
    for (int64_t i = i_lo; i < i_hi; ++i) {
      // Where a window's rows leave the map, every column of the row takes the checked path.
      const bool rows_in = r_base + i * g_.sh >= 0 && r_base + i * g_.sh + (g_.kh - 1) * g_.dh < g_.map_h;
      const int64_t fast_lo = rows_in ? in_lo : j_hi, fast_hi = rows_in ? in_hi : j_hi;
      for (int64_t j = j_lo; j < fast_lo; ++j) checked(i, j);
      const uint8_t* srow = s + (p0 + i) * pw_ + q0;
      const A* xrow = xin + i * g_.w;
      const int64_t base = i * g_.sh * ow;
      for (int64_t j = fast_lo; j < fast_hi; ++j) {
        const uint8_t v = srow[j];
        if (v >= window) continue;  // a value outside the window lands nowhere
        const int64_t e = base + j * g_.sw + offset_[v];
        touched(e);
        plane[e] += xrow[j];
      }
      for (int64_t j = fast_hi; j < j_hi; ++j) checked(i, j);
    }
  }

 private:
  const CropShape g_;
  const int64_t ph_, pw_;
  const uint8_t* sw_;
  const int64_t *image_, *off_;
  const int64_t pad_h_, pad_w_;
  const bool relu_;
  std::array<int64_t, 256> tap_row_, tap_col_, offset_;  // offset_: the tap's cell within the window
};

// The shapes unpool_crops_cpu and unpool_conv_transpose_crops_cpu take.
inline void check_unpool_crops(const CropShape& g, int64_t pooled_h, int64_t pooled_w, int64_t images, int64_t pad_h,
                               int64_t pad_w, const char* fn) {
  check_crop_shape(g, fn);
  require(pooled_h > 0 && pooled_w > 0 && images > 0, fn, "pooled map sizes and image count must be positive");
  require(g.kh * g.kw <= kMaxWindow, fn, "windows hold at most 255 elements");
  require(pad_h >= 0 && pad_w >= 0, fn, "padding must be non-negative");
}

inline void check_image_index(int64_t t, const int64_t* image_index, int64_t images, const char* fn) {
  for (int64_t i = 0; i < t; ++i)
    require(image_index[i] >= 0 && image_index[i] < images, fn, "image_index out of range");
}

}  // namespace zfaccel
