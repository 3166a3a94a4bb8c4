// pybind11 module zfaccel._native: raw pointers and sizes in, no libtorch.
//
// Pool `shape` is (n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw); `dtype` 0..3
// is float32, float64, float16, bfloat16; `layout` 0 is NCHW-contiguous and 1
// channels-last. The GIL is released while a kernel runs.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "kernels.h"

namespace py = pybind11;
using zfaccel::PoolShape;

namespace {

PoolShape to_shape(const std::array<int64_t, 14>& a) {
  return PoolShape{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13]};
}

void pool_cpu(uintptr_t x, uintptr_t y, uintptr_t s, const std::array<int64_t, 14>& shape, int dtype, int layout,
              bool relu, int num_threads) {
  const PoolShape g = to_shape(shape);
  py::gil_scoped_release nogil;
  zfaccel::max_pool2d_switches_cpu(g, dtype, layout, reinterpret_cast<const void*>(x), reinterpret_cast<void*>(y),
                                   reinterpret_cast<uint8_t*>(s), relu, num_threads);
}

void unpool_cpu(uintptr_t y, uintptr_t s, uintptr_t x, const std::array<int64_t, 14>& shape, int dtype, int layout,
                bool relu, int num_threads) {
  const PoolShape g = to_shape(shape);
  py::gil_scoped_release nogil;
  zfaccel::max_unpool2d_switches_cpu(g, dtype, layout, reinterpret_cast<const void*>(y),
                                     reinterpret_cast<const uint8_t*>(s), reinterpret_cast<void*>(x), relu,
                                     num_threads);
}

int64_t count_invalid_cpu(uintptr_t s, const std::array<int64_t, 14>& shape, int layout, int num_threads) {
  const PoolShape g = to_shape(shape);
  py::gil_scoped_release nogil;
  return zfaccel::count_invalid_switches_cpu(g, layout, reinterpret_cast<const uint8_t*>(s), num_threads);
}

void spatial_argmax(uintptr_t x, uintptr_t values, uintptr_t indices, int64_t maps, int64_t size, int dtype,
                    int num_threads) {
  py::gil_scoped_release nogil;
  zfaccel::spatial_argmax_cpu(maps, size, dtype, reinterpret_cast<const void*>(x), reinterpret_cast<void*>(values),
                              reinterpret_cast<int64_t*>(indices), num_threads);
}

// crop: (t, c, h, w, kh, kw, sh, sw, dh, dw, map_h, map_w)
zfaccel::CropShape to_crop(const std::array<int64_t, 12>& a) {
  return zfaccel::CropShape{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]};
}

void conv_transpose_crops(uintptr_t x, uintptr_t weight, uintptr_t offset, uintptr_t y,
                          const std::array<int64_t, 12>& crop, int64_t cout_g, int64_t groups, bool relu, int dtype,
                          int num_threads) {
  const zfaccel::CropShape g = to_crop(crop);
  py::gil_scoped_release nogil;
  zfaccel::conv_transpose_crops_cpu(g, cout_g, groups, dtype, reinterpret_cast<const void*>(x),
                                    reinterpret_cast<const void*>(weight), reinterpret_cast<const int64_t*>(offset),
                                    relu, reinterpret_cast<void*>(y), num_threads);
}

void unpool_crops(uintptr_t x, uintptr_t switches, uintptr_t image_index, uintptr_t offset_in, uintptr_t y,
                  const std::array<int64_t, 12>& crop, int64_t pooled_h, int64_t pooled_w, int64_t images,
                  int64_t pad_h, int64_t pad_w, bool relu, int dtype, int num_threads) {
  const zfaccel::CropShape g = to_crop(crop);
  py::gil_scoped_release nogil;
  zfaccel::unpool_crops_cpu(g, pooled_h, pooled_w, images, dtype, reinterpret_cast<const void*>(x),
                            reinterpret_cast<const uint8_t*>(switches), reinterpret_cast<const int64_t*>(image_index),
                            reinterpret_cast<const int64_t*>(offset_in), pad_h, pad_w, relu,
                            reinterpret_cast<void*>(y), num_threads);
}

