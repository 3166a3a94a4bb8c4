// How the CPU switch kernels cut their work into items for OpenMP threads.
#pragma once
#include <algorithm>
#include <cstdint>

namespace zfaccel {

// Items are bands of rows of one plane (NCHW). Enough of them for dynamic
// scheduling to balance threads (8 per thread: a thread slowed by another
// process takes fewer), and short enough that a band's buffers stay in L2
// (about 256 KB: 32 K values of row_len per row).
struct Bands {
  int64_t per_plane, items;

  Bands(int64_t planes, int64_t rows, int64_t row_len, int num_threads) {
    const int64_t for_threads = (8 * static_cast<int64_t>(num_threads) + planes - 1) / planes;
    const int64_t rows_in_cache = std::max<int64_t>(1, (32 << 10) / std::max<int64_t>(row_len, 1));
    const int64_t for_cache = (rows + rows_in_cache - 1) / rows_in_cache;
    per_plane = std::min<int64_t>(rows, std::max<int64_t>({1, for_threads, for_cache}));
    items = planes * per_plane;
  }

  // Rows [first, last) of band b of `rows`.
  void rows_of(int64_t b, int64_t rows, int64_t& first, int64_t& last) const {
    first = b * rows / per_plane;
    last = (b + 1) * rows / per_plane;
  }
};

// Items per dynamic grab: about 8 grabs per thread. One item per grab cost an
// atomic per item, 0.2 ms of a 1.1 ms unpool of 4096 planes of 26 x 26.
inline int64_t grab_size(int64_t items, int num_threads) {
  return std::max<int64_t>(1, items / (8 * static_cast<int64_t>(num_threads)));
}

}  // namespace zfaccel
