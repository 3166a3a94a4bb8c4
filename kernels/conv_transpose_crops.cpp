// Transposed convolution of batched crops, skipping zero inputs (the deconvnet's "filter" step).
//
// A deconvnet's signal is mostly zeros: after an unpool each pooling window
// holds one value per channel (ZFNet's 3x3 / 2 pools: 1 in 4 cells), and after
// a ReLU about half of those are zero. A dense transposed convolution pays for
// all of them; here every non-zero input adds its weight patch to the output,
// so conv2^T and conv1^T of a ZFNet conv5 projection cost 4 to 8 times fewer
// MACs. The output of a target is accumulated in a (rows, cols, channels)
// buffer, where one kernel row of one input is a contiguous run of kw * C_out
// floats (groups = 1, dilation 1): one vectorised axpy, and the buffer (418 KB
// for conv2^T) stays in L2. Cells outside the map are padding and are never
// written. Zeros are skipped, so 0 * inf gives 0 here; the Python side checks
// the weights are finite before it calls this kernel.
#include <algorithm>
#include <vector>

#include "crops.h"
#include "dtype_cpu.h"
#include "kernels.h"
#include "simd_cpu.h"

namespace zfaccel {
namespace {

template <typename A>
void run(const CropShape& g, int64_t cout_g, int64_t groups, const A* x, const A* weight, const int64_t* offset,
         bool use_relu, A* y, int nt) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  const int64_t cin_g = g.c / groups, cout = cout_g * groups;
  // Weights as (c_in, kh, kw, c_out_g): the run for one tap is contiguous.
  std::vector<A> wt(g.c * g.kh * g.kw * cout_g);
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t o = 0; o < cout_g; ++o)
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j)
          wt[((c * g.kh + i) * g.kw + j) * cout_g + o] = weight[((c * cout_g + o) * g.kh + i) * g.kw + j];
  const bool runs = groups == 1 && g.dw == 1;  // (kx, o) contiguous in the buffer
#pragma omp parallel num_threads(nt)
  {
    std::vector<A> buf(oh * ow * cout);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < g.t; ++t) {
      std::fill(buf.begin(), buf.end(), A(0));
      const int64_t r0 = offset[2 * t], c0 = offset[2 * t + 1];
      for (int64_t c = 0; c < g.c; ++c) {
        const int64_t grp = c / cin_g;
        const A* xc = x + (t * g.c + c) * g.h * g.w;
        for (int64_t i = 0; i < g.h; ++i) {
          for (int64_t j = 0; j < g.w; ++j) {
            const A v = xc[i * g.w + j];
            if (v == A(0)) continue;
            // Output columns j*sw + kx*dw; keep the taps that land inside the map.
            const int64_t col = j * g.sw;
            int64_t kx_lo = 0, kx_hi = g.kw;
            while (kx_lo < kx_hi && c0 + col + kx_lo * g.dw < 0) ++kx_lo;
            while (kx_hi > kx_lo && c0 + col + (kx_hi - 1) * g.dw >= g.map_w) --kx_hi;
            if (kx_lo == kx_hi) continue;
            for (int64_t ky = 0; ky < g.kh; ++ky) {
              const int64_t row = i * g.sh + ky * g.dh;
              if (r0 + row < 0 || r0 + row >= g.map_h) continue;
              const A* wk = wt.data() + ((c * g.kh + ky) * g.kw) * cout_g;
              if (runs) {
                axpy(buf.data() + (row * ow + col + kx_lo) * cout, wk + kx_lo * cout_g, v, (kx_hi - kx_lo) * cout);
              } else {
                for (int64_t kx = kx_lo; kx < kx_hi; ++kx) {
                  A* __restrict__ dst = buf.data() + (row * ow + col + kx * g.dw) * cout + grp * cout_g;
                  const A* __restrict__ src = wk + kx * cout_g;
                  for (int64_t o = 0; o < cout_g; ++o) dst[o] += v * src[o];
                }
              }
            }
          }
        }
      }
      A* yt = y + t * cout * oh * ow;  // (c_out, oh, ow) from the (oh, ow, c_out) buffer
      for (int64_t r = 0; r < oh; ++r)
        for (int64_t q = 0; q < ow; ++q)
          for (int64_t o = 0; o < cout; ++o) {
            const A v = buf[(r * ow + q) * cout + o];
            yt[(o * oh + r) * ow + q] = use_relu ? relu(v) : v;
          }
    }
  }
}

}  // namespace

void conv_transpose_crops_cpu(const CropShape& g, int64_t cout_g, int64_t groups, int dtype, const void* x,
                              const void* weight, const int64_t* offset, bool use_relu, void* y, int num_threads) {
  const char* fn = "conv_transpose_crops_cpu";
  check_crop_shape(g, fn);
  require(groups > 0 && g.c % groups == 0 && cout_g > 0, fn, "groups must divide the input channels");
  require(dtype == kFloat32 || dtype == kFloat64, fn, "dtype must be float32 or float64");
  require(num_threads >= 1, fn, "num_threads must be at least 1");
  if (g.t == 0) return;
  require(x != nullptr && weight != nullptr && offset != nullptr && y != nullptr, fn, "null data pointer");
  if (dtype == kFloat32)
    run<float>(g, cout_g, groups, static_cast<const float*>(x), static_cast<const float*>(weight), offset,
               use_relu, static_cast<float*>(y), num_threads);
  else
    run<double>(g, cout_g, groups, static_cast<const double*>(x), static_cast<const double*>(weight), offset,
                use_relu, static_cast<double*>(y), num_threads);
}

}  // namespace zfaccel