void unpool_conv_transpose_crops(uintptr_t x, uintptr_t switches, uintptr_t image_index, uintptr_t offset_in,
                                 uintptr_t weight, uintptr_t offset, uintptr_t y, const std::array<int64_t, 12>& pool,
                                 int64_t pooled_h, int64_t pooled_w, int64_t images, int64_t pad_h, int64_t pad_w,
                                 bool unpool_relu, const std::array<int64_t, 12>& conv, int64_t cout_g, int64_t groups,
                                 bool relu, int dtype, int num_threads) {
  const zfaccel::CropShape p = to_crop(pool), c = to_crop(conv);
  py::gil_scoped_release nogil;
  zfaccel::unpool_conv_transpose_crops_cpu(
      p, pooled_h, pooled_w, images, reinterpret_cast<const uint8_t*>(switches),
      reinterpret_cast<const int64_t*>(image_index), reinterpret_cast<const int64_t*>(offset_in), pad_h, pad_w,
      unpool_relu, c, cout_g, groups, reinterpret_cast<const void*>(weight), reinterpret_cast<const int64_t*>(offset),
      relu, dtype, reinterpret_cast<const void*>(x), reinterpret_cast<void*>(y), num_threads);
}

// paste: (t, c, h, w, n, map_h, map_w)
void paste_rows(uintptr_t signal, uintptr_t offset, uintptr_t rows, uintptr_t out, const std::array<int64_t, 7>& a,
                int dtype, int num_threads) {
  const zfaccel::PasteShape g{a[0], a[1], a[2], a[3], a[4], a[5], a[6]};
  py::gil_scoped_release nogil;
  zfaccel::paste_rows_cpu(g, dtype, reinterpret_cast<const void*>(signal), reinterpret_cast<const int64_t*>(offset),
                          reinterpret_cast<const int64_t*>(rows), reinterpret_cast<void*>(out), num_threads);
}

// occlusion: (b, c, h, w, p, wh, ww, ch, cw); strides in elements of images and baseline (b, c, h, w).
zfaccel::OcclusionShape to_occlusion(const std::array<int64_t, 9>& a, const std::array<int64_t, 4>& is,
                                     const std::array<int64_t, 4>& bs) {
  return zfaccel::OcclusionShape{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8],
                                 {is[0], is[1], is[2], is[3]}, {bs[0], bs[1], bs[2], bs[3]}};
}

void occlusion_batch_cpu(uintptr_t images, uintptr_t baseline, uintptr_t positions, uintptr_t crop_origins,
                         uintptr_t out, const std::array<int64_t, 9>& shape, const std::array<int64_t, 4>& image_strides,
                         const std::array<int64_t, 4>& baseline_strides, int dtype, int num_threads) {
  const zfaccel::OcclusionShape g = to_occlusion(shape, image_strides, baseline_strides);
  py::gil_scoped_release nogil;
  zfaccel::occlusion_batch_cpu(g, dtype, reinterpret_cast<const void*>(images), reinterpret_cast<const void*>(baseline),
                               reinterpret_cast<const int64_t*>(positions),
                               reinterpret_cast<const int64_t*>(crop_origins), reinterpret_cast<void*>(out),
                               num_threads);
}

// Ask the kernel to back [ptr, ptr + nbytes) with 2 MiB pages before its first
// touch. A fresh 74 MB output (a ZFNet conv1 map at batch 16) otherwise costs
// 18k page faults, 25 ms on our 2-core VM: more than the unpool kernel itself.
// Only whole 2 MiB blocks inside the range are advised; returns whether any were.
bool advise_huge_pages(uintptr_t ptr, uint64_t nbytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  const uintptr_t begin = (ptr + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (ptr + nbytes) & ~(kHuge - 1);
  if (end <= begin) return false;
  return madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) == 0;
#else
  (void)ptr;
  (void)nbytes;
  return false;
#endif
}

// First touch of a fresh host buffer, one write per 4 KiB page, a 2 MiB page (aligned) per item.
// The kernels write their outputs in interleaved items, so both threads faulted inside the same
// 2 MiB huge page and one waited while the other cleared it: a fresh (16, 96, 110, 110) float32
// unpool took 10.5 ms against 4.4 ms into memory already touched. Here no two threads meet in one
// huge page. Items are grabbed dynamically: in fixed halves, a thread sharing its core with another
// process held the call for twice its time (faulting is half of a fresh unpool's call).
void touch_pages(uintptr_t ptr, uint64_t nbytes, int num_threads) {
  zfaccel::require(num_threads >= 1, "touch_pages", "num_threads must be at least 1");
  py::gil_scoped_release nogil;
  constexpr int64_t kPage = 4096, kPerHuge = 512;  // 4 KiB pages per 2 MiB page
  volatile char* p = reinterpret_cast<char*>(ptr);
  const int64_t pages = static_cast<int64_t>((nbytes + kPage - 1) / kPage);  // writes at p + k * kPage
  // Writes before the first 2 MiB boundary past ptr form item 0; then kPerHuge per huge page.
  const uint64_t huge = uint64_t(kPage) * kPerHuge, boundary = (ptr / huge + 1) * huge;
  const int64_t head = std::min<int64_t>(pages, static_cast<int64_t>((boundary - ptr + kPage - 1) / kPage));
  const int64_t items = pages == 0 ? 0 : 1 + (pages - head + kPerHuge - 1) / kPerHuge;
#pragma omp parallel for num_threads(num_threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < items; ++i) {
    const int64_t lo = i == 0 ? 0 : head + (i - 1) * kPerHuge;
    const int64_t hi = i == 0 ? head : std::min(pages, lo + kPerHuge);
    for (int64_t k = lo; k < hi; ++k) p[k * kPage] = 0;
  }
}

