// Transposed convolution of batched crops, skipping zero inputs (the deconvnet's "filter" step): the
// per-target work of conv_transpose_crops.cpp and unpool_conv_transpose_crops.cpp.
//
// A deconvnet's signal is mostly zeros: after an unpool each pooling window
// holds one value per channel (ZFNet's 3x3 / 2 pools: 1 in 4 cells), and after
// a ReLU about half of those are zero. A dense transposed convolution pays for
// all of them; here every non-zero input adds its weight patch to the output,
// so conv2^T and conv1^T of a ZFNet conv5 projection cost 4 to 8 times fewer
// MACs. The output of a target is accumulated in a (rows, cols, channels)
// buffer, where one kernel row of one input is a contiguous run of kw * C_out
// floats (groups = 1, dilation 1), and the buffer (418 KB for conv2^T) stays in
// L2. The non-zeros of a target are grouped by input position; per position and
// kernel row, their runs are summed in registers and added to the buffer once
// (add_weighted; docs/performance.md has the timings). Cells outside the map are
// padding and are never written. Zeros are skipped, so 0 * inf gives 0 here; the Python side checks
// the weights are finite before it calls this kernel.
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include "crops.h"
#include "dtype_cpu.h"
#include "simd_cpu.h"

namespace zfaccel {

// Patches of at most this many floats are summed whole (16 of the 32 vector registers).
constexpr int64_t kPatchMax = 16 * 16;

#ifdef ZFACCEL_MASKED_TAILS
// acc[0..NV) = sum over k < m of v[k] * w[chan[k] * w_stride + 0..n): NV vectors of 16 floats, the last
// one masked to n - 16 * (NV - 1) lanes (returned), each lane summed in k order from 0.
template <int NV>
inline __mmask16 sum_runs(__m512 (&acc)[NV], int64_t n, const float* w, int64_t w_stride, const int32_t* chan,
                          const float* v, int64_t m) {
  const __mmask16 last = first_n(n - 16 * (NV - 1));  // 1 to 16 lanes
  for (int u = 0; u < NV; ++u) acc[u] = _mm512_setzero_ps();
  for (int64_t k = 0; k < m; ++k) {
    const __m512 vv = _mm512_set1_ps(v[k]);
    const float* src = w + chan[k] * w_stride;
    for (int u = 0; u < NV - 1; ++u) acc[u] = _mm512_fmadd_ps(vv, _mm512_loadu_ps(src + 16 * u), acc[u]);
    acc[NV - 1] = _mm512_fmadd_ps(vv, _mm512_maskz_loadu_ps(last, src + 16 * (NV - 1)), acc[NV - 1]);
  }
  return last;
}

// dst[0..n) += the sum_runs of the m inputs: summed in registers, then added to dst once. Adding each
// input to dst in turn (axpy) read and wrote dst m times: for conv1^T's runs of 7 taps x 3 colours (21
// floats) the loads, stores and call cost 4x the arithmetic.
template <int NV>
inline void add_weighted_runs(float* dst, int64_t n, const float* w, int64_t w_stride, const int32_t* chan,
                              const float* v, int64_t m) {
  __m512 acc[NV];
  const __mmask16 last = sum_runs(acc, n, w, w_stride, chan, v, m);
  for (int u = 0; u < NV - 1; ++u) _mm512_storeu_ps(dst + 16 * u, _mm512_add_ps(_mm512_loadu_ps(dst + 16 * u), acc[u]));
  float* tail = dst + 16 * (NV - 1);
  _mm512_mask_storeu_ps(tail, last, _mm512_add_ps(_mm512_maskz_loadu_ps(last, tail), acc[NV - 1]));
}

// The whole kernel patch (kh * kw * c_out floats, contiguous per input channel) at one input position:
// patch[0..n) = the sum_runs of the m inputs, the same sums as add_weighted_runs row by row, so the
// bits are the same. One broadcast per non-zero instead of one per kernel row: conv1^T's 7 x 7 x 3
// patch is 10 vectors, where 7 row sums of 21 floats paid 7 calls, broadcasts and loop setups.
template <int NV>
inline void patch_sum(float* patch, int64_t n, const float* w, int64_t w_stride, const int32_t* chan,
                      const float* v, int64_t m) {
  __m512 acc[NV];
  const __mmask16 last = sum_runs(acc, n, w, w_stride, chan, v, m);
  for (int u = 0; u < NV - 1; ++u) _mm512_storeu_ps(patch + 16 * u, acc[u]);
  _mm512_mask_storeu_ps(patch + 16 * (NV - 1), last, acc[NV - 1]);
}

// f(std::integral_constant<int, NV>{}) with NV = ceil(n / 16) vectors, 1 <= NV <= Max: the register
// count chosen at run time, each count its own compiled loop.
template <int Max, int NV = 1, typename F>
inline void with_vectors(int64_t n, F f) {
  if constexpr (NV < Max) {
    if (n > 16 * NV) return with_vectors<Max, NV + 1>(n, f);
  }
  f(std::integral_constant<int, NV>{});
}
#endif

template <typename A>
void add_weighted(A* dst, int64_t n, const A* w, int64_t w_stride, const int32_t* chan, const A* v, int64_t m) {
#ifdef ZFACCEL_MASKED_TAILS
  if constexpr (std::is_same_v<A, float>) {
    constexpr int64_t kChunk = 8 * 16;  // 8 accumulators: room for the loads and the broadcast
    for (int64_t e = 0; e < n; e += kChunk) {
      const int64_t len = std::min(kChunk, n - e);
      with_vectors<8>(len, [&](auto nv) { add_weighted_runs<nv()>(dst + e, len, w + e, w_stride, chan, v, m); });
    }
    return;
  }
#endif
  for (int64_t k = 0; k < m; ++k) axpy(dst, w + chan[k] * w_stride, v[k], n);
}

// f(i) for each i < n with p[i] != 0 (NaN included), ascending. A deconvnet's crop is 95 % zeros at
// conv1: a branch per value mispredicted on each non-zero; one compare per 16 values, then one step
// per non-zero, does not.
template <typename A, typename F>
void for_each_nonzero(const A* p, int64_t n, F f) {
#ifdef ZFACCEL_MASKED_TAILS
  if constexpr (std::is_same_v<A, float>) {
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 in = first_n(std::min<int64_t>(16, n - i));
      uint32_t hit = _mm512_mask_cmp_ps_mask(in, _mm512_maskz_loadu_ps(in, p + i), _mm512_setzero_ps(), _CMP_NEQ_UQ);
      for (; hit != 0; hit &= hit - 1) f(i + __builtin_ctz(hit));
    }
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i)
    if (p[i] != A(0)) f(i);
}

