// Fixed-width vectors for the CPU switch kernels, written once for every target.
//
// GCC's and Clang's vector extensions: a 16-lane float32 vector is one AVX-512
// register, two AVX2 ones or four NEON ones, and the compiler picks the
// instructions for the machine the extension is built on (-march=native).
// float32 and bfloat16 (computed in float32) get 16 lanes; float64 and float16
// fall back to one lane (Lanes<T>::L == 1), so every kernel is written once, over
// blocks of L elements. Why not the auto-vectoriser: ZFNet's rows are 55 pooled
// values long, and the loops it vectorised spent more time in their scalar
// tails and per-loop setup than in the vector bodies (30 ms single-threaded
// for the (16, 96, 110, 110) pool, against a 3 ms copy). Kernels here work on
// buffers padded to whole vectors, so no loop has a scalar tail.
#pragma once
#include <cstdint>
#include <cstring>

#include "dtype_cpu.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace zfaccel {

typedef float vf32x16 __attribute__((vector_size(64)));
typedef int32_t vi32x16 __attribute__((vector_size(64)));
typedef uint32_t vu32x16 __attribute__((vector_size(64)));
typedef uint16_t vu16x16 __attribute__((vector_size(32)));
typedef uint8_t vu8x16 __attribute__((vector_size(16)));

// One lane: float64 and float16 (whose conversions branch) use plain scalars.
template <typename T>
struct Lanes {
  static constexpr int L = 1;
  using S = typename T::storage;
  using A = typename T::acc;
  using V = A;
  using I = int32_t;
  using M = bool;

  static V load(const A* p) { return *p; }
  static void store(A* p, V v) { *p = v; }
  static V load_s(const S* p) { return T::load(*p); }
  static void store_exact(S* p, V v) { *p = T::store_exact(v); }
  static void store_round(S* p, V v) { *p = T::store(v); }
  static I load_switch(const uint8_t* p) { return *p; }
  static void store_switch(uint8_t* p, I s) { *p = static_cast<uint8_t>(s); }
  static V splat(A a) { return a; }
  static I splati(int32_t a) { return a; }
  static V zero() { return A(0); }
  static M greater_or_nan(V v, V m) { return (v > m) | (v != v); }
  static M equal(I a, I b) { return a == b; }
  static V select(M k, V a, V b) { return k ? a : b; }
  static I select(M k, I a, I b) { return k ? a : b; }
  static V relu(V v) { return v < A(0) ? A(0) : v; }
  // p[0..2L) -> even and odd elements.
  static void deinterleave2(const S* p, A* even, A* odd) {
    *even = T::load(p[0]);
    *odd = T::load(p[1]);
  }
  // even[0..L), odd[0..L) -> p[0..2L), rounded to storage.
  static void interleave2_round(const A* even, const A* odd, bool use_relu, S* p) {
    interleave2_round(*even, *odd, use_relu, p);
  }
  static void interleave2_round(V e, V o, bool use_relu, S* p) {
    p[0] = T::store(use_relu ? zfaccel::relu(e) : e);
    p[1] = T::store(use_relu ? zfaccel::relu(o) : o);
  }
};

// 16 float32 lanes for float32 and bfloat16 storage.
template <typename T>
struct Lanes16 {
  static constexpr int L = 16;
  using S = typename T::storage;
  using A = float;
  using V = vf32x16;
  using I = vi32x16;
  using M = vi32x16;

  static V load(const A* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(A* p, V v) { std::memcpy(p, &v, sizeof v); }
  static I load_switch(const uint8_t* p) {
    // GCC 12 turns the widening of 16 loaded bytes into 16 scalar extracts
    // (it keeps vpmovzxbd only for bytes already in a register): the NHWC
    // unpool spent most of its time there. The intrinsics say it directly.
#if defined(__AVX512F__)
    // maskz with every lane: the same instruction, without the unmasked form's undefined source
    // that GCC 12 reports as maybe-uninitialized.
    const __m512i wide = _mm512_maskz_cvtepu8_epi32(0xffff, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#elif defined(__AVX2__)
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m256i halves[2] = {_mm256_cvtepu8_epi32(bytes), _mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8))};
    const auto& wide = halves;
#else
    vu8x16 wide;
    std::memcpy(&wide, p, sizeof wide);
    return __builtin_convertvector(wide, I);
#endif
#if defined(__AVX512F__) || defined(__AVX2__)
    I out;
    std::memcpy(&out, &wide, sizeof out);
    return out;
#endif
  }
  static void store_switch(uint8_t* p, I s) {
    const vu8x16 b = __builtin_convertvector(s, vu8x16);
    std::memcpy(p, &b, sizeof b);
  }
  static V splat(A a) { return V{} + a; }
  static I splati(int32_t a) { return I{} + a; }
  static V zero() { return V{}; }
  static M greater_or_nan(V v, V m) { return (v > m) | (v != v); }
  static M equal(I a, I b) { return a == b; }
  static V select(M k, V a, V b) { return k ? a : b; }
  static I select(M k, I a, I b) { return k ? a : b; }
  // torch.relu: zero exactly the values below zero (NaN and -0.0 pass).
  static V relu(V v) { return v < V{} ? V{} : v; }
};

