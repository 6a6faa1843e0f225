// Shared device helpers for the moestream kernels. Every per-element rule here has a Java twin in
// io.moestream.runtime.backend (ActivationQuantizer, backend.cpu) so the CPU backend is the oracle.
#pragma once
#include <cuda_fp16.h>
#include <stdint.h>

#define WARP 32
// Matrix products: one warp per output row, WARPS_PER_BLOCK warps per block, TILE input rows per pass.
#define WARPS_PER_BLOCK 4
#define TILE 8

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// x rounded to the nearest half (as llama.cpp rounds the activation before an F16 product)
__device__ __forceinline__ float round_f16(float x) { return __half2float(__float2half_rn(x)); }

__device__ __forceinline__ float f16_bits_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }

__device__ __forceinline__ float bf16_bits_to_float(uint16_t b) { return __uint_as_float(((uint32_t) b) << 16); }

// x rounded to the nearest bfloat16, ties to even; NaN kept (ActivationQuantizer.roundBf16)
__device__ __forceinline__ float round_bf16(float x) {
    uint32_t bits = __float_as_uint(x);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return x;
    return __uint_as_float(((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16) << 16);
}

// Sum of the four signed bytes products of a and b, added to c.
__device__ __forceinline__ int dot4(int a, int b, int c) { return __dp4a(a, b, c); }
