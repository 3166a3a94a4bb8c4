// Occluded inputs (or crops of them) for the occlusion sweep, on the CPU.
//
// Each output row splits into at most five column spans, fixed per position:
// [zeros | image | baseline | image | zeros] (outside the image, the image, the
// occluder, the image, outside again); rows outside the occluder have no
// baseline span and rows outside the image are all zeros. Each span is one
// memcpy (unit stride), one fill (stride 0: a broadcast baseline) or one
// strided loop, so there is no per-pixel branch. The kernel copies bits (NaN
// payloads and -0.0 kept): every dtype is a 2, 4 or 8-byte copy.
//
// The rows of all P * C output planes are split evenly over the threads: a
// batch of 32 RGB images is only 96 planes, and a single full image (P = 1)
// only 3, too few to balance two or more threads plane by plane.
//
// 32 occluded 224 px float32 images (19 MB) take 1.08 ms on 1 thread of the
// 2-core machine (loaded). Non-temporal stores (no read for ownership) were
// tried and dropped: composed in a cached row buffer, then streamed, they tied
// there (1.11 ms) and lost on 256 crops of 64 x 64 (1.60 against 1.06 ms);
// streamed span by span they lost up to 20x wherever spans meet inside a
// cache line.
#include <algorithm>
#include <cstring>
#include <vector>

#include <omp.h>

#include "kernels.h"
#include "occlusion_batch.h"

namespace zfaccel {
namespace {

// One position's spans in crop coordinates (see span_in_crop) and its image and baseline.
struct Spans {
  int64_t b, r0, c0;  // image index, absolute row and column of crop cell (0, 0)
  int64_t vr0, vr1;   // crop rows inside the image
  int64_t or0, or1;   // crop rows under the occluder (inside [vr0, vr1))
  int64_t vc0, vc1;   // crop columns inside the image
  int64_t oc0, oc1;   // crop columns under the occluder (inside [vc0, vc1))
};

// n elements from a row read at `stride` (1: contiguous, 0: one broadcast value).
template <typename S>
inline void copy_span(S* dst, const S* src, int64_t n, int64_t stride) {
  if (n <= 0) return;
  if (stride == 1) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(S));
  } else if (stride == 0) {
    std::fill(dst, dst + n, *src);
  } else {
    for (int64_t j = 0; j < n; ++j) dst[j] = src[j * stride];
  }
}

template <typename S>
inline void zero_span(S* dst, int64_t n) {
  if (n > 0) std::memset(dst, 0, static_cast<size_t>(n) * sizeof(S));  // all-zero bits: +0.0
}

// Output row i of plane (s, c): dst holds g.cw elements.
template <typename S>
inline void compose_row(const OcclusionShape& g, const S* images, const S* baseline, const Spans& s, int64_t c,
                        int64_t i, S* dst) {
  if (i < s.vr0 || i >= s.vr1) {
    zero_span(dst, g.cw);
    return;
  }
  // Inside the image: r and s.c0 + vc0 .. s.c0 + vc1 - 1 are real pixels.
  const int64_t r = s.r0 + i;
  const S* img = images + s.b * g.is[0] + c * g.is[1] + r * g.is[2] + (s.c0 + s.vc0) * g.is[3];
  zero_span(dst, s.vc0);
  if (i >= s.or0 && i < s.or1) {
    const S* base = baseline + s.b * g.bs[0] + c * g.bs[1] + r * g.bs[2] + (s.c0 + s.oc0) * g.bs[3];
    copy_span(dst + s.vc0, img, s.oc0 - s.vc0, g.is[3]);
    copy_span(dst + s.oc0, base, s.oc1 - s.oc0, g.bs[3]);
    copy_span(dst + s.oc1, img + (s.oc1 - s.vc0) * g.is[3], s.vc1 - s.oc1, g.is[3]);
  } else {
    copy_span(dst + s.vc0, img, s.vc1 - s.vc0, g.is[3]);
  }
  zero_span(dst + s.vc1, g.cw - s.vc1);
}

// Calls f(plane, row, flat row) for this thread's even share of the P * C * ch output rows.
template <typename F>
inline void for_my_rows(const OcclusionShape& g, F&& f) {
  const int64_t rows = g.p * g.c * g.ch;
  const int t = omp_get_thread_num(), n = omp_get_num_threads();
  const int64_t begin = rows * t / n, end = rows * (t + 1) / n;
  int64_t plane = begin / g.ch, i = begin % g.ch;
  for (int64_t row = begin; row < end; ++row) {
    f(plane, i, row);
    if (++i == g.ch) {
      i = 0;
      ++plane;
    }
  }
}

template <typename S>
void run(const OcclusionShape& g, const void* images, const void* baseline, const std::vector<Spans>& spans,
         void* out, int nt) {
  const S* im = static_cast<const S*>(images);
  const S* ba = static_cast<const S*>(baseline);
  S* o = static_cast<S*>(out);
#pragma omp parallel num_threads(nt)
  for_my_rows(g, [&](int64_t plane, int64_t i, int64_t row) {
    compose_row(g, im, ba, spans[plane / g.c], plane % g.c, i, o + row * g.cw);
  });
}

}  // namespace

void occlusion_batch_cpu(const OcclusionShape& g, int dtype, const void* images, const void* baseline,
                         const int64_t* positions, const int64_t* crop_origins, void* out, int num_threads) {
  const char* fn = "occlusion_batch_cpu";
  check_occlusion_shape(g, dtype, fn);
  require(num_threads >= 1, fn, "num_threads must be at least 1");
  if (g.p == 0) return;
  require(images != nullptr && baseline != nullptr && positions != nullptr && crop_origins != nullptr &&
              out != nullptr,
          fn, "null data pointer");
  std::vector<Spans> spans(static_cast<size_t>(g.p));
  for (int64_t p = 0; p < g.p; ++p) {
    const int64_t b = positions[3 * p];
    require(b >= 0 && b < g.b, fn,
            "positions[" + std::to_string(p) + ", 0] = " + std::to_string(b) + " is not an image index 0.." +
                std::to_string(g.b - 1));
    Spans& s = spans[static_cast<size_t>(p)];
    s.b = b;
    s.r0 = crop_origins[2 * p];
    s.c0 = crop_origins[2 * p + 1];
    span_in_crop(0, g.h, g.h, s.r0, g.ch, s.vr0, s.vr1);
    span_in_crop(positions[3 * p + 1], g.wh, g.h, s.r0, g.ch, s.or0, s.or1);
    span_in_crop(0, g.w, g.w, s.c0, g.cw, s.vc0, s.vc1);
    span_in_crop(positions[3 * p + 2], g.ww, g.w, s.c0, g.cw, s.oc0, s.oc1);
    if (s.vc0 == s.vc1) s.vr0 = s.vr1 = 0;  // no column inside the image: the whole plane is zeros
  }
  const int64_t size = element_size(dtype);
  if (size == 8)
    run<uint64_t>(g, images, baseline, spans, out, num_threads);
  else if (size == 4)
    run<uint32_t>(g, images, baseline, spans, out, num_threads);
  else
    run<uint16_t>(g, images, baseline, spans, out, num_threads);
}

}  // namespace zfaccel
