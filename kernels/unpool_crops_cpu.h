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
  // mispredicts on about half the cells.
  template <typename F>
  void channel(int64_t t, int64_t c, const A* x_t, A* plane, F touched) const {
    const int64_t ow = g_.out_w();
    const int64_t p0 = off_[2 * t], q0 = off_[2 * t + 1];
    // Output crop cell (r, q) is unpooled-map cell (p0 * s - pad + r, q0 * s - pad + q).
    const int64_t r_base = p0 * g_.sh - pad_h_, q_base = q0 * g_.sw - pad_w_;
    const A* xin = x_t + c * g_.h * g_.w;
    const uint8_t* s = sw_ + (image_[t] * g_.c + c) * ph_ * pw_;
    for (int64_t i = 0; i < g_.h; ++i) {
      const int64_t p = p0 + i;
      if (p < 0 || p >= ph_) continue;
      for (int64_t j = 0; j < g_.w; ++j) {
        const int64_t q = q0 + j;
        if (q < 0 || q >= pw_) continue;
        const uint8_t v = s[p * pw_ + q];
        const int64_t r = i * g_.sh + tap_row_[v], col = j * g_.sw + tap_col_[v];
        if (r < 0 || r_base + r < 0 || r_base + r >= g_.map_h) continue;
        if (q_base + col < 0 || q_base + col >= g_.map_w) continue;
        touched(r * ow + col);
        plane[r * ow + col] += xin[i * g_.w + j];
      }
    }
  }

 private:
  const CropShape g_;
  const int64_t ph_, pw_;
  const uint8_t* sw_;
  const int64_t *image_, *off_;
  const int64_t pad_h_, pad_w_;
  const bool relu_;
  std::array<int64_t, 256> tap_row_, tap_col_;
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