// Target t's non-zero inputs grouped by position (i * w + j), channels ascending in each group:
// start[p]..start[p + 1] index chan and val. A count per position first (branch-free, vectorised),
// then one placement per non-zero. Listing them in one pass and sorting the list after was slower
// (31 against 25-30 ms for conv1^T of 64 targets).
template <typename A>
struct NonZeros {
  std::vector<int32_t> start, cursor, chan;
  std::vector<A> val;

  void gather(const A* x, int64_t channels, int64_t positions) {
    start.assign(positions + 1, 0);
    for (int64_t c = 0; c < channels; ++c) {
      const A* xc = x + c * positions;
      for (int64_t p = 0; p < positions; ++p) start[p + 1] += xc[p] != A(0);
    }
    place_from_counts(positions);
    for (int64_t c = 0; c < channels; ++c) {
      const A* xc = x + c * positions;
      for_each_nonzero(xc, positions, [&](int64_t p) {
        const int32_t at = cursor[p]++;
        chan[at] = static_cast<int32_t>(c);
        val[at] = xc[p];
      });
    }
  }

  // start[p + 1] holding position p's count -> start the groups' offsets, cursor each group's first
  // free slot, chan and val sized for the placements that follow.
  void place_from_counts(int64_t positions) {
    for (int64_t p = 0; p < positions; ++p) start[p + 1] += start[p];
    chan.resize(start[positions]);
    val.resize(start[positions]);
    cursor.assign(start.begin(), start.end() - 1);
  }
};

