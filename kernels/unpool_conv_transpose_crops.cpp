// The deconvnet's "unpool, rectify, filter" in one pass per target: each target's pooled crop is
// unpooled (unpool_crops_cpu.h) straight into the list of non-zero inputs the transposed convolution
// reads (conv_transpose_crops_cpu.h). Unpooled crops are mostly zeros and large: ZFNet's pool1 crops of
// 64 conv5 targets fill 110 MB (95 % zeros), which two steps write once and read twice (zero scan, then
// values); here no dense crop exists unless the convolution needs one (groups > 1 or dilation > 1).
#include <vector>

#include "conv_transpose_crops_cpu.h"
#include "kernels.h"
#include "unpool_crops_cpu.h"

namespace zfaccel {
namespace {

// A thread's source of unpooled crops (conv_transpose_crops_cpu.h). nonzeros(t) never makes the dense
// crop: per channel, the pooled values are summed into one (out_h, out_w) plane (18 KB for conv1^T: in
// L1), the cells written are rectified and listed, and the plane is cleared where it was written; the
// list (channel-major) is then sorted by position, stably, so channels stay ascending in each group.
// Same sums, same order, same bits as unpool_crops then conv_transpose_crops.
template <typename A>
class UnpooledCrops {
 public:
  UnpooledCrops(const CropUnpool<A>& unpool, const A* x, int64_t in, int64_t channels, int64_t positions)
      : unpool_(unpool), x_(x), in_(in), c_(channels), n_(positions), plane_(positions, A(0)), seen_(positions, 0) {}

  const A* dense(int64_t t) {
    dense_.resize(c_ * n_);
    unpool_.target(t, x_ + t * in_, dense_.data());
    return dense_.data();
  }

  // Appends are branch-free (write, then advance by the condition): whether a cell was seen, and whether
  // its rectified sum is zero, are both close to coin flips here.
  void nonzeros(int64_t t, NonZeros<A>& nz) {
    pos_.resize(c_ * n_);
    chan_.resize(c_ * n_);
    val_.resize(c_ * n_);
    written_.resize(n_);
    int64_t count = 0;
    for (int64_t c = 0; c < c_; ++c) {
      int64_t w = 0;
      unpool_.channel(t, c, x_ + t * in_, plane_.data(), [&](int64_t e) {
        written_[w] = static_cast<int32_t>(e);
        w += seen_[e] == 0;
        seen_[e] = 1;
      });
      // Kept: the sums the ReLU leaves non-zero (above zero, or NaN: !(v <= 0)), without it the non-zero
      // ones (NaN != 0); either way the value itself is what the ReLU gives. Written as a condition, not
      // as relu(v) then a test: GCC made relu a branch, mispredicted on about half the cells.
      const bool use_relu = unpool_.use_relu();
      for (int64_t k = 0; k < w; ++k) {
        const int32_t e = written_[k];
        const A v = plane_[e];
        plane_[e] = A(0);
        seen_[e] = 0;
        pos_[count] = e;
        chan_[count] = static_cast<int32_t>(c);
        val_[count] = v;
        count += use_relu ? !(v <= A(0)) : v != A(0);
      }
    }
    nz.start.assign(n_ + 1, 0);
    for (int64_t k = 0; k < count; ++k) ++nz.start[pos_[k] + 1];
    nz.place_from_counts(n_);
    for (int64_t k = 0; k < count; ++k) {
      const int32_t at = nz.cursor[pos_[k]]++;
      nz.chan[at] = chan_[k];
      nz.val[at] = val_[k];
    }
  }

 private:
  const CropUnpool<A>& unpool_;
  const A* x_;
  const int64_t in_, c_, n_;
  std::vector<A> plane_, dense_, val_;
  std::vector<uint8_t> seen_;
  std::vector<int32_t> written_, pos_, chan_;
};

}  // namespace

void unpool_conv_transpose_crops_cpu(const CropShape& pool, int64_t pooled_h, int64_t pooled_w, int64_t images,
                                     const uint8_t* switches, const int64_t* image_index, const int64_t* offset_in,
                                     int64_t pad_h, int64_t pad_w, bool unpool_relu, const CropShape& conv,
                                     int64_t cout_g, int64_t groups, const void* weight, const int64_t* offset,
                                     bool use_relu, int dtype, const void* x, void* y, int num_threads) {
  const char* fn = "unpool_conv_transpose_crops_cpu";
  check_unpool_crops(pool, pooled_h, pooled_w, images, pad_h, pad_w, fn);
  check_conv_transpose_crops(conv, cout_g, groups, dtype, num_threads, fn);
  require(conv.t == pool.t && conv.c == pool.c && conv.h == pool.out_h() && conv.w == pool.out_w(), fn,
          "the filter's crops must be the unpooled crops");
  if (pool.t == 0) return;
  require(x != nullptr && switches != nullptr && image_index != nullptr && offset_in != nullptr &&
              weight != nullptr && offset != nullptr && y != nullptr,
          fn, "null data pointer");
  check_image_index(pool.t, image_index, images, fn);
  auto go = [&](auto zero) {
    using A = decltype(zero);
    const CropUnpool<A> unpool(pool, pooled_h, pooled_w, switches, image_index, offset_in, pad_h, pad_w,
                               unpool_relu);
    const A* xa = static_cast<const A*>(x);
    const int64_t in = pool.c * pool.h * pool.w;
    conv_transpose_targets<A>(conv, cout_g, groups, static_cast<const A*>(weight), offset, use_relu,
                              static_cast<A*>(y), num_threads,
                              [&] { return UnpooledCrops<A>(unpool, xa, in, conv.c, conv.h * conv.w); });
  };
  if (dtype == kFloat32)
    go(0.0f);
  else
    go(0.0);
}

}  // namespace zfaccel
