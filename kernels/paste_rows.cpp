// The deconvnet's last step: each target's pixel crop written into its row of the output, zero around it.
//
// out (n, c, H, W); signal (t, c, h, w) with offset int64 (t, 2), the crop's cell (0, 0) in the (H, W)
// map, and rows int64 (t,): out[rows[t]] becomes crop t, clipped to the map, and zero elsewhere. Every
// byte of a written row is stored once: no zero-filled output first (a fresh (64, 3, 224, 224) float32
// output, 38.5 MB, cost 8-10 ms of page faults and clearing before this, and a copy per target after).
#include <algorithm>
#include <cstring>

#include "kernels.h"

namespace zfaccel {
namespace {

template <typename A>
void run(const PasteShape& g, const A* signal, const int64_t* offset, const int64_t* rows, A* out, int nt) {
  const int64_t map = g.map_h * g.map_w;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t t = 0; t < g.t; ++t) {
    const int64_t r0 = offset[2 * t], c0 = offset[2 * t + 1];
    // The crop's columns inside the map: [left, right) of the map, from crop column left - c0.
    const int64_t left = std::clamp<int64_t>(c0, 0, g.map_w), right = std::clamp<int64_t>(c0 + g.w, 0, g.map_w);
    for (int64_t c = 0; c < g.c; ++c) {
      A* plane = out + (rows[t] * g.c + c) * map;
      const A* crop = signal + (t * g.c + c) * g.h * g.w;
      for (int64_t y = 0; y < g.map_h; ++y) {
        A* line = plane + y * g.map_w;
        const int64_t i = y - r0;  // crop row
        if (i < 0 || i >= g.h || left >= right) {
          std::fill(line, line + g.map_w, A(0));
          continue;
        }
        std::fill(line, line + left, A(0));
        std::memcpy(line + left, crop + i * g.w + (left - c0), (right - left) * sizeof(A));
        std::fill(line + right, line + g.map_w, A(0));
      }
    }
  }
}

}  // namespace

void paste_rows_cpu(const PasteShape& g, int dtype, const void* signal, const int64_t* offset, const int64_t* rows,
                    void* out, int num_threads) {
  const char* fn = "paste_rows_cpu";
  require(g.t >= 0 && g.c > 0 && g.h > 0 && g.w > 0 && g.n > 0 && g.map_h > 0 && g.map_w > 0, fn,
          "sizes must be positive");
  require(dtype == kFloat32 || dtype == kFloat64, fn, "dtype must be float32 or float64");
  require(num_threads >= 1, fn, "num_threads must be at least 1");
  if (g.t == 0) return;
  require(signal != nullptr && offset != nullptr && rows != nullptr && out != nullptr, fn, "null data pointer");
  for (int64_t t = 0; t < g.t; ++t) require(rows[t] >= 0 && rows[t] < g.n, fn, "rows out of range");
  if (dtype == kFloat32)
    run<float>(g, static_cast<const float*>(signal), offset, rows, static_cast<float*>(out), num_threads);
  else
    run<double>(g, static_cast<const double*>(signal), offset, rows, static_cast<double*>(out), num_threads);
}

}  // namespace zfaccel
