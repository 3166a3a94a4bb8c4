// Occluded inputs (or crops of them) for the occlusion sweep, on CUDA.
//
// One thread per output element in a grid-stride loop, consecutive threads on
// consecutive output columns: the stores coalesce, and so do the image reads
// when the image rows are unit-stride. The kernel copies bits (2, 4 or 8-byte
// words), so all four float dtypes are one template. The positions live on the
// device, so the host cannot check their image indices without a sync (the
// Python op does, unless validate=False): an out-of-range index never reads
// out of bounds, its output planes come back as NaN.
#include <cstdint>

#include "dtype_cuda.cuh"
#include "kernels.h"
#include "occlusion_batch.h"

namespace zfaccel {
namespace {

__device__ inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

template <typename S>
__global__ void occlusion_batch_kernel(OcclusionShape g, const S* __restrict__ images, const S* __restrict__ baseline,
                                       const int64_t* __restrict__ positions, const int64_t* __restrict__ crop_origins,
                                       S* __restrict__ out, S nan_bits, int64_t total) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t t = e;
    const int64_t j = t % g.cw;
    t /= g.cw;
    const int64_t i = t % g.ch;
    t /= g.ch;
    const int64_t c = t % g.c;
    const int64_t p = t / g.c;
    const int64_t b = __ldg(positions + 3 * p);
    if (b < 0 || b >= g.b) {
      out[e] = nan_bits;
      continue;
    }
    // Clamping keeps any int64 coordinate from overflowing and changes no answer: a crop or an
    // occluder clamped to just outside the image stays outside it.
    const int64_t r = clamp64(__ldg(crop_origins + 2 * p), -g.ch, g.h) + i;
    const int64_t s = clamp64(__ldg(crop_origins + 2 * p + 1), -g.cw, g.w) + j;
    S v = S(0);  // all-zero bits: +0.0 in every float dtype
    if (r >= 0 && r < g.h && s >= 0 && s < g.w) {
      const int64_t pr = clamp64(__ldg(positions + 3 * p + 1), -g.wh, g.h);
      const int64_t pc = clamp64(__ldg(positions + 3 * p + 2), -g.ww, g.w);
      const bool occluded = r >= pr && r < pr + g.wh && s >= pc && s < pc + g.ww;
      v = occluded ? baseline[b * g.bs[0] + c * g.bs[1] + r * g.bs[2] + s * g.bs[3]]
                   : images[b * g.is[0] + c * g.is[1] + r * g.is[2] + s * g.is[3]];
    }
    out[e] = v;
  }
}

template <typename S>
void launch(const OcclusionShape& g, const void* images, const void* baseline, const int64_t* positions,
            const int64_t* crop_origins, void* out, S nan_bits, cudaStream_t st) {
  const int64_t total = g.p * g.c * g.ch * g.cw;
  occlusion_batch_kernel<S><<<grid_for(total), kThreads, 0, st>>>(g, static_cast<const S*>(images),
                                                                  static_cast<const S*>(baseline), positions,
                                                                  crop_origins, static_cast<S*>(out), nan_bits, total);
}

}  // namespace

void occlusion_batch_cuda(const OcclusionShape& g, int dtype, const void* images, const void* baseline,
                          const int64_t* positions, const int64_t* crop_origins, void* out, uintptr_t stream) {
  const char* fn = "occlusion_batch_cuda";
  check_occlusion_shape(g, dtype, fn);
  if (g.p == 0) return;
  require(images != nullptr && baseline != nullptr && positions != nullptr && crop_origins != nullptr &&
              out != nullptr,
          fn, "null data pointer");
  const cudaStream_t st = reinterpret_cast<cudaStream_t>(stream);
  // Quiet-NaN bit patterns of float64, float32, float16 and bfloat16.
  if (dtype == kFloat64)
    launch<uint64_t>(g, images, baseline, positions, crop_origins, out, 0x7ff8000000000000ull, st);
  else if (dtype == kFloat32)
    launch<uint32_t>(g, images, baseline, positions, crop_origins, out, 0x7fc00000u, st);
  else
    launch<uint16_t>(g, images, baseline, positions, crop_origins, out,
                     static_cast<uint16_t>(dtype == kFloat16 ? 0x7e00u : 0x7fc0u), st);
  check_launch(fn);
}

}  // namespace zfaccel
