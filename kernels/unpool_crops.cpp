// Switch unpooling of batched crops (the deconvnet's "unpool, rectify" step): unpool_crops_cpu.h per
// target, a target one thread's work.
#include "kernels.h"
#include "unpool_crops_cpu.h"

namespace zfaccel {
namespace {

template <typename A>
void run(const CropShape& g, const CropUnpool<A>& unpool, const A* x, A* y, int nt) {
  const int64_t in = g.c * g.h * g.w, out = g.c * g.out_h() * g.out_w();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t t = 0; t < g.t; ++t) unpool.target(t, x + t * in, y + t * out);
}

}  // namespace

void unpool_crops_cpu(const CropShape& g, int64_t pooled_h, int64_t pooled_w, int64_t images, int dtype,
                      const void* x, const uint8_t* switches, const int64_t* image_index, const int64_t* offset_in,
                      int64_t pad_h, int64_t pad_w, bool use_relu, void* y, int num_threads) {
  const char* fn = "unpool_crops_cpu";
  check_unpool_crops(g, pooled_h, pooled_w, images, pad_h, pad_w, fn);
  require(dtype == kFloat32 || dtype == kFloat64, fn, "dtype must be float32 or float64");
  require(num_threads >= 1, fn, "num_threads must be at least 1");
  if (g.t == 0) return;
  require(x != nullptr && switches != nullptr && image_index != nullptr && offset_in != nullptr && y != nullptr, fn,
          "null data pointer");
  check_image_index(g.t, image_index, images, fn);
  if (dtype == kFloat32) {
    const CropUnpool<float> unpool(g, pooled_h, pooled_w, switches, image_index, offset_in, pad_h, pad_w, use_relu);
    run<float>(g, unpool, static_cast<const float*>(x), static_cast<float*>(y), num_threads);
  } else {
    const CropUnpool<double> unpool(g, pooled_h, pooled_w, switches, image_index, offset_in, pad_h, pad_w, use_relu);
    run<double>(g, unpool, static_cast<const double*>(x), static_cast<double*>(y), num_threads);
  }
}

}  // namespace zfaccel
