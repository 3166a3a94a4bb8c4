// Switch unpooling of batched crops (the deconvnet's "unpool, rectify" step).
//
// Target t's pooled crop (c, h, w) covers pooled cells offset_in[t] + (i, j) of
// image image_index[t]; its switches are read straight from that image's full
// switch map (no gathered copy), each value lands at crop position
// (i * s + kh * d, j * s + kw * d), sums where windows overlap, and ReLU is
// applied to the sums. Pooled cells outside the map carry nothing; output
// cells outside the unpooled map (padding) stay zero. A target is one thread's
// work: fixed order, no atomics.
#include <algorithm>
#include <array>
#include <vector>

#include "crops.h"
#include "dtype_cpu.h"
#include "kernels.h"

namespace zfaccel {
namespace {

template <typename A>
void run(const CropShape& g, int64_t pooled_h, int64_t pooled_w, int64_t images, const A* x, const uint8_t* sw,
         const int64_t* image_index, const int64_t* offset_in, int64_t pad_h, int64_t pad_w, bool use_relu, A* y,
         int nt) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  std::array<int64_t, 256> tap_row, tap_col;
  for (int v = 0; v < 256; ++v) {  // values outside the window land nowhere
    const bool ok = v < g.kh * g.kw;
    tap_row[v] = ok ? (v / g.kw) * g.dh : -(int64_t(1) << 40);
    tap_col[v] = ok ? (v % g.kw) * g.dw : 0;
  }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t t = 0; t < g.t; ++t) {
    const int64_t b = image_index[t];
    const int64_t p0 = offset_in[2 * t], q0 = offset_in[2 * t + 1];
    // Output crop cell (r, q) is unpooled-map cell (p0 * s - pad + r, q0 * s - pad + q).
    const int64_t r_base = p0 * g.sh - pad_h, q_base = q0 * g.sw - pad_w;
    for (int64_t c = 0; c < g.c; ++c) {
      A* out = y + (t * g.c + c) * oh * ow;
      std::fill(out, out + oh * ow, A(0));
      const A* xin = x + (t * g.c + c) * g.h * g.w;
      const uint8_t* s = sw + (b * g.c + c) * pooled_h * pooled_w;
      for (int64_t i = 0; i < g.h; ++i) {
        const int64_t p = p0 + i;
        if (p < 0 || p >= pooled_h) continue;
        for (int64_t j = 0; j < g.w; ++j) {
          const int64_t q = q0 + j;
          if (q < 0 || q >= pooled_w) continue;
          const uint8_t v = s[p * pooled_w + q];
          const int64_t r = i * g.sh + tap_row[v], col = j * g.sw + tap_col[v];
          if (r < 0 || r_base + r < 0 || r_base + r >= g.map_h) continue;
          if (q_base + col < 0 || q_base + col >= g.map_w) continue;
          out[r * ow + col] += xin[i * g.w + j];
        }
      }
      if (use_relu)
        for (int64_t e = 0; e < oh * ow; ++e) out[e] = relu(out[e]);
    }
  }
  (void)images;
}

}  // namespace

void unpool_crops_cpu(const CropShape& g, int64_t pooled_h, int64_t pooled_w, int64_t images, int dtype,
                      const void* x, const uint8_t* switches, const int64_t* image_index, const int64_t* offset_in,
                      int64_t pad_h, int64_t pad_w, bool use_relu, void* y, int num_threads) {
  const char* fn = "unpool_crops_cpu";
  check_crop_shape(g, fn);
  require(pooled_h > 0 && pooled_w > 0 && images > 0, fn, "pooled map sizes and image count must be positive");
  require(g.kh * g.kw <= kMaxWindow, fn, "windows hold at most 255 elements");
  require(pad_h >= 0 && pad_w >= 0, fn, "padding must be non-negative");
  require(dtype == kFloat32 || dtype == kFloat64, fn, "dtype must be float32 or float64");
  require(num_threads >= 1, fn, "num_threads must be at least 1");
  if (g.t == 0) return;
  require(x != nullptr && switches != nullptr && image_index != nullptr && offset_in != nullptr && y != nullptr, fn,
          "null data pointer");
  for (int64_t t = 0; t < g.t; ++t)
    require(image_index[t] >= 0 && image_index[t] < images, fn, "image_index out of range");
  if (dtype == kFloat32)
    run<float>(g, pooled_h, pooled_w, images, static_cast<const float*>(x), switches, image_index, offset_in, pad_h,
               pad_w, use_relu, static_cast<float*>(y), num_threads);
  else
    run<double>(g, pooled_h, pooled_w, images, static_cast<const double*>(x), switches, image_index, offset_in,
                pad_h, pad_w, use_relu, static_cast<double*>(y), num_threads);
}

}  // namespace zfaccel
