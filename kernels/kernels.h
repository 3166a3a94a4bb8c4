// Entry points of zfaccel._native: each checks its arguments, then runs.
//
// Pointers are raw device or host addresses handed over from Python; sizes come
// in a PoolShape. Layout kNCHW means every tensor is NCHW-contiguous, kNHWC
// means channels-last contiguous (torch.channels_last). CUDA entry points launch
// on the caller's stream and return without synchronising.
#pragma once

#include <cstdint>

#include "crops.h"
#include "occlusion_batch.h"
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

// x: `maps` contiguous maps of `size` values -> values (maps,) x's dtype, indices (maps,) int64: each map's
// maximum and its first index (a NaN wins, as in torch.max).
void spatial_argmax_cpu(int64_t maps, int64_t size, int dtype, const void* x, void* values, int64_t* indices,
                        int num_threads);

// Deconvnet crops (crops.h). x: (t, c, h, w) crops; y: (t, c_out, out_h, out_w).
// conv_transpose_crops: weight (c, c_out / groups, kh, kw) as a Conv2d stores it; offset int64 (t, 2) is
// y's cell (0, 0) in the output map; zero inputs are skipped; cells outside the map stay zero; ReLU last.
void conv_transpose_crops_cpu(const CropShape& g, int64_t cout_g, int64_t groups, int dtype, const void* x,
                              const void* weight, const int64_t* offset, bool use_relu, void* y, int num_threads);
// unpool_crops: switches (images, c, pooled_h, pooled_w) uint8; offset_in (t, 2) is x's cell (0, 0) in the
// pooled map; y's cell (0, 0) is offset_in * s - pad in the unpooled map (map_h, map_w).
void unpool_crops_cpu(const CropShape& g, int64_t pooled_h, int64_t pooled_w, int64_t images, int dtype,
                      const void* x, const uint8_t* switches, const int64_t* image_index, const int64_t* offset_in,
                      int64_t pad_h, int64_t pad_w, bool use_relu, void* y, int num_threads);

// unpool_conv_transpose_crops: unpool_crops (pool: its crops, pooling and unpooled map) then
// conv_transpose_crops (conv: its crops, the unpooled ones; its offset and map) per target, without the
// unpooled crops in memory; dtype float32 or float64 for x (pooled crops), weight and y.
void unpool_conv_transpose_crops_cpu(const CropShape& pool, int64_t pooled_h, int64_t pooled_w, int64_t images,
                                     const uint8_t* switches, const int64_t* image_index, const int64_t* offset_in,
                                     int64_t pad_h, int64_t pad_w, bool unpool_relu, const CropShape& conv,
                                     int64_t cout_g, int64_t groups, const void* weight, const int64_t* offset,
                                     bool use_relu, int dtype, const void* x, void* y, int num_threads);

// paste_rows: signal (t, c, h, w) crops, offset int64 (t, 2) their cell (0, 0) in the (map_h, map_w) map,
// rows int64 (t,) -> out (n, c, map_h, map_w): out[rows[t]] is crop t clipped to the map, zero elsewhere.
struct PasteShape {
  int64_t t, c, h, w, n, map_h, map_w;
};
void paste_rows_cpu(const PasteShape& g, int dtype, const void* signal, const int64_t* offset, const int64_t* rows,
                    void* out, int num_threads);

// Occluded inputs (occlusion_batch.h): images and baseline (b, c, h, w) with element strides g.is / g.bs;
// positions int64 (p, 3) rows (image, row, col); crop_origins int64 (p, 2) -> out (p, c, ch, cw) contiguous.
// Copies bits: 0 outside the image, the baseline under the occluder, the image elsewhere.
void occlusion_batch_cpu(const OcclusionShape& g, int dtype, const void* images, const void* baseline,
                         const int64_t* positions, const int64_t* crop_origins, void* out, int num_threads);

#ifdef ZFACCEL_WITH_CUDA
void max_pool2d_switches_cuda(const PoolShape& g, int dtype, int layout, const void* x, void* y, uint8_t* s,
                              bool use_relu, uintptr_t stream);
void max_unpool2d_switches_cuda(const PoolShape& g, int dtype, int layout, const void* y, const uint8_t* s, void* x,
                                bool use_relu, uintptr_t stream);
// Device pointers; an image index out of range fills its planes with NaN (the host cannot read positions).
void occlusion_batch_cuda(const OcclusionShape& g, int dtype, const void* images, const void* baseline,
                          const int64_t* positions, const int64_t* crop_origins, void* out, uintptr_t stream);
#endif

}  // namespace zfaccel