// How this module was built (CMake's compile definitions on this file) and the OpenMP it runs.
#ifndef ZFACCEL_CUDA_ARCHS
#define ZFACCEL_CUDA_ARCHS ""
#endif
#ifndef ZFACCEL_CUDA_COMPILER
#define ZFACCEL_CUDA_COMPILER ""
#endif
#ifndef ZFACCEL_CXX_COMPILER
#define ZFACCEL_CXX_COMPILER ""
#endif
#ifndef ZFACCEL_BUILD_TYPE
#define ZFACCEL_BUILD_TYPE ""
#endif
#ifndef ZFACCEL_MARCH_NATIVE
#define ZFACCEL_MARCH_NATIVE 0
#endif

py::dict build_info() {
  std::vector<std::string> archs;  // CMAKE_CUDA_ARCHITECTURES: "80-real", "90-real", "90-virtual"
  std::istringstream words(ZFACCEL_CUDA_ARCHS);
  for (std::string word; words >> word;) archs.push_back(word);
  py::dict info;
#ifdef ZFACCEL_WITH_CUDA
  info["cuda"] = true;
  info["cuda_compiler"] = std::string(ZFACCEL_CUDA_COMPILER);
#else
  info["cuda"] = false;
  info["cuda_compiler"] = py::none();
#endif
  info["cuda_architectures"] = archs;
  info["cxx_compiler"] = std::string(ZFACCEL_CXX_COMPILER);
  info["build_type"] = std::string(ZFACCEL_BUILD_TYPE);
  info["march_native"] = ZFACCEL_MARCH_NATIVE != 0;
  info["openmp"] = static_cast<int>(_OPENMP);  // the spec's date, e.g. 201511 for OpenMP 4.5
  info["openmp_max_threads"] = omp_get_max_threads();
  return info;
}

#ifdef ZFACCEL_WITH_CUDA
void pool_cuda(uintptr_t x, uintptr_t y, uintptr_t s, const std::array<int64_t, 14>& shape, int dtype, int layout,
               bool relu, uintptr_t stream) {
  const PoolShape g = to_shape(shape);
  zfaccel::max_pool2d_switches_cuda(g, dtype, layout, reinterpret_cast<const void*>(x), reinterpret_cast<void*>(y),
                                    reinterpret_cast<uint8_t*>(s), relu, stream);
}

void unpool_cuda(uintptr_t y, uintptr_t s, uintptr_t x, const std::array<int64_t, 14>& shape, int dtype, int layout,
                 bool relu, uintptr_t stream) {
  const PoolShape g = to_shape(shape);
  zfaccel::max_unpool2d_switches_cuda(g, dtype, layout, reinterpret_cast<const void*>(y),
                                      reinterpret_cast<const uint8_t*>(s), reinterpret_cast<void*>(x), relu, stream);
}

