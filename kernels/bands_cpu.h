// How the CPU switch kernels cut their work into items for OpenMP threads.
#pragma once
#include <algorithm>
#include <cstdint>

namespace zfaccel {

// Items per dynamic grab: about 8 grabs per thread. One item per grab cost an
// atomic per item, 0.2 ms of a 1.1 ms unpool of 4096 planes of 26 x 26.
inline int64_t grab_size(int64_t items, int num_threads) {
  return std::max<int64_t>(1, items / (8 * static_cast<int64_t>(num_threads)));
}

// One item: rows [first, last) of plane `plane`.
struct Band {
  int64_t plane, first, last;
};

// Items are bands of rows of one plane (NCHW). Enough of them for dynamic
// scheduling to balance threads (8 per thread: a thread slowed by another
// process takes fewer), and short enough that a band's buffers stay in L2
// (about 256 KB: 32 K values of row_len per row).
struct Bands {
  int64_t rows, per_plane, items;

  Bands(int64_t planes, int64_t rows_, int64_t row_len, int num_threads) : rows(rows_) {
    const int64_t for_threads = (8 * static_cast<int64_t>(num_threads) + planes - 1) / planes;
    const int64_t rows_in_cache = std::max<int64_t>(1, (32 << 10) / std::max<int64_t>(row_len, 1));
    const int64_t for_cache = (rows + rows_in_cache - 1) / rows_in_cache;
    per_plane = std::min<int64_t>(rows, std::max<int64_t>({1, for_threads, for_cache}));
    items = planes * per_plane;
  }

  Band item(int64_t i) const {
    const int64_t b = i % per_plane;
    return {i / per_plane, b * rows / per_plane, (b + 1) * rows / per_plane};
  }

  // The largest size(first, last) over the bands of a plane (every plane is cut alike).
  template <typename Size>
  int64_t largest(Size size) const {
    int64_t most = 0;
    for (int64_t b = 0; b < per_plane; ++b) {
      const Band band = item(b);
      most = std::max(most, size(band.first, band.last));
    }
    return most;
  }

  // work(state, band) for every item on num_threads threads, each with its own state from make().
  // Dynamic scheduling: when another process takes part of a core, the other threads pick up its
  // items instead of waiting for a fixed share at the barrier.
  template <typename Make, typename Work>
  void run(int num_threads, Make make, Work work) const {
    const int64_t grab = grab_size(items, num_threads);
#pragma omp parallel num_threads(num_threads)
    {
      auto state = make();
#pragma omp for schedule(dynamic, grab)
      for (int64_t i = 0; i < items; ++i) work(state, item(i));
    }
  }
};

}  // namespace zfaccel
