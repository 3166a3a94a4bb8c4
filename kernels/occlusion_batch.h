// Geometry of one batch of occluded inputs (the occlusion sweep, paper Fig. 7)
// and the checks the CPU and CUDA entry points share.
//
// P outputs (P, C, ch, cw), contiguous. Output p is the crop of rows
// crop_origins[p].row + [0, ch) and columns crop_origins[p].col + [0, cw) of
// image positions[p].image, occluded on rows positions[p].row + [0, wh) and
// columns positions[p].col + [0, ww) by the baseline; outside the image it is 0.
// Images and baseline come with their element strides (a stride-0 expanded
// baseline is the common case: a grey square is one value per channel).
#pragma once

#include <cstdint>
#include <string>

#include "pool_shape.h"

namespace zfaccel {

struct OcclusionShape {
  int64_t b, c, h, w;  // images (and the baseline expanded to them)
  int64_t p;           // positions, outputs
  int64_t wh, ww;      // occluder window
  int64_t ch, cw;      // output crop
  int64_t is[4];       // image strides (elements) of b, c, h, w
  int64_t bs[4];       // baseline strides (elements), 0 where broadcast
};

// Element size of a dtype code: the kernels copy bits, they never convert.
inline int64_t element_size(int dtype) { return dtype == kFloat64 ? 8 : dtype == kFloat32 ? 4 : 2; }

inline void check_occlusion_shape(const OcclusionShape& g, int dtype, const char* fn) {
  const std::string f(fn);
  require(dtype >= kFloat32 && dtype <= kBFloat16, f,
          "dtype code must be 0..3 (f32, f64, f16, bf16), got " + std::to_string(dtype));
  require(g.b > 0 && g.c > 0 && g.h > 0 && g.w > 0, f, "images sizes b, c, h, w must be positive");
  require(g.p >= 0, f, "the number of positions must be >= 0, got " + std::to_string(g.p));
  require(g.wh > 0 && g.ww > 0, f, "window sizes must be positive");
  require(g.ch > 0 && g.cw > 0, f, "crop_size must be positive");
  // 2^31 rows or columns: far above any image, and coordinates plus sizes stay far from int64 overflow.
  const int64_t big = int64_t(1) << 31;
  require(g.h < big && g.w < big && g.wh < big && g.ww < big && g.ch < big && g.cw < big, f,
          "image, window and crop sizes must be below 2^31");
  for (int d = 0; d < 4; ++d) {
    require(g.is[d] >= 0, f, "images strides must be >= 0");
    require(g.bs[d] >= 0, f, "baseline strides must be >= 0");
  }
}

// The part of [start, start + len) inside [0, size), as [lo, hi) relative to `origin`, clipped to
// [0, extent): the occluder's or the image's columns in crop coordinates. Empty spans come back with
// lo == hi. Coordinates are clamped first so that any int64 position is safe (no overflow).
ZF_HD inline void span_in_crop(int64_t start, int64_t len, int64_t size, int64_t origin, int64_t extent,
                               int64_t& lo, int64_t& hi) {
  start = start < -len ? -len : (start > size ? size : start);
  origin = origin < -extent ? -extent : (origin > size ? size : origin);
  int64_t a = start < 0 ? 0 : start;
  int64_t e = start + len < size ? start + len : size;  // absolute [a, e)
  a -= origin;
  e -= origin;
  lo = a < 0 ? 0 : (a > extent ? extent : a);
  hi = e < 0 ? 0 : (e > extent ? extent : e);
  if (hi < lo) hi = lo;
}

}  // namespace zfaccel
