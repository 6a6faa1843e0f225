// Decoding of the GGUF block types the device reads in their file layout (io.moestream.cuda.WeightPacking
// keeps their bytes as they are): the K-quants Q2_K..Q6_K (256 values per super-block) and Q5_0,
// IQ4_NL, MXFP4 (32 per block). A row is cols / QK consecutive blocks. Everything is addressed per
// 32-value sub-block j of a block: sub_value gives its integer quants, sub_scales the block's float
// scales and the sub-block's integer scales, so that
//   value(l) = d * s(l) * q(l) - dmin * m(l),   s, m = (s0, m0) for l < 16, (s1, m1) for l >= 16.
// Blocks are not 2- or 4-byte aligned in general (Q6_K 210 bytes, MXFP4 17), so every read is a byte
// read. The Java twin of this file is io.moestream.cuda.BlockDecoding (tested against the CPU's
// KQuantBlocks without a GPU). The decoding functions also compile for the host, so a test runs this
// very code on the CPU (src/test/cuda/blocks_host.cu).
#pragma once
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#define BLK_HD __host__ __device__ __forceinline__
#ifdef __CUDA_ARCH__
#define BLK_MUL(a, b) __fmul_rn(a, b)
#define BLK_SUB(a, b) __fsub_rn(a, b)
#else
#define BLK_MUL(a, b) ((a) * (b))
#define BLK_SUB(a, b) ((a) - (b))
#endif

#define BT_Q2_K 0
#define BT_Q3_K 1
#define BT_Q4_K 2
#define BT_Q5_K 3
#define BT_Q6_K 4
#define BT_Q5_0 5
#define BT_IQ4_NL 6
#define BT_MXFP4 7

template <int T> struct BlockInfo;
template <> struct BlockInfo<BT_Q2_K> { static constexpr int values = 256, bytes = 84; static constexpr bool mins = true; };
template <> struct BlockInfo<BT_Q3_K> { static constexpr int values = 256, bytes = 110; static constexpr bool mins = false; };
template <> struct BlockInfo<BT_Q4_K> { static constexpr int values = 256, bytes = 144; static constexpr bool mins = true; };
template <> struct BlockInfo<BT_Q5_K> { static constexpr int values = 256, bytes = 176; static constexpr bool mins = true; };
template <> struct BlockInfo<BT_Q6_K> { static constexpr int values = 256, bytes = 210; static constexpr bool mins = false; };
template <> struct BlockInfo<BT_Q5_0> { static constexpr int values = 32, bytes = 22; static constexpr bool mins = false; };
template <> struct BlockInfo<BT_IQ4_NL> { static constexpr int values = 32, bytes = 18; static constexpr bool mins = false; };
template <> struct BlockInfo<BT_MXFP4> { static constexpr int values = 32, bytes = 17; static constexpr bool mins = false; };

#define IQ4_NL_TABLE {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}
// E2M1 values times two (so 2^(e-128) is the scale)
#define MXFP4_TABLE {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}
__constant__ int8_t IQ4_NL_VALUES[16] = IQ4_NL_TABLE;
__constant__ int8_t MXFP4_VALUES[16] = MXFP4_TABLE;

BLK_HD int iq4_nl_value(int i) {
#ifdef __CUDA_ARCH__
    return IQ4_NL_VALUES[i];
#else
    static const int8_t t[16] = IQ4_NL_TABLE;
    return t[i];
#endif
}

BLK_HD int mxfp4_value(int i) {
#ifdef __CUDA_ARCH__
    return MXFP4_VALUES[i];
#else
    static const int8_t t[16] = MXFP4_TABLE;
    return t[i];
#endif
}

BLK_HD float blk_bits_to_float(uint32_t bits) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(bits);
#else
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

BLK_HD float half_at(const uint8_t* p) {
    __half_raw raw;
    raw.x = (unsigned short) (p[0] | (p[1] << 8));
    return __half2float(__half(raw));
}

// GGML_E8M0_TO_FP32_HALF: 2^(e - 128), subnormal for e < 2
BLK_HD float e8m0_half(int e) {
    return blk_bits_to_float(e < 2 ? (0x00200000u << e) : ((uint32_t) (e - 1) << 23));
}

