// Storage <-> compute conversions for the CPU kernels.
//
// float16 and bfloat16 are stored as raw uint16 bits and computed in float32:
// widening is exact, so comparisons (pooling) are exact, and sums (unpooling)
// round once, on the final store, to nearest-even as torch's .to() does.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace zfaccel {

// store() rounds a computed value to nearest-even; store_exact() writes a value
// that came from load() unchanged (pooling picks inputs, it never rounds).
struct F32 {
  using storage = float;
  using acc = float;
  static inline acc load(storage v) { return v; }
  static inline storage store(acc v) { return v; }
  static inline storage store_exact(acc v) { return v; }
};

struct F64 {
  using storage = double;
  using acc = double;
  static inline acc load(storage v) { return v; }
  static inline storage store(acc v) { return v; }
  static inline storage store_exact(acc v) { return v; }
};

struct BF16 {
  using storage = uint16_t;
  using acc = float;
  static inline acc load(storage v) {
    uint32_t bits = static_cast<uint32_t>(v) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  static inline storage store(acc f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if (std::isnan(f)) return static_cast<storage>((bits >> 16) | 0x0040u);  // keep it a quiet NaN
    bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest, ties to even
    return static_cast<storage>(bits >> 16);
  }
  static inline storage store_exact(acc f) {
    uint32_t bits;  // a widened bfloat16: the low 16 bits are zero (NaN payload kept)
    std::memcpy(&bits, &f, 4);
    return static_cast<storage>(bits >> 16);
  }
};

struct F16 {
  using storage = uint16_t;
  using acc = float;
  static inline acc load(storage h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1fu) {
      bits = sign | 0x7f800000u | (man << 13);  // inf / NaN
    } else if (exp != 0) {
      bits = sign | ((exp + 112u) << 23) | (man << 13);  // normal: rebias 15 -> 127
    } else if (man == 0) {
      bits = sign;  // signed zero
    } else {
      // subnormal half: normalise the mantissa into a normal float
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while ((man & 0x400u) == 0);
      bits = sign | static_cast<uint32_t>(112 - e) << 23 | ((man & 0x3ffu) << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  static inline storage store(acc f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    const uint32_t absb = bits & 0x7fffffffu;
    if (absb >= 0x7f800000u) {  // inf or NaN
      return static_cast<storage>(sign | 0x7c00u | (absb > 0x7f800000u ? 0x0200u : 0u));
    }
    if (absb >= 0x477ff000u) return static_cast<storage>(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (absb < 0x38800000u) {
      // result is subnormal (or zero) in half: value / 2^-24, rounded to nearest-even
      if (absb < 0x33000000u) return sign;  // below half the smallest subnormal
      const uint32_t e = absb >> 23;
      const uint32_t m = (absb & 0x7fffffu) | 0x800000u;
      const uint32_t shift = 126u - e;  // m * 2^(e-150) in units of 2^-24 is m >> (126 - e)
      const uint32_t q = m >> shift;
      const uint32_t rem = m & ((1u << shift) - 1u);
      const uint32_t half = 1u << (shift - 1u);
      uint32_t r = q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
      return static_cast<storage>(sign | r);
    }
    // normal: rebias 127 -> 15 and round the 13 dropped mantissa bits to nearest-even
    uint32_t r = absb - 0x38000000u;
    r += 0x0fffu + ((r >> 13) & 1u);
    return static_cast<storage>(sign | (r >> 13));
  }
  static inline storage store_exact(acc f) { return store(f); }  // exact values round to themselves
};

// Calls f(T{}) with the traits of a dtype code (0 f32, 1 f64, 2 f16, 3 bf16).
template <typename F>
void dispatch_traits(int dtype, F&& f) {
  switch (dtype) {
    case 0: return f(F32{});
    case 1: return f(F64{});
    case 2: return f(F16{});
    default: return f(BF16{});
  }
}

template <typename A>
inline bool is_nan(A v) {
  return v != v;
}

// torch.relu keeps -0.0 and NaN: it zeroes exactly the values below zero.
template <typename A>
inline A relu(A v) {
  return v < A(0) ? A(0) : v;
}

}  // namespace zfaccel
