// Transposed convolution of batched crops, skipping zero inputs: conv_transpose_crops_cpu.h, each
// target's crop read from x.
#include "conv_transpose_crops_cpu.h"
#include "kernels.h"

namespace zfaccel {

void conv_transpose_crops_cpu(const CropShape& g, int64_t cout_g, int64_t groups, int dtype, const void* x,
                              const void* weight, const int64_t* offset, bool use_relu, void* y, int num_threads) {
  const char* fn = "conv_transpose_crops_cpu";
  check_conv_transpose_crops(g, cout_g, groups, dtype, num_threads, fn);
  if (g.t == 0) return;
  require(x != nullptr && weight != nullptr && offset != nullptr && y != nullptr, fn, "null data pointer");
  auto go = [&](auto zero) {
    using A = decltype(zero);
    const DenseCrops<A> crops{static_cast<const A*>(x), g.c, g.h * g.w};
    conv_transpose_targets<A>(g, cout_g, groups, static_cast<const A*>(weight), offset, use_relu, static_cast<A*>(y),
                              num_threads, [&] { return crops; });
  };
  if (dtype == kFloat32)
    go(0.0f);
  else
    go(0.0);
}

}  // namespace zfaccel