// Q4_K / Q5_K 6-bit scale (which 0) or min (which 1) of sub-block j from the 12 bytes at s
BLK_HD int scale_min_k4(const uint8_t* s, int j, int which) {
    if (j < 4) return s[j + 4 * which] & 63;
    int hi = s[j + 4];
    int lo = s[j - 4 + 4 * which];
    return which == 0 ? ((hi & 0xf) | ((lo >> 6) << 4)) : ((hi >> 4) | ((lo >> 6) << 4));
}

// Q3_K signed 6-bit scale i (0..15) from the 12 bytes at s
BLK_HD int scale_q3_k(const uint8_t* s, int i) {
    int lo = i < 8 ? (s[i] & 0xf) : (s[i - 8] >> 4);
    int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

// Integer quant l (0..31) of sub-block j of the block at b (Q6_K with its offset of 32 removed).
template <int T>
BLK_HD int sub_value(const uint8_t* __restrict__ b, int j, int l) {
    if (T == BT_Q4_K) {
        int q = b[16 + 32 * (j >> 1) + l];
        return (j & 1) ? (q >> 4) : (q & 0xf);
    } else if (T == BT_Q5_K) {
        int q = b[48 + 32 * (j >> 1) + l];
        return ((j & 1) ? (q >> 4) : (q & 0xf)) + (((b[16 + l] >> j) & 1) << 4);
    } else if (T == BT_Q6_K) {
        int h = j >> 2, q = j & 3;
        int lo = (b[64 * h + l + 32 * (q & 1)] >> (4 * (q >> 1))) & 0xf;
        int hi = (b[128 + 32 * h + l] >> (2 * q)) & 3;
        return (lo | (hi << 4)) - 32;
    } else if (T == BT_Q3_K) {
        int n = j >> 2, jj = j & 3;
        int low = (b[32 + 32 * n + l] >> (2 * jj)) & 3;
        int high = (b[l] >> (4 * n + jj)) & 1;
        return low - (high ? 0 : 4);
    } else if (T == BT_Q2_K) {
        return (b[16 + 32 * (j >> 2) + l] >> (2 * (j & 3))) & 3;
    } else if (T == BT_Q5_0) {
        int q = b[6 + (l & 15)];
        int h = (b[2 + (l >> 3)] >> (l & 7)) & 1; // bit l of the little-endian u32 at byte 2
        return ((l < 16 ? (q & 0xf) : (q >> 4)) | (h << 4)) - 16;
    } else if (T == BT_IQ4_NL) {
        int q = b[2 + (l & 15)];
        return iq4_nl_value(l < 16 ? (q & 0xf) : (q >> 4));
    } else { // BT_MXFP4
        int q = b[1 + (l & 15)];
        return mxfp4_value(l < 16 ? (q & 0xf) : (q >> 4));
    }
}

struct SubScales {
    float d;     // block scale
    float dmin;  // block scale of the mins (0 when the type has none)
    int s0, s1;  // integer scales of values 0..15 and 16..31
    int m0, m1;  // integer mins of values 0..15 and 16..31
};

template <int T>
BLK_HD SubScales sub_scales(const uint8_t* __restrict__ b, int j) {
    SubScales s = {0.f, 0.f, 1, 1, 0, 0};
    if (T == BT_Q4_K || T == BT_Q5_K) {
        s.d = half_at(b);
        s.dmin = half_at(b + 2);
        s.s0 = s.s1 = scale_min_k4(b + 4, j, 0);
        s.m0 = s.m1 = scale_min_k4(b + 4, j, 1);
    } else if (T == BT_Q6_K) {
        s.d = half_at(b + 208);
        s.s0 = (int8_t) b[192 + 2 * j];
        s.s1 = (int8_t) b[193 + 2 * j];
    } else if (T == BT_Q3_K) {
        s.d = half_at(b + 108);
        s.s0 = scale_q3_k(b + 96, 2 * j);
        s.s1 = scale_q3_k(b + 96, 2 * j + 1);
    } else if (T == BT_Q2_K) {
        s.d = half_at(b + 80);
        s.dmin = half_at(b + 82);
        s.s0 = b[2 * j] & 0xf;
        s.s1 = b[2 * j + 1] & 0xf;
        s.m0 = b[2 * j] >> 4;
        s.m1 = b[2 * j + 1] >> 4;
    } else if (T == BT_MXFP4) {
        s.d = e8m0_half(b[0]);
    } else { // Q5_0, IQ4_NL
        s.d = half_at(b);
    }
    return s;
}

// Value i of the row at w as float with the float operations of ggml's dequantize_row_* (the CPU's
// KQuantBlocks.dequantize): what an embedding lookup gives. _rn intrinsics keep nvcc from fusing.
template <int T>
BLK_HD float dequant_value(const uint8_t* __restrict__ w, int i) {
    constexpr int QK = BlockInfo<T>::values;
    const uint8_t* b = w + (size_t) (i / QK) * BlockInfo<T>::bytes;
    int v = i % QK;
    int j = v / 32, l = v % 32;
    SubScales s = sub_scales<T>(b, j);
    float q = (float) sub_value<T>(b, j, l);
    int sc = l < 16 ? s.s0 : s.s1;
    if (BlockInfo<T>::mins) {
        int m = l < 16 ? s.m0 : s.m1;
        return BLK_SUB(BLK_MUL(BLK_MUL(s.d, (float) sc), q), BLK_MUL(s.dmin, (float) m));
    }
    if (QK == 256) return BLK_MUL(BLK_MUL(s.d, (float) sc), q);
    return BLK_MUL(q, s.d);
}

// Signed byte dot product of a and b added to c (dp4a on the device).
BLK_HD int blk_dot4(int a, int b, int c) {
#ifdef __CUDA_ARCH__
    return __dp4a(a, b, c);
#else
    for (int i = 0; i < 4; i++) c += (int8_t) (a >> (8 * i)) * (int8_t) (b >> (8 * i));
    return c;
#endif
}

// The 32 quants of sub-block j as 8 words of 4 signed bytes (values 4g..4g+3 in word g).
template <int T>
BLK_HD void sub_pack(const uint8_t* __restrict__ b, int j, int (&wv)[8]) {
#pragma unroll
    for (int g = 0; g < 8; g++) {
        wv[g] = (sub_value<T>(b, j, 4 * g) & 0xff) | ((sub_value<T>(b, j, 4 * g + 1) & 0xff) << 8)
                | ((sub_value<T>(b, j, 4 * g + 2) & 0xff) << 16) | ((sub_value<T>(b, j, 4 * g + 3) & 0xff) << 24);
    }
}

// The sub-block's share of a product: its quants wv and scales sc against 32 activation quants xq
// (16-byte aligned) of scale dx: d dx (s0 p0 + s1 p1) - dmin dx (m0 a0 + m1 a1), p the quant dot
// products and a the activation sums of values 0..15 and 16..31.
template <int T>
BLK_HD float sub_dot(const SubScales& sc, const int (&wv)[8], const int8_t* __restrict__ xq, float dx) {
#ifdef __CUDA_ARCH__
    int4 x0 = reinterpret_cast<const int4*>(xq)[0];
    int4 x1 = reinterpret_cast<const int4*>(xq)[1];
    const int x[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#else
    int x[8];
    memcpy(x, xq, 32);
#endif
    int p0 = 0, p1 = 0;
#pragma unroll
    for (int g = 0; g < 4; g++) {
        p0 = blk_dot4(wv[g], x[g], p0);
        p1 = blk_dot4(wv[g + 4], x[g + 4], p1);
    }
    float v = (sc.d * dx) * (float) (sc.s0 * p0 + sc.s1 * p1);
    if (BlockInfo<T>::mins) {
        int a0 = 0, a1 = 0;
#pragma unroll
        for (int g = 0; g < 4; g++) {
            a0 = blk_dot4(0x01010101, x[g], a0);
            a1 = blk_dot4(0x01010101, x[g + 4], a1);
        }
        v -= (sc.dmin * dx) * (float) (sc.m0 * a0 + sc.m1 * a1);
    }
    return v;
}
