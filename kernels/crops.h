// Shapes of the deconvnet's batched crops (see zfaccel/analysis/regions.py).
//
// T targets each carry a crop (c, h, w) of a layer; a step down writes a crop
// of (h - 1) * s + (k - 1) * d + 1 rows whose cell (0, 0) sits at absolute
// position offset[t] of a map of (map_h, map_w); cells outside that map are
// padding and stay zero.
#pragma once

#include <cstdint>
#include <string>

#include "pool_shape.h"

namespace zfaccel {

struct CropShape {
  int64_t t, c, h, w;      // input crops
  int64_t kh, kw, sh, sw, dh, dw;
  int64_t map_h, map_w;    // the output map the crops sit in
  int64_t out_h() const { return (h - 1) * sh + (kh - 1) * dh + 1; }
  int64_t out_w() const { return (w - 1) * sw + (kw - 1) * dw + 1; }
};

inline void check_crop_shape(const CropShape& g, const char* fn) {
  const std::string f(fn);
  require(g.t >= 0 && g.c > 0 && g.h > 0 && g.w > 0, f, "crop sizes t >= 0 and c, h, w > 0 expected");
  require(g.kh > 0 && g.kw > 0 && g.sh > 0 && g.sw > 0 && g.dh > 0 && g.dw > 0, f,
          "kernel, stride and dilation must be positive");
  require(g.map_h > 0 && g.map_w > 0, f, "map sizes must be positive");
}

}  // namespace zfaccel