template <>
struct Lanes<F32> : Lanes16<F32> {
  static V load_s(const float* p) { return load(p); }
  static void store_exact(float* p, V v) { store(p, v); }
  static void store_round(float* p, V v) { store(p, v); }
  static void deinterleave2(const float* p, A* even, A* odd) {
    const V lo = load(p), hi = load(p + 16);
    const V e = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const V o = __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    store(even, e);
    store(odd, o);
  }
  static void interleave2_round(const A* even, const A* odd, bool use_relu, float* p) {
    interleave2_round(load(even), load(odd), use_relu, p);
  }
  static void interleave2_round(V e, V o, bool use_relu, float* p) {
    if (use_relu) {
      e = relu(e);
      o = relu(o);
    }
    store(p, __builtin_shufflevector(e, o, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
    store(p + 16, __builtin_shufflevector(e, o, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31));
  }
};

template <>
struct Lanes<BF16> : Lanes16<BF16> {
  // bfloat16 is the top half of a float32: widening is a shift, exact.
  static V widen(vu16x16 h) {
    const vu32x16 bits = __builtin_convertvector(h, vu32x16) << 16;
    V v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  static vu32x16 bits(V v) {
    vu32x16 b;
    std::memcpy(&b, &v, sizeof b);
    return b;
  }
  static V load_s(const uint16_t* p) {
    vu16x16 h;
    std::memcpy(&h, p, sizeof h);
    return widen(h);
  }
  static void store_exact(uint16_t* p, V v) {
    const vu16x16 h = __builtin_convertvector(bits(v) >> 16, vu16x16);
    std::memcpy(p, &h, sizeof h);
  }
  // Round to nearest-even as BF16::store does; a NaN stays a quiet NaN. The bfloat16 lands in the
  // high half of each 32-bit lane, the low half zero.
  static vu32x16 round_high(V v) {
    const vu32x16 b = bits(v);
    const vu32x16 rounded = b + 0x7fffu + ((b >> 16) & 1u);
    const vu32x16 quiet = b | 0x00400000u;
    return ((v != v) ? quiet : rounded) & 0xffff0000u;
  }
  static vu16x16 round(V v) { return __builtin_convertvector(round_high(v) >> 16, vu16x16); }
  static void store_round(uint16_t* p, V v) {
    const vu16x16 h = round(v);
    std::memcpy(p, &h, sizeof h);
  }
  // Two neighbouring bfloat16 values are one 32-bit word, the even one in its low half (little
  // endian): shifting the word up widens the even value, masking its low half widens the odd one.
  // No shuffle and no conversion (the shuffle-and-widen form took a quarter of the (16, 96, 110,
  // 110) bfloat16 pool).
  static void deinterleave2(const uint16_t* p, A* even, A* odd) {
    vu32x16 w;
    std::memcpy(&w, p, sizeof w);
    const vu32x16 e = w << 16, o = w & 0xffff0000u;
    std::memcpy(even, &e, sizeof e);
    std::memcpy(odd, &o, sizeof o);
  }
  static void interleave2_round(const A* even, const A* odd, bool use_relu, uint16_t* p) {
    interleave2_round(load(even), load(odd), use_relu, p);
  }
  // The same words the other way: the rounded even value into a word's low half, the odd one into
  // its high half.
  static void interleave2_round(V e, V o, bool use_relu, uint16_t* p) {
    if (use_relu) {
      e = relu(e);
      o = relu(o);
    }
    const vu32x16 w = (round_high(e) >> 16) | round_high(o);
    std::memcpy(p, &w, sizeof w);
  }
};

// n (< L) elements: the last block of a row or of a channel run. Reads and
// writes never pass the caller's n elements. Each goes through a whole-vector
// buffer; with AVX-512 the n elements move between it and memory in one masked
// load or store, otherwise in a variable-length memcpy that costs about as much
// as a block's work (a ZFNet row of 55 pooled values is 3 whole blocks and one of 7).
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define ZFACCEL_MASKED_TAILS 1
#include <immintrin.h>
#endif

#ifdef ZFACCEL_MASKED_TAILS
inline __mmask16 first_n(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
#endif

// tmp[0..L) = p[0..n) followed by bytes `fill` (n < L).
template <typename S, int L>
void load_first_n(S* tmp, const S* p, int64_t n, uint8_t fill) {
#ifdef ZFACCEL_MASKED_TAILS
  if constexpr (L == 16 && sizeof(S) == 4) {
    _mm512_storeu_si512(tmp, _mm512_mask_loadu_epi32(_mm512_set1_epi8(static_cast<char>(fill)), first_n(n), p));
    return;
  } else if constexpr (L == 16 && sizeof(S) == 2) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(tmp),
                        _mm256_mask_loadu_epi16(_mm256_set1_epi8(static_cast<char>(fill)), first_n(n), p));
    return;
  } else if constexpr (L == 16 && sizeof(S) == 1) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp),
                     _mm_mask_loadu_epi8(_mm_set1_epi8(static_cast<char>(fill)), first_n(n), p));
    return;
  }
