// Entry points of zfaccel._native: each checks its arguments, then runs.
//
// Pointers are raw device or host addresses handed over from Python; sizes come
// in a PoolShape. Layout kNCHW means every tensor is NCHW-contiguous, kNHWC
// means channels-last contiguous (torch.channels_last). CUDA entry points launch
// on the caller's stream and return without synchronising.
#pragma once

#include <cstdint>

#include "pool_shape.h"

namespace zfaccel {

// x: (n, c, h, w) -> y: (n, c, oh, ow) of the same dtype, s: uint8 (n, c, oh, ow).
void max_pool2d_switches_cpu(const PoolShape& g, int dtype, int layout, const void* x, void* y, uint8_t* s,
                             bool use_relu, int num_threads);
// y, s: (n, c, oh, ow) -> x: (n, c, h, w), sum on overlap, then ReLU if use_relu.
void max_unpool2d_switches_cpu(const PoolShape& g, int dtype, int layout, const void* y, const uint8_t* s, void* x,
                               bool use_relu, int num_threads);

// Switches s: (n, c, oh, ow) uint8 -> how many are outside their window or
// name a padding position (0 when all are valid).
int64_t count_invalid_switches_cpu(const PoolShape& g, int layout, const uint8_t* s, int num_threads);

#ifdef ZFACCEL_WITH_CUDA
void max_pool2d_switches_cuda(const PoolShape& g, int dtype, int layout, const void* x, void* y, uint8_t* s,
                              bool use_relu, uintptr_t stream);
void max_unpool2d_switches_cuda(const PoolShape& g, int dtype, int layout, const void* y, const uint8_t* s, void* x,
                                bool use_relu, uintptr_t stream);
#endif

}  // namespace zfaccel