void occlusion_batch_cuda(uintptr_t images, uintptr_t baseline, uintptr_t positions, uintptr_t crop_origins,
                          uintptr_t out, const std::array<int64_t, 9>& shape,
                          const std::array<int64_t, 4>& image_strides, const std::array<int64_t, 4>& baseline_strides,
                          int dtype, uintptr_t stream) {
  const zfaccel::OcclusionShape g = to_occlusion(shape, image_strides, baseline_strides);
  zfaccel::occlusion_batch_cuda(g, dtype, reinterpret_cast<const void*>(images),
                                reinterpret_cast<const void*>(baseline), reinterpret_cast<const int64_t*>(positions),
                                reinterpret_cast<const int64_t*>(crop_origins), reinterpret_cast<void*>(out), stream);
}
#endif

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "zfaccel's compiled switch kernels (C++/OpenMP; CUDA when built with nvcc)";
  m.def("max_pool2d_switches_cpu", &pool_cpu, py::arg("x"), py::arg("y"), py::arg("s"), py::arg("shape"),
        py::arg("dtype"), py::arg("layout"), py::arg("relu"), py::arg("num_threads"));
  m.def("max_unpool2d_switches_cpu", &unpool_cpu, py::arg("y"), py::arg("s"), py::arg("x"), py::arg("shape"),
        py::arg("dtype"), py::arg("layout"), py::arg("relu"), py::arg("num_threads"));
  m.def("count_invalid_switches_cpu", &count_invalid_cpu, py::arg("s"), py::arg("shape"), py::arg("layout"),
        py::arg("num_threads"));
  m.def("spatial_argmax_cpu", &spatial_argmax, py::arg("x"), py::arg("values"), py::arg("indices"),
        py::arg("maps"), py::arg("size"), py::arg("dtype"), py::arg("num_threads"));
  m.def("conv_transpose_crops_cpu", &conv_transpose_crops, py::arg("x"), py::arg("weight"), py::arg("offset"),
        py::arg("y"), py::arg("crop"), py::arg("cout_g"), py::arg("groups"), py::arg("relu"), py::arg("dtype"),
        py::arg("num_threads"));
  m.def("unpool_crops_cpu", &unpool_crops, py::arg("x"), py::arg("switches"), py::arg("image_index"),
        py::arg("offset_in"), py::arg("y"), py::arg("crop"), py::arg("pooled_h"), py::arg("pooled_w"),
        py::arg("images"), py::arg("pad_h"), py::arg("pad_w"), py::arg("relu"), py::arg("dtype"),
        py::arg("num_threads"));
  m.def("unpool_conv_transpose_crops_cpu", &unpool_conv_transpose_crops, py::arg("x"), py::arg("switches"),
        py::arg("image_index"), py::arg("offset_in"), py::arg("weight"), py::arg("offset"), py::arg("y"),
        py::arg("pool"), py::arg("pooled_h"), py::arg("pooled_w"), py::arg("images"), py::arg("pad_h"),
        py::arg("pad_w"), py::arg("unpool_relu"), py::arg("conv"), py::arg("cout_g"), py::arg("groups"),
        py::arg("relu"), py::arg("dtype"), py::arg("num_threads"));
  m.def("paste_rows_cpu", &paste_rows, py::arg("signal"), py::arg("offset"), py::arg("rows"), py::arg("out"),
        py::arg("shape"), py::arg("dtype"), py::arg("num_threads"));
  m.def("occlusion_batch_cpu", &occlusion_batch_cpu, py::arg("images"), py::arg("baseline"), py::arg("positions"),
        py::arg("crop_origins"), py::arg("out"), py::arg("shape"), py::arg("image_strides"),
        py::arg("baseline_strides"), py::arg("dtype"), py::arg("num_threads"));
  m.def("advise_huge_pages", &advise_huge_pages, py::arg("ptr"), py::arg("nbytes"),
        "madvise(MADV_HUGEPAGE) on the whole 2 MiB pages of a fresh host buffer");
  m.def("touch_pages", &touch_pages, py::arg("ptr"), py::arg("nbytes"), py::arg("num_threads"),
        "write one zero per 4 KiB page of a fresh host buffer, a 2 MiB page per dynamically scheduled item");
#ifdef ZFACCEL_WITH_CUDA
  m.def("max_pool2d_switches_cuda", &pool_cuda, py::arg("x"), py::arg("y"), py::arg("s"), py::arg("shape"),
        py::arg("dtype"), py::arg("layout"), py::arg("relu"), py::arg("stream"));
  m.def("max_unpool2d_switches_cuda", &unpool_cuda, py::arg("y"), py::arg("s"), py::arg("x"), py::arg("shape"),
        py::arg("dtype"), py::arg("layout"), py::arg("relu"), py::arg("stream"));
  m.def("occlusion_batch_cuda", &occlusion_batch_cuda, py::arg("images"), py::arg("baseline"),
        py::arg("positions"), py::arg("crop_origins"), py::arg("out"), py::arg("shape"), py::arg("image_strides"),
        py::arg("baseline_strides"), py::arg("dtype"), py::arg("stream"));
  m.attr("has_cuda") = true;
#else
  m.attr("has_cuda") = false;
#endif
  m.attr("max_window") = zfaccel::kMaxWindow;
  m.def("build_info", &build_info,
        "How the module was built: cuda (bool), cuda_architectures, cuda_compiler, cxx_compiler, build_type, "
        "march_native, openmp (the spec's date) and openmp_max_threads (omp_get_max_threads() now)");
}