#endif
  std::memset(tmp, fill, sizeof(S) * L);
  std::memcpy(tmp, p, n * sizeof(S));
}

// p[0..n) = tmp[0..n) (n < L).
template <typename S, int L>
void store_first_n(S* p, const S* tmp, int64_t n) {
#ifdef ZFACCEL_MASKED_TAILS
  if constexpr (L == 16 && sizeof(S) == 4) {
    _mm512_mask_storeu_epi32(p, first_n(n), _mm512_loadu_si512(tmp));
    return;
  } else if constexpr (L == 16 && sizeof(S) == 2) {
    _mm256_mask_storeu_epi16(p, first_n(n), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tmp)));
    return;
  } else if constexpr (L == 16 && sizeof(S) == 1) {
    _mm_mask_storeu_epi8(p, first_n(n), _mm_loadu_si128(reinterpret_cast<const __m128i*>(tmp)));
    return;
  }
#endif
  std::memcpy(p, tmp, n * sizeof(S));
}

template <typename K>
typename K::V load_s_n(const typename K::S* p, int64_t n) {
  typename K::S tmp[K::L];
  load_first_n<typename K::S, K::L>(tmp, p, n, 0);
  return K::load_s(tmp);
}
template <typename K>
typename K::I load_switch_n(const uint8_t* p, int64_t n) {
  uint8_t tmp[K::L];
  load_first_n<uint8_t, K::L>(tmp, p, n, 0xff);  // 255 past n: no window offset, matches no tap
  return K::load_switch(tmp);
}
template <typename K>
void store_exact_n(typename K::S* p, typename K::V v, int64_t n) {
  typename K::S tmp[K::L];
  K::store_exact(tmp, v);
  store_first_n<typename K::S, K::L>(p, tmp, n);
}
template <typename K>
void store_round_n(typename K::S* p, typename K::V v, int64_t n) {
  typename K::S tmp[K::L];
  K::store_round(tmp, v);
  store_first_n<typename K::S, K::L>(p, tmp, n);
}
template <typename K>
void store_switch_n(uint8_t* p, typename K::I s, int64_t n) {
  uint8_t tmp[K::L];
  K::store_switch(tmp, s);
  store_first_n<uint8_t, K::L>(p, tmp, n);
}

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// dst[0..n) += v * src[0..n): whole vectors, then one masked block (AVX-512) for the rest. The
// deconvnet's conv1^T adds runs of 7 taps x 3 colours = 21 floats, which the auto-vectoriser split
// into a 16-wide body and a 5-step scalar tail.
inline void axpy(float* dst, const float* src, float v, int64_t n) {
#ifdef ZFACCEL_MASKED_TAILS
  const __m512 vv = _mm512_set1_ps(v);
  int64_t e = 0;
  for (; e + 16 <= n; e += 16)
    _mm512_storeu_ps(dst + e, _mm512_fmadd_ps(vv, _mm512_loadu_ps(src + e), _mm512_loadu_ps(dst + e)));
  if (e < n) {
    const __mmask16 k = first_n(n - e);
    _mm512_mask_storeu_ps(dst + e, k,
                          _mm512_fmadd_ps(vv, _mm512_maskz_loadu_ps(k, src + e), _mm512_maskz_loadu_ps(k, dst + e)));
  }
#else
  for (int64_t e = 0; e < n; ++e) dst[e] += v * src[e];
#endif
}
inline void axpy(double* dst, const double* src, double v, int64_t n) {
  for (int64_t e = 0; e < n; ++e) dst[e] += v * src[e];
}

}  // namespace zfaccel