// The taps [lo, hi) of a kernel row whose output columns col + kx * dw land inside the map [0, map_w).
inline void taps_inside(int64_t col, int64_t dw, int64_t kw, int64_t map_w, int64_t& lo, int64_t& hi) {
  lo = 0;
  hi = kw;
  while (lo < hi && col + lo * dw < 0) ++lo;
  while (hi > lo && col + (hi - 1) * dw >= map_w) --hi;
}

// Targets' crops (c, h, w) as conv_transpose_crops.cpp reads them: from x, dense.
template <typename A>
struct DenseCrops {
  const A* x;
  int64_t c, positions;  // channels, h * w
  const A* dense(int64_t t) { return x + t * c * positions; }
  void nonzeros(int64_t t, NonZeros<A>& nz) { nz.gather(dense(t), c, positions); }
};

// Each thread's make_source() gives it a source of the targets' input crops (c, h, w): dense(t), the crop
// itself, or nonzeros(t, nz), its non-zero inputs grouped by position (NonZeros, channels ascending), which
// the register-summed path (groups 1, dilation 1) reads.
template <typename A, typename MakeSource>
void conv_transpose_targets(const CropShape& g, int64_t cout_g, int64_t groups, const A* weight,
                            const int64_t* offset, bool use_relu, A* y, int nt, MakeSource make_source) {
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
  const int64_t w_stride = g.kh * g.kw * cout_g;  // from one input channel's weights to the next
#ifdef ZFACCEL_MASKED_TAILS
  const bool whole = runs && std::is_same_v<A, float> && w_stride <= kPatchMax;
#else
  const bool whole = false;
#endif
  // Channel blocks: position by position, every non-zero's weights are read once per target; past L2
  // (ZFNet's conv3^T: 3.5 MB, read 8 times over per target, about 29 MB) they come from L3 at its
  // bandwidth. In blocks of channels whose weights fit kWeightBlock bytes, a block's weights stay in
  // L2 while the target's positions are visited, for one more pass over the buffer per block: worth it
  // where a block still has kMinPerBlock non-zeros per position on average to sum in registers
  // (conv3^T and conv4^T, 33-38 % non-zero), not for conv2^T's 4 % (11 per position in all).
  constexpr int64_t kWeightBlock = 192 << 10, kMinPerBlock = 4;
  const int64_t weight_blocks = (g.c * w_stride * int64_t(sizeof(A)) + kWeightBlock - 1) / kWeightBlock;
  const auto channel_blocks = [&](int64_t nonzeros, int64_t positions) -> int64_t {
    const int64_t blocks = std::min(weight_blocks, g.c);
    return blocks > 1 && nonzeros >= kMinPerBlock * blocks * positions ? blocks : 1;
  };
#pragma omp parallel num_threads(nt)
  {
    std::vector<A> buf(oh * ow * cout);
    alignas(64) A patch[kPatchMax];
    NonZeros<A> nz;
    auto source = make_source();
    // patch[0..w_stride) = the whole kernel patch summed over m non-zeros (only where `whole`: float).
    const auto add_patch = [&]([[maybe_unused]] const int32_t* chan, [[maybe_unused]] const A* val,
                                [[maybe_unused]] int64_t m) {
#ifdef ZFACCEL_MASKED_TAILS
      if constexpr (std::is_same_v<A, float>)
        with_vectors<kPatchMax / 16>(
            w_stride, [&](auto nv) { patch_sum<nv()>(patch, w_stride, wt.data(), w_stride, chan, val, m); });
#endif
    };
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < g.t; ++t) {
      std::fill(buf.begin(), buf.end(), A(0));
      const int64_t r0 = offset[2 * t], c0 = offset[2 * t + 1];
      if (runs) {
        // Per input position, every non-zero channel's kernel rows summed in registers, then added to
        // the buffer once: the whole patch at once where it fits (add_patch), else row by row
        // (add_weighted). Where the weights pass L2 and the inputs are dense enough, in blocks of
        // channels (channel_blocks).
        source.nonzeros(t, nz);
        const int64_t positions = g.h * g.w, blocks = channel_blocks(nz.start[positions], positions);
        const int64_t per_block = (g.c + blocks - 1) / blocks;
        nz.cursor.assign(nz.start.begin(), nz.start.end() - 1);
        for (int64_t b = 0; b < blocks; ++b) {
          const int32_t block_end = static_cast<int32_t>(std::min(g.c, (b + 1) * per_block));
          for (int64_t i = 0; i < g.h; ++i)
            for (int64_t j = 0; j < g.w; ++j) {
              // This block's non-zeros at position p: the next ones of its group (channels ascend).
              const int64_t p = i * g.w + j, lo = nz.cursor[p];
              int64_t hi = blocks == 1 ? nz.start[p + 1] : lo;
              while (hi < nz.start[p + 1] && nz.chan[hi] < block_end) ++hi;
              nz.cursor[p] = static_cast<int32_t>(hi);
              const int64_t m = hi - lo;
              if (m == 0) continue;
              const int64_t col = j * g.sw;
              int64_t kx_lo, kx_hi;
              taps_inside(c0 + col, 1, g.kw, g.map_w, kx_lo, kx_hi);
              if (kx_lo == kx_hi) continue;
              if (whole) add_patch(nz.chan.data() + lo, nz.val.data() + lo, m);
              for (int64_t ky = 0; ky < g.kh; ++ky) {
                const int64_t row = i * g.sh + ky * g.dh;
                if (r0 + row < 0 || r0 + row >= g.map_h) continue;
                A* dst = buf.data() + (row * ow + col + kx_lo) * cout;
                const int64_t len = (kx_hi - kx_lo) * cout;
                if (whole) {
                  const A* src = patch + (ky * g.kw + kx_lo) * cout;
                  for (int64_t e = 0; e < len; ++e) dst[e] += src[e];
                } else {
                  add_weighted(dst, len, wt.data() + (ky * g.kw + kx_lo) * cout_g, w_stride, nz.chan.data() + lo,
                               nz.val.data() + lo, m);
                }
              }
            }
        }
      } else {
        const A* xt = source.dense(t);
        for (int64_t c = 0; c < g.c; ++c) {
          const int64_t grp = c / cin_g;
          const A* xc = xt + c * g.h * g.w;
          for (int64_t i = 0; i < g.h; ++i) {
            for (int64_t j = 0; j < g.w; ++j) {
              const A v = xc[i * g.w + j];
              if (v == A(0)) continue;
              const int64_t col = j * g.sw;
              int64_t kx_lo, kx_hi;
              taps_inside(c0 + col, g.dw, g.kw, g.map_w, kx_lo, kx_hi);
              if (kx_lo == kx_hi) continue;
              for (int64_t ky = 0; ky < g.kh; ++ky) {
                const int64_t row = i * g.sh + ky * g.dh;
                if (r0 + row < 0 || r0 + row >= g.map_h) continue;
                const A* wk = wt.data() + ((c * g.kh + ky) * g.kw) * cout_g;
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
      // (c_out, oh, ow) from the (oh, ow, c_out) buffer, 16 planes at a time, each written front to back.
      // Position by position, each value went to another of c_out planes (conv2^T: 96 write streams,
      // more than the prefetchers follow, so nearly every line of the 24 MB output missed): 12-14 % of
      // the native time of 64 conv5 projections in perf.
      A* yt = y + t * cout * oh * ow;
      constexpr int64_t kPlanes = 16;
      for (int64_t ob = 0; ob < cout; ob += kPlanes) {
        const int64_t oe = std::min(cout, ob + kPlanes);
        for (int64_t e = 0; e < oh * ow; ++e) {
          const A* src = buf.data() + e * cout;
          if (use_relu) {
            for (int64_t o = ob; o < oe; ++o) yt[o * oh * ow + e] = relu(src[o]);
          } else {
            for (int64_t o = ob; o < oe; ++o) yt[o * oh * ow + e] = src[o];
          }
        }
      }
    }
  }
}


// What conv_transpose_crops_cpu and unpool_conv_transpose_crops_cpu check of the filter.
inline void check_conv_transpose_crops(const CropShape& g, int64_t cout_g, int64_t groups, int dtype,
                                       int num_threads, const char* fn) {
  check_crop_shape(g, fn);
  require(groups > 0 && g.c % groups == 0 && cout_g > 0, fn, "groups must divide the input channels");
  require(dtype == kFloat32 || dtype == kFloat64, fn, "dtype must be float32 or float64");
  require(num_threads >= 1, fn, "num_threads must be at least 1");
}

}  // namespace zfaccel
