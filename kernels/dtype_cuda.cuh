// Storage <-> compute conversions and launch helpers for the CUDA kernels.
// Half and bfloat16 compute in float32 (exact widening; one rounding on store).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace zfaccel {

template <typename S>
struct Dev;

template <>
struct Dev<float> {
  using acc = float;
  __device__ static acc load(float v) { return v; }
  __device__ static float store(acc v) { return v; }
};
template <>
struct Dev<double> {
  using acc = double;
  __device__ static acc load(double v) { return v; }
  __device__ static double store(acc v) { return v; }
};
template <>
struct Dev<__half> {
  using acc = float;
  __device__ static acc load(__half v) { return __half2float(v); }
  __device__ static __half store(acc v) { return __float2half_rn(v); }
};
template <>
struct Dev<__nv_bfloat16> {
  using acc = float;
  __device__ static acc load(__nv_bfloat16 v) { return __bfloat162float(v); }
  __device__ static __nv_bfloat16 store(acc v) { return __float2bfloat16_rn(v); }
};

// torch.relu: zero exactly the values below zero (keeps -0.0 and NaN).
template <typename A>
__device__ inline A relu_dev(A v) {
  return v < A(0) ? A(0) : v;
}

constexpr int kThreads = 256;

inline unsigned grid_for(int64_t total) {
  // A grid-stride loop covers the rest; 2^20 blocks is far above any GPU's residency.
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < (1 << 20) ? blocks : (1 << 20));
}

inline void check_launch(const char* fn) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw std::runtime_error(std::string(fn) + ": CUDA launch failed: " + cudaGetErrorString(err));
}

template <typename S>
struct Tag {
  using type = S;
};

// Calls f(Tag<S>{}) with the storage type of a dtype code (0 f32, 1 f64, 2 f16, 3 bf16).
template <typename F>
void dispatch_storage(int dtype, F&& f) {
  switch (dtype) {
    case 0: return f(Tag<float>{});
    case 1: return f(Tag<double>{});
    case 2: return f(Tag<__half>{});
    default: return f(Tag<__nv_bfloat16>{});
  }
}

}  // namespace zfaccel
