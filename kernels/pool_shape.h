// Geometry of one 2-D max-pooling and the argument checks every entry point runs.
//
// The extension takes raw pointers and sizes from Python (no libtorch link), so
// nothing upstream guarantees these numbers are sane: each entry point calls
// check_pool_shape() before touching memory and throws std::invalid_argument
// (a ValueError in Python) naming the bad argument.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef __CUDACC__
#define ZF_HD __host__ __device__
#else
#define ZF_HD
#endif

namespace zfaccel {

enum DType : int { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };
enum Layout : int { kNCHW = 0, kNHWC = 1 };

// Switches are uint8 window offsets kh * kw_size + kw, so a window may hold at
// most 255 elements (offsets 0..254).
constexpr int kMaxWindow = 255;

struct PoolShape {
  int64_t n, c, h, w;    // input (the unpool's output) sizes
  int64_t oh, ow;        // pooled sizes
  int64_t kh, kw;        // kernel
  int64_t sh, sw;        // stride
  int64_t ph, pw;        // padding
  int64_t dh, dw;        // dilation
};

ZF_HD inline int64_t floor_div(int64_t a, int64_t b) {
  // b > 0; rounds towards -infinity (C++ '/' rounds towards zero).
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// torch's pooling_output_shape: the pooled size along one dimension.
inline int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  int64_t out = floor_div(in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;  // the last window must start inside
  return out;
}

// Taps of a window starting at `start`: start + k*d for k in [0, taps). The
// first and one-past-last tap that fall inside [0, size); first_tap is -1 when
// none does.
ZF_HD inline int64_t first_tap(int64_t start, int64_t taps, int64_t d, int64_t size) {
  const int64_t k = start < 0 ? (-start + d - 1) / d : 0;
  return (k < taps && start + k * d < size) ? k : -1;
}
ZF_HD inline int64_t end_tap(int64_t start, int64_t taps, int64_t d, int64_t size) {
  const int64_t k = (size - start + d - 1) / d;  // first k with start + k*d >= size
  return k < taps ? k : taps;
}

ZF_HD inline int64_t ceil_div(int64_t a, int64_t b) {
  // b > 0; rounds towards +infinity for either sign of a.
  return a <= 0 ? -((-a) / b) : (a + b - 1) / b;
}

// Pooled indices o in [lo, hi] whose windows (start o*s - p, taps k*d apart)
// can cover input position `pos`; the caller still checks the tap divides.
ZF_HD inline void covering(int64_t pos, int64_t p, int64_t k, int64_t s, int64_t d, int64_t out, int64_t& lo,
                           int64_t& hi) {
  lo = ceil_div(pos + p - (k - 1) * d, s);
  lo = lo < 0 ? 0 : lo;
  hi = (pos + p) / s;
  hi = hi < out - 1 ? hi : out - 1;
}

inline void require(bool ok, const std::string& fn, const std::string& what) {
  if (!ok) throw std::invalid_argument(fn + ": " + what);
}

inline void check_pool_shape(const PoolShape& g, int dtype, int layout, const char* fn) {
  const std::string f(fn);
  require(dtype >= kFloat32 && dtype <= kBFloat16, f, "dtype code must be 0..3 (f32, f64, f16, bf16), got " + std::to_string(dtype));
  require(layout == kNCHW || layout == kNHWC, f, "layout must be 0 (NCHW) or 1 (NHWC), got " + std::to_string(layout));
  require(g.n > 0 && g.c > 0 && g.h > 0 && g.w > 0, f, "input sizes n, c, h, w must be positive");
  require(g.kh > 0 && g.kw > 0, f, "kernel_size must be positive");
  require(g.kh * g.kw <= kMaxWindow, f, "kernel window holds " + std::to_string(g.kh * g.kw) + " elements; switches are uint8, at most 255");
  require(g.sh > 0 && g.sw > 0, f, "stride must be positive");
  require(g.dh > 0 && g.dw > 0, f, "dilation must be positive");
  require(g.ph >= 0 && g.pw >= 0 && 2 * g.ph <= g.kh && 2 * g.pw <= g.kw, f, "padding must be between 0 and half the kernel size");
  const bool oh_ok = g.oh == pooled_size(g.h, g.kh, g.sh, g.ph, g.dh, false) || g.oh == pooled_size(g.h, g.kh, g.sh, g.ph, g.dh, true);
  const bool ow_ok = g.ow == pooled_size(g.w, g.kw, g.sw, g.pw, g.dw, false) || g.ow == pooled_size(g.w, g.kw, g.sw, g.pw, g.dw, true);
  require(g.oh > 0 && g.ow > 0 && oh_ok && ow_ok, f,
          "pooled size " + std::to_string(g.oh) + "x" + std::to_string(g.ow) + " does not follow from input " +
              std::to_string(g.h) + "x" + std::to_string(g.w) + " and the pooling parameters");
  // With dilation a window can straddle a small input without touching it; the
  // kernels assume every window holds at least one input element.
  for (int64_t o = 0; o < g.oh; ++o) require(first_tap(o * g.sh - g.ph, g.kh, g.dh, g.h) >= 0, f, "a pooling window misses the input rows");
  for (int64_t o = 0; o < g.ow; ++o) require(first_tap(o * g.sw - g.pw, g.kw, g.dw, g.w) >= 0, f, "a pooling window misses the input columns");
}

inline void check_pointers(const void* a, const void* b, const void* c, const char* fn) {
  require(a != nullptr && b != nullptr && c != nullptr, fn, "null data pointer");
}

}  // namespace zfaccel
