// Q4_K, Q5_K and Q6_K rows against Q8_K activations with AVX-512 VNNI (NativeKQuant's fast path),
// bit for bit kquant.h / KQuantKernels: the integer sums are exact in any grouping, and the float
// steps are the same operations in the same order (docs/runtime.md, "K-quants and other block types").
//
// The activation comes in its native Q8_K form (quantize_q8k; size: NativeKQuant.nativeBytes): int8 quants in natural order, the
// same quants in the order a 64-byte load of Q4_K/Q5_K nibbles gives (see below), the block scales,
// the sums of every 16 quants and of every 32 (int16).
//
// Per super-block and 64 weights, one vpdpbusd (unsigned weights x signed quants) gives 16 int32
// lanes, each the exact sum of four consecutive products (|sum| <= 4 * 63 * 127, so it fits the low
// 16 bits); one vpdpwssd multiplies those low halves by the weights' scale of that lane (high half
// 0) and adds them up. What the lanes hold afterwards:
//   Q4_K (gemv order): one sum per super-block, reduced with the mins sum in one pass;
//   Q5_K, Q6_K: the two 256-bit halves added give llama.cpp's 8 vec_dot lanes (lane k: values
//                32c + 4k .. 32c + 4k + 3 of every 32-value chunk c).
// Q4_K/Q5_K nibbles: a 64-byte load of qs holds chunks (0, 2) in its low nibbles and (1, 3) in its
// high ones (the next load 4, 6 / 5, 7), which is the order of the rearranged quants.
//
// Several activations share each weight pass: a row's super-block is unpacked once (weights,
// scales, mins) and multiplied with every activation of the call, so a batched product reads the
// weights once. Included inside the VNNI target region of moestream_kernels.c.

typedef struct {
    const int8_t *q;    // quants, natural order
    const int8_t *qr;   // quants, Q4_K/Q5_K nibble order: per super-block chunks 0 2 1 3 4 6 5 7
    const float *d;     // block scales
    const int16_t *bs;  // sums of every 16 quants
    const int16_t *ps;  // sums of every 32 quants
} kq8_t;

#define KQ_MAX_ACTS 64

static inline kq8_t kq8_at(jlong address, int n) {
    const uint8_t *a = (const uint8_t *) (intptr_t) address;
    kq8_t x;
    x.q = (const int8_t *) a;
    x.qr = (const int8_t *) (a + n);
    x.d = (const float *) (a + 2 * (size_t) n);
    x.bs = (const int16_t *) (a + 2 * (size_t) n + 4 * (size_t) (n / 256));
    x.ps = x.bs + n / 16;
    return x;
}

// the 8 six-bit scales and the 8 mins of a Q4_K / Q5_K super-block (get_scale_min_k4), one byte each
static inline void kz_scales_mins(const uint8_t *s, uint64_t *sc, uint64_t *mn) {
    uint32_t u0, u1, u2;
    memcpy(&u0, s, 4);
    memcpy(&u1, s + 4, 4);
    memcpy(&u2, s + 8, 4);
    uint32_t sl = u0 & 0x3f3f3f3fu, sh = (u2 & 0x0f0f0f0fu) | ((u0 >> 6) & 0x03030303u) << 4;
    uint32_t ml = u1 & 0x3f3f3f3fu, mh = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 6) & 0x03030303u) << 4;
    *sc = sl | (uint64_t) sh << 32;
    *mn = ml | (uint64_t) mh << 32;
}

// int32 lanes 0-7 = scale a, 8-15 = scale b, from lanes 0..7 of s (the chunk pairs of one nibble load)
static inline __m512i kz_pair_scales(__m512i s, int a, int b) {
    __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(a)), _mm256_set1_epi32(b), 1);
    return _mm512_permutexvar_epi32(idx, s);
}

static inline float kz_hsum8(__m256 acc) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

static inline __m256i kz_fold(__m512i v) {
    return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

// four int32 sum vectors t[a] and mins products m[a] (4 lanes) -> int32 lanes 0-3: the four totals
// of t, lanes 4-7: those of m
static inline __m256i kz_reduce4(const __m512i t[4], const __m128i m[4]) {
    __m512i u01 = _mm512_add_epi32(_mm512_shuffle_i64x2(t[0], t[1], 0x44), _mm512_shuffle_i64x2(t[0], t[1], 0xEE));
    __m512i u23 = _mm512_add_epi32(_mm512_shuffle_i64x2(t[2], t[3], 0x44), _mm512_shuffle_i64x2(t[2], t[3], 0xEE));
    // 128-bit lane a: t[a]'s partial sums; then [sum, mins, sum, mins] per lane
    __m512i v = _mm512_add_epi32(_mm512_shuffle_i64x2(u01, u23, 0x88), _mm512_shuffle_i64x2(u01, u23, 0xDD));
    __m512i mv = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(m[0]), m[1], 1), m[2], 2), m[3], 3);
    __m512i h = _mm512_add_epi32(_mm512_unpacklo_epi32(v, mv), _mm512_unpackhi_epi32(v, mv));
    h = _mm512_add_epi32(h, _mm512_shuffle_epi32(h, _MM_PERM_BADC));
    return _mm512_castsi512_si256(_mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0), h));
}

// a K-quant super-block's eight 6-bit scales as kz_pair_scales vectors (chunks 0 2 | 1 3 | 4 6 | 5 7,
// the nibble loads' order) and its eight mins as 16-bit lanes
static inline __attribute__((always_inline)) void kz_k_scales(const uint8_t *o, __m512i s4[4], __m128i *mins) {
    uint64_t sc, mn;
    kz_scales_mins(o + 4, &sc, &mn);
    __m512i s = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128((long long) sc));
    s4[0] = kz_pair_scales(s, 0, 2);
    s4[1] = kz_pair_scales(s, 1, 3);
    s4[2] = kz_pair_scales(s, 4, 6);
    s4[3] = kz_pair_scales(s, 5, 7);
    *mins = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long) mn));
}

// the unpacked weights of a Q4_K super-block: 4 x 64 nibbles, the four scale vectors, the 8 mins
typedef struct {
    __m512i w[4], s[4];
    __m128i mins;
} kz_q4k_block;

static inline __attribute__((always_inline)) void kz_q4k_unpack(const uint8_t *o, kz_q4k_block *u) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    kz_k_scales(o, u->s, &u->mins);
    __m512i q0 = _mm512_loadu_si512((const void *) (o + 16));
    __m512i q1 = _mm512_loadu_si512((const void *) (o + 80));
    u->w[0] = _mm512_and_si512(q0, m4);
    u->w[1] = _mm512_and_si512(_mm512_srli_epi16(q0, 4), m4);
    u->w[2] = _mm512_and_si512(q1, m4);
    u->w[3] = _mm512_and_si512(_mm512_srli_epi16(q1, 4), m4);
}

// rows x activations: out[k * rows + i] = row i . xs[k]. Each type's loop: rows outside, super-blocks,
// then the activations, whose float state stays in arrays (one element per activation).
static void kz_q4k(const uint8_t *w, size_t rb, int rows, int blocks, const kq8_t *xs, int n, float *out) {
    float acc[KQ_MAX_ACTS], accm[KQ_MAX_ACTS];
    for (int i = 0; i < rows; i++) {
        const uint8_t *r = w + (size_t) i * rb;
        for (int k = 0; k < n; k++) {
            acc[k] = 0;
            accm[k] = 0;
        }
        for (int b = 0; b < blocks; b++) {
            const uint8_t *o = r + 144 * (size_t) b;
            _mm_prefetch((const char *) o + rb, _MM_HINT_T0);
            kz_q4k_block u;
            kz_q4k_unpack(o, &u);
            const __m512i w0 = u.w[0], w1 = u.w[1], w2 = u.w[2], w3 = u.w[3];
            const __m512i s0 = u.s[0], s1 = u.s[1], s2 = u.s[2], s3 = u.s[3];
            const __m128i mins = u.mins;
            float dw = _cvtsh_ss(load_u16(o)), dmw = _cvtsh_ss(load_u16(o + 2));
            int k = 0;
            for (; k + 4 <= n; k += 4) {
                __m512i t[4];
                __m128i m[4];
#pragma GCC unroll 4
                for (int a = 0; a < 4; a++) {
                    const int8_t *x = xs[k + a].qr + 256 * (size_t) b;
                    const __m512i z = _mm512_setzero_si512();
                    __m512i u = _mm512_dpwssd_epi32(z, _mm512_dpbusd_epi32(z, w0, _mm512_loadu_si512((const void *) x)), s0);
                    u = _mm512_dpwssd_epi32(u, _mm512_dpbusd_epi32(z, w1, _mm512_loadu_si512((const void *) (x + 64))), s1);
                    u = _mm512_dpwssd_epi32(u, _mm512_dpbusd_epi32(z, w2, _mm512_loadu_si512((const void *) (x + 128))), s2);
                    t[a] = _mm512_dpwssd_epi32(u, _mm512_dpbusd_epi32(z, w3, _mm512_loadu_si512((const void *) (x + 192))), s3);
                    m[a] = _mm_madd_epi16(mins, _mm_loadu_si128((const __m128i *) (xs[k + a].ps + 8 * (size_t) b)));
                }
                __m256i p = kz_reduce4(t, m);
                __m128 dx = _mm_setr_ps(xs[k].d[b], xs[k + 1].d[b], xs[k + 2].d[b], xs[k + 3].d[b]);
                _mm_storeu_ps(acc + k, _mm_fmadd_ps(_mm_cvtepi32_ps(_mm256_castsi256_si128(p)),
                        _mm_mul_ps(_mm_set1_ps(dw), dx), _mm_loadu_ps(acc + k)));
                _mm_storeu_ps(accm + k, _mm_fmadd_ps(_mm_cvtepi32_ps(_mm256_extracti128_si256(p, 1)),
                        _mm_mul_ps(_mm_set1_ps(dmw), dx), _mm_loadu_ps(accm + k)));
            }
            for (; k < n; k++) {
                const int8_t *x = xs[k].qr + 256 * (size_t) b;
                const __m512i z = _mm512_setzero_si512();
                __m512i t = _mm512_dpwssd_epi32(z, _mm512_dpbusd_epi32(z, w0, _mm512_loadu_si512((const void *) x)), s0);
                t = _mm512_dpwssd_epi32(t, _mm512_dpbusd_epi32(z, w1, _mm512_loadu_si512((const void *) (x + 64))), s1);
                t = _mm512_dpwssd_epi32(t, _mm512_dpbusd_epi32(z, w2, _mm512_loadu_si512((const void *) (x + 128))), s2);
                t = _mm512_dpwssd_epi32(t, _mm512_dpbusd_epi32(z, w3, _mm512_loadu_si512((const void *) (x + 192))), s3);
                __m256i t8 = kz_fold(t);
                __m128i t4 = _mm_add_epi32(_mm256_castsi256_si128(t8), _mm256_extracti128_si256(t8, 1));
                __m128i m = _mm_madd_epi16(mins, _mm_loadu_si128((const __m128i *) (xs[k].ps + 8 * (size_t) b)));
                __m128i h = _mm_hadd_epi32(t4, m);
                h = _mm_hadd_epi32(h, h);  // isum, imin, isum, imin
                float dx = xs[k].d[b];
                acc[k] = fmaf((float) _mm_cvtsi128_si32(h), dw * dx, acc[k]);
                accm[k] = fmaf((float) _mm_extract_epi32(h, 1), dmw * dx, accm[k]);
            }
        }
        for (int k = 0; k < n; k++) {
            out[(size_t) k * rows + i] = acc[k] - accm[k];
        }
    }
}

static void kz_q5k(const uint8_t *w, size_t rb, int rows, int blocks, const kq8_t *xs, int n, float *out) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i sixteen = _mm512_set1_epi8(16);
    __m256 acc[KQ_MAX_ACTS];
    float summs[KQ_MAX_ACTS];
    // the qh bit of each chunk in the nibble loads' order (chunks 0 2 | 1 3 | 4 6 | 5 7)
    const __m512i bit0 = _mm512_inserti64x4(_mm512_set1_epi8(1), _mm256_set1_epi8(4), 1);
    const __m512i bit1 = _mm512_inserti64x4(_mm512_set1_epi8(2), _mm256_set1_epi8(8), 1);
    const __m512i bit2 = _mm512_inserti64x4(_mm512_set1_epi8(16), _mm256_set1_epi8(64), 1);
    const __m512i bit3 = _mm512_inserti64x4(_mm512_set1_epi8(32), _mm256_set1_epi8((char) 128), 1);
    for (int i = 0; i < rows; i++) {
        const uint8_t *r = w + (size_t) i * rb;
        for (int k = 0; k < n; k++) {
            acc[k] = _mm256_setzero_ps();
            summs[k] = 0;
        }
        for (int b = 0; b < blocks; b++) {
            const uint8_t *o = r + 176 * (size_t) b;
            _mm_prefetch((const char *) o + rb, _MM_HINT_T0);
            __m512i sv[4];
            __m128i mins;
            kz_k_scales(o, sv, &mins);
            const __m512i s0 = sv[0], s1 = sv[1], s2 = sv[2], s3 = sv[3];
            __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *) (o + 16)));
            __m512i q0 = _mm512_loadu_si512((const void *) (o + 48));
            __m512i q1 = _mm512_loadu_si512((const void *) (o + 112));
            __m512i w0 = _mm512_and_si512(q0, m4), w1 = _mm512_and_si512(_mm512_srli_epi16(q0, 4), m4);
            __m512i w2 = _mm512_and_si512(q1, m4), w3 = _mm512_and_si512(_mm512_srli_epi16(q1, 4), m4);
            w0 = _mm512_mask_add_epi8(w0, _mm512_test_epi8_mask(qh, bit0), w0, sixteen);
            w1 = _mm512_mask_add_epi8(w1, _mm512_test_epi8_mask(qh, bit1), w1, sixteen);
            w2 = _mm512_mask_add_epi8(w2, _mm512_test_epi8_mask(qh, bit2), w2, sixteen);
            w3 = _mm512_mask_add_epi8(w3, _mm512_test_epi8_mask(qh, bit3), w3, sixteen);
            float dw = _cvtsh_ss(load_u16(o)), dmw = _cvtsh_ss(load_u16(o + 2));
            for (int k = 0; k < n; k++) {
                const int8_t *x = xs[k].qr + 256 * (size_t) b;
                const __m512i z = _mm512_setzero_si512();
                __m512i t = _mm512_dpwssd_epi32(z, _mm512_dpbusd_epi32(z, w0, _mm512_loadu_si512((const void *) x)), s0);
                t = _mm512_dpwssd_epi32(t, _mm512_dpbusd_epi32(z, w1, _mm512_loadu_si512((const void *) (x + 64))), s1);
                t = _mm512_dpwssd_epi32(t, _mm512_dpbusd_epi32(z, w2, _mm512_loadu_si512((const void *) (x + 128))), s2);
                t = _mm512_dpwssd_epi32(t, _mm512_dpbusd_epi32(z, w3, _mm512_loadu_si512((const void *) (x + 192))), s3);
                __m128i m = _mm_madd_epi16(mins, _mm_loadu_si128((const __m128i *) (xs[k].ps + 8 * (size_t) b)));
                m = _mm_hadd_epi32(m, m);
                m = _mm_hadd_epi32(m, m);
                float dx = xs[k].d[b];
                float dmin = -dx * dmw;
                summs[k] = fmaf(dmin, (float) _mm_cvtsi128_si32(m), summs[k]);
                acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dx * dw), _mm256_cvtepi32_ps(kz_fold(t)), acc[k]);
            }
        }
        for (int k = 0; k < n; k++) {
            out[(size_t) k * rows + i] = kz_hsum8(acc[k]) + summs[k];
        }
    }
}

static void kz_q6k(const uint8_t *w, size_t rb, int rows, int blocks, const kq8_t *xs, int n, float *out) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i m30 = _mm512_set1_epi8(0x30);
    const __m512i low16 = _mm512_set1_epi32(0xFFFF);
    // qh bits 0-1 / 2-3 (values l, l + 32 of a half) to bits 4-5, and bits 4-5 / 6-7 (l + 64, l + 96)
    const __m512i shl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    __m256 acc[KQ_MAX_ACTS];
    for (int i = 0; i < rows; i++) {
        const uint8_t *r = w + (size_t) i * rb;
        for (int k = 0; k < n; k++) {
            acc[k] = _mm256_setzero_ps();
        }
        for (int b = 0; b < blocks; b++) {
            const uint8_t *o = r + 210 * (size_t) b;
            _mm_prefetch((const char *) o + rb, _MM_HINT_T0);
            _mm_prefetch((const char *) o + rb + 64, _MM_HINT_T0);
            __m128i sc8 = _mm_loadu_si128((const __m128i *) (o + 192));
            __m512i s = _mm512_and_si512(_mm512_cvtepi8_epi32(sc8), low16);
            __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
            __m512i sv[4], wv[4];
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m512i ql = _mm512_loadu_si512((const void *) (o + 64 * h));
                __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *) (o + 128 + 32 * h)));
                wv[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(qh, shl), m30));
                wv[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                                _mm512_and_si512(_mm512_srlv_epi16(qh, shr), m30));
            }
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m512i idx = _mm512_set_epi32(4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 2, 4 * c + 2,
                        4 * c + 2, 4 * c + 2, 4 * c + 1, 4 * c + 1, 4 * c + 1, 4 * c + 1, 4 * c, 4 * c, 4 * c, 4 * c);
                sv[c] = _mm512_permutexvar_epi32(idx, s);
            }
            float dw = _cvtsh_ss(load_u16(o + 208));
            for (int k = 0; k < n; k++) {
                const int8_t *x = xs[k].q + 256 * (size_t) b;
                const __m512i z = _mm512_setzero_si512();
                __m512i t = _mm512_dpwssd_epi32(z, _mm512_dpbusd_epi32(z, wv[0], _mm512_loadu_si512((const void *) x)), sv[0]);
                t = _mm512_dpwssd_epi32(t, _mm512_dpbusd_epi32(z, wv[1], _mm512_loadu_si512((const void *) (x + 64))), sv[1]);
                t = _mm512_dpwssd_epi32(t, _mm512_dpbusd_epi32(z, wv[2], _mm512_loadu_si512((const void *) (x + 128))), sv[2]);
                t = _mm512_dpwssd_epi32(t, _mm512_dpbusd_epi32(z, wv[3], _mm512_loadu_si512((const void *) (x + 192))), sv[3]);
                // minus 32 * (bsums[2k] sc[2k] + bsums[2k+1] sc[2k+1]) in lane k: the weights' offset of 32
                __m256i sub = _mm256_slli_epi32(_mm256_madd_epi16(
                        _mm256_loadu_si256((const __m256i *) (xs[k].bs + 16 * (size_t) b)), sc16), 5);
                __m256i lanes = _mm256_sub_epi32(kz_fold(t), sub);
                acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(xs[k].d[b] * dw), _mm256_cvtepi32_ps(lanes), acc[k]);
            }
        }
        for (int k = 0; k < n; k++) {
            out[(size_t) k * rows + i] = kz_hsum8(acc[k]);
        }
    }
}

// Q4_K rows against activations in gemm order (the rows of a prefill that llama.cpp's q4_K_8x8 gemm
// computes: one float step per 64 values, not per super-block), each super-block unpacked once for
// all n activations. The 64-value groups are chunks (0, 1), (2, 3), (4, 5), (6, 7): the halves of
// t[0] + t[1] and of t[2] + t[3] (a nibble load holds chunks 0 and 2 in its low nibbles, 1 and 3 in
// its high ones); the mins' lane p of vpmaddwd is group p's. Per row and activation, group after
// group: acc = fma(isum, d_w d_x, acc), acc_min = fma(imin, dmin_w d_x, acc_min); result acc - acc_min.
static void kz_q4k_gemm(const uint8_t *w, size_t rb, int rows, int blocks, const kq8_t *xs, int n, float *out) {
    float acc[KQ_MAX_ACTS], accm[KQ_MAX_ACTS];
    const __m128i zero4 = _mm_setzero_si128();
    const __m128i mz[4] = {zero4, zero4, zero4, zero4};
    for (int i = 0; i < rows; i++) {
        const uint8_t *r = w + (size_t) i * rb;
        for (int k = 0; k < n; k++) {
            acc[k] = 0;
            accm[k] = 0;
        }
        for (int b = 0; b < blocks; b++) {
            const uint8_t *o = r + 144 * (size_t) b;
            _mm_prefetch((const char *) o + rb, _MM_HINT_T0);
            kz_q4k_block u;
            kz_q4k_unpack(o, &u);
            float dw = _cvtsh_ss(load_u16(o)), dmw = _cvtsh_ss(load_u16(o + 2));
            for (int k = 0; k < n; k++) {
                const int8_t *x = xs[k].qr + 256 * (size_t) b;
                const __m512i z = _mm512_setzero_si512();
                __m512i t0 = _mm512_dpwssd_epi32(z, _mm512_dpbusd_epi32(z, u.w[0], _mm512_loadu_si512((const void *) x)), u.s[0]);
                __m512i t1 = _mm512_dpwssd_epi32(z, _mm512_dpbusd_epi32(z, u.w[1], _mm512_loadu_si512((const void *) (x + 64))), u.s[1]);
                __m512i t2 = _mm512_dpwssd_epi32(z, _mm512_dpbusd_epi32(z, u.w[2], _mm512_loadu_si512((const void *) (x + 128))), u.s[2]);
                __m512i t3 = _mm512_dpwssd_epi32(z, _mm512_dpbusd_epi32(z, u.w[3], _mm512_loadu_si512((const void *) (x + 192))), u.s[3]);
                __m512i g01 = _mm512_add_epi32(t0, t1), g23 = _mm512_add_epi32(t2, t3);
                const __m512i t[4] = {_mm512_maskz_mov_epi32(0x00FF, g01), _mm512_maskz_mov_epi32(0xFF00, g01),
                                      _mm512_maskz_mov_epi32(0x00FF, g23), _mm512_maskz_mov_epi32(0xFF00, g23)};
                int32_t is[8], im[4];
                _mm256_storeu_si256((__m256i *) is, kz_reduce4(t, mz));
                _mm_storeu_si128((__m128i *) im,
                        _mm_madd_epi16(u.mins, _mm_loadu_si128((const __m128i *) (xs[k].ps + 8 * (size_t) b))));
                float dx = xs[k].d[b];
                float dd = dw * dx, dm = dmw * dx;
                float a = acc[k], am = accm[k];
                for (int p = 0; p < 4; p++) {
                    a = fmaf((float) is[p], dd, a);
                    am = fmaf((float) im[p], dm, am);
                }
                acc[k] = a;
                accm[k] = am;
            }
        }
        for (int k = 0; k < n; k++) {
            out[(size_t) k * rows + i] = acc[k] - accm[k];
        }
    }
}

// One activation, four rows per pass in streams (lane j: rows j*S .. j*S + S - 1, S = rows / 4, so
// each runs forward through its own part of the matrix), the four rows' reductions and float steps
// shared; the rows after 4S by kz_q4k.
static void kz_q4k(const uint8_t *w, size_t rb, int rows, int blocks, const kq8_t *xs, int n, float *out);
static void kz_q4k_one(const uint8_t *w, size_t rb, int rows, int blocks, kq8_t x, float *out) {
    const int S = rows / 4;
    const size_t ls = (size_t) S * rb;
    for (int i = 0; i < S; i++) {
        const uint8_t *r0 = w + (size_t) i * rb;
        __m128 acc = _mm_setzero_ps(), accm = _mm_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const int8_t *q = x.qr + 256 * (size_t) b;
            __m512i x0 = _mm512_loadu_si512((const void *) q), x1 = _mm512_loadu_si512((const void *) (q + 64));
            __m512i x2 = _mm512_loadu_si512((const void *) (q + 128)), x3 = _mm512_loadu_si512((const void *) (q + 192));
            __m128i ps = _mm_loadu_si128((const __m128i *) (x.ps + 8 * (size_t) b));
            __m512i t[4];
            __m128i m[4];
            float dw[4], dm[4];
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const uint8_t *o = r0 + j * ls + 144 * (size_t) b;
                _mm_prefetch((const char *) o + rb, _MM_HINT_T0);
                kz_q4k_block u;
                kz_q4k_unpack(o, &u);
                const __m512i z = _mm512_setzero_si512();
                __m512i v = _mm512_dpwssd_epi32(z, _mm512_dpbusd_epi32(z, u.w[0], x0), u.s[0]);
                v = _mm512_dpwssd_epi32(v, _mm512_dpbusd_epi32(z, u.w[1], x1), u.s[1]);
                v = _mm512_dpwssd_epi32(v, _mm512_dpbusd_epi32(z, u.w[2], x2), u.s[2]);
                t[j] = _mm512_dpwssd_epi32(v, _mm512_dpbusd_epi32(z, u.w[3], x3), u.s[3]);
                m[j] = _mm_madd_epi16(u.mins, ps);
                dw[j] = _cvtsh_ss(load_u16(o));
                dm[j] = _cvtsh_ss(load_u16(o + 2));
            }
            __m256i p = kz_reduce4(t, m);
            __m128 dx = _mm_set1_ps(x.d[b]);
            acc = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm256_castsi256_si128(p)), _mm_mul_ps(_mm_loadu_ps(dw), dx), acc);
            accm = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm256_extracti128_si256(p, 1)), _mm_mul_ps(_mm_loadu_ps(dm), dx), accm);
        }
        float v[4];
        _mm_storeu_ps(v, _mm_sub_ps(acc, accm));
        for (int j = 0; j < 4; j++) {
            out[i + j * S] = v[j];
        }
    }
    if (4 * S < rows) {
        kz_q4k(w + (size_t) 4 * S * rb, rb, rows - 4 * S, blocks, &x, 1, out + 4 * S);
    }
}

// Q4_K rows repacked sixteen at a time for the one-activation product (the idea of llama.cpp's
// q4_K_8x8: the rows of a group side by side, scales and mins unpacked once at load). Per group and
// super-block, KQ4_GROUP_BLOCK bytes:
//   [0, 32)       d of rows 0..15 (F16)          [32, 64)   dmin of rows 0..15 (F16)
//   [64, 192)     scale of chunk c, row r at 64 + 16c + r (one byte each; chunk c = values 32c .. 32c + 31)
//   [192, 320)    min of chunk 2q + j, row r at 192 + 32q + 2r + j
//   [320, 2368)   qs: 32 vectors of 64 bytes, vector k holding bytes 4k .. 4k + 3 of each row's qs at 4r
// so one vpdpbusd multiplies four weights of each of the 16 rows with four activation quants
// broadcast from memory. The group is 2.8 % larger than its 16 file blocks.
#define KQ4_GROUP_ROWS 16
#define KQ4_GROUP_BLOCK 2368

// Row r's d, dmin and unpacked scales and mins into bytes [0, 320) of a sixteen-row group (the
// layout above, shared by Q4_K and Q5_K).
static void kz_group_head(const uint8_t *o, int r, uint8_t *e) {
    uint64_t sc, mn;
    kz_scales_mins(o + 4, &sc, &mn);
    memcpy(e + 2 * r, o, 2);
    memcpy(e + 32 + 2 * r, o + 2, 2);
    for (int c = 0; c < 8; c++) {
        e[64 + 16 * c + r] = (uint8_t) (sc >> (8 * c));
        e[192 + 32 * (c / 2) + 2 * r + c % 2] = (uint8_t) (mn >> (8 * c));
    }
}

static void kz_q4k_repack(const uint8_t *w, size_t rb, int groups, int blocks, uint8_t *to) {
    for (int g = 0; g < groups; g++) {
        for (int b = 0; b < blocks; b++) {
            uint8_t *e = to + ((size_t) g * blocks + b) * KQ4_GROUP_BLOCK;
            for (int r = 0; r < KQ4_GROUP_ROWS; r++) {
                const uint8_t *o = w + ((size_t) g * KQ4_GROUP_ROWS + r) * rb + 144 * (size_t) b;
                kz_group_head(o, r, e);
                for (int k = 0; k < 32; k++) {
                    memcpy(e + 320 + 64 * k + 4 * r, o + 16 + 4 * k, 4);
                }
            }
        }
    }
}

static inline __m512i kz_bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// out[16g + r] = row r of group g . x for `groups` repacked groups at w. Per super-block the 32
// vectors give, per chunk pair, the low nibbles' sums (chunk 2p) and the high nibbles' sums times
// 16 (chunk 2p + 1, masked with 0xF0 and never shifted), each times its scale (vpmulld) and added;
// the mins by vpdpwssd of the min pairs with the activation's pairs of 32-value sums. Then each
// lane takes its row's two fma steps (gemv order), exactly as kz_q4k.
static void kz_q4k_groups(const uint8_t *w, int groups, int blocks, kq8_t x, float *out) {
    const __m512i lo = _mm512_set1_epi8(0x0F), hi = _mm512_set1_epi8((char) 0xF0);
    for (int g = 0; g < groups; g++) {
        const uint8_t *base = w + (size_t) g * blocks * KQ4_GROUP_BLOCK;
        __m512 acc = _mm512_setzero_ps(), accm = _mm512_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const uint8_t *e = base + (size_t) b * KQ4_GROUP_BLOCK;
            const int8_t *q = x.q + 256 * (size_t) b;
            __m512i isl = _mm512_setzero_si512(), ish = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                __m512i al = _mm512_setzero_si512(), ah = _mm512_setzero_si512();
                const uint8_t *v = e + 320 + 512 * p;
                _mm_prefetch((const char *) v + 4 * KQ4_GROUP_BLOCK, _MM_HINT_T0);
                _mm_prefetch((const char *) v + 4 * KQ4_GROUP_BLOCK + 64, _MM_HINT_T0);
                _mm_prefetch((const char *) v + 4 * KQ4_GROUP_BLOCK + 128, _MM_HINT_T0);
                _mm_prefetch((const char *) v + 4 * KQ4_GROUP_BLOCK + 192, _MM_HINT_T0);
                _mm_prefetch((const char *) v + 4 * KQ4_GROUP_BLOCK + 256, _MM_HINT_T0);
                _mm_prefetch((const char *) v + 4 * KQ4_GROUP_BLOCK + 320, _MM_HINT_T0);
                _mm_prefetch((const char *) v + 4 * KQ4_GROUP_BLOCK + 384, _MM_HINT_T0);
                _mm_prefetch((const char *) v + 4 * KQ4_GROUP_BLOCK + 448, _MM_HINT_T0);
#pragma GCC unroll 8
                for (int k = 0; k < 8; k++) {
                    __m512i wv = _mm512_loadu_si512((const void *) (v + 64 * k));
                    al = _mm512_dpbusd_epi32(al, _mm512_and_si512(wv, lo), kz_bcast4(q + 64 * p + 4 * k));
                    ah = _mm512_dpbusd_epi32(ah, _mm512_and_si512(wv, hi), kz_bcast4(q + 64 * p + 32 + 4 * k));
                }
                isl = _mm512_add_epi32(isl, _mm512_mullo_epi32(al,
                        _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) (e + 64 + 32 * p)))));
                ish = _mm512_add_epi32(ish, _mm512_mullo_epi32(ah,
                        _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) (e + 80 + 32 * p)))));
            }
            __m512i isum = _mm512_add_epi32(isl, _mm512_srai_epi32(ish, 4));
            __m512i imin = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                imin = _mm512_dpwssd_epi32(imin, _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *) (e + 192 + 32 * p))),
                        kz_bcast4(x.ps + 8 * (size_t) b + 2 * p));
            }
            __m512 dx = _mm512_set1_ps(x.d[b]);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum),
                    _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) e)), dx), acc);
            accm = _mm512_fmadd_ps(_mm512_cvtepi32_ps(imin),
                    _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (e + 32))), dx), accm);
        }
        _mm512_storeu_ps(out + KQ4_GROUP_ROWS * (size_t) g, _mm512_sub_ps(acc, accm));
    }
}

// Q5_K rows repacked sixteen at a time, as Q4_K above with the fifth bits: per group and super-block
// KQ5_GROUP_BLOCK bytes, [0, 320) as for Q4_K, then qh as 8 vectors of 64 bytes (vector m: bytes
// 4m .. 4m + 3 of each row's qh at 4r), then qs as Q4_K's 32 vectors. 2.3 % larger than its 16
// file blocks.
#define KQ5_GROUP_BLOCK 2880

static void kz_q5k_repack(const uint8_t *w, size_t rb, int groups, int blocks, uint8_t *to) {
    for (int g = 0; g < groups; g++) {
        for (int b = 0; b < blocks; b++) {
            uint8_t *e = to + ((size_t) g * blocks + b) * KQ5_GROUP_BLOCK;
            for (int r = 0; r < KQ4_GROUP_ROWS; r++) {
                const uint8_t *o = w + ((size_t) g * KQ4_GROUP_ROWS + r) * rb + 176 * (size_t) b;
                kz_group_head(o, r, e);
                for (int m = 0; m < 8; m++) {
                    memcpy(e + 320 + 64 * m + 4 * r, o + 16 + 4 * m, 4);
                }
                for (int k = 0; k < 32; k++) {
                    memcpy(e + 832 + 64 * k + 4 * r, o + 48 + 4 * k, 4);
                }
            }
        }
    }
}

// out[16g + r] = row r of group g . x for `groups` repacked Q5_K groups at w: llama.cpp's 8 vec_dot
// lanes of each row as 8 vectors of 16 rows (lane k: the four values 32c + 4k .. of every chunk c,
// one vpdpbusd of 16 rows, times the chunk's scale by vpdpwssd), then each row's float steps in
// kz_q5k's order: lane k += (d_x d_w) x lane sum, summs += (-d_x dmin) x mins sum, and at the end
// hsum_float_8 of the lanes plus summs.
static void kz_q5k_groups(const uint8_t *w, int groups, int blocks, kq8_t x, float *out) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), sixteen = _mm512_set1_epi8(16);
    for (int g = 0; g < groups; g++) {
        const uint8_t *base = w + (size_t) g * blocks * KQ5_GROUP_BLOCK;
        __m512 acc[8];
        for (int k = 0; k < 8; k++) {
            acc[k] = _mm512_setzero_ps();
        }
        __m512 summs = _mm512_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const uint8_t *e = base + (size_t) b * KQ5_GROUP_BLOCK;
            const int8_t *q = x.q + 256 * (size_t) b;
            for (int l = 0; l < KQ5_GROUP_BLOCK; l += 64) {
                _mm_prefetch((const char *) e + 3 * KQ5_GROUP_BLOCK + l, _MM_HINT_T0);
            }
            __m512i lane[8];
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                __m512i h = _mm512_loadu_si512((const void *) (e + 320 + 64 * k));
                __m512i t = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int p = 0; p < 4; p++) {
                    const __m512i z = _mm512_setzero_si512();
                    __m512i v = _mm512_loadu_si512((const void *) (e + 832 + 512 * p + 64 * k));
                    __m512i wl = _mm512_and_si512(v, m4), wh = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                    wl = _mm512_mask_add_epi8(wl, _mm512_test_epi8_mask(h, _mm512_set1_epi8((char) (1 << (2 * p)))), wl, sixteen);
                    wh = _mm512_mask_add_epi8(wh, _mm512_test_epi8_mask(h, _mm512_set1_epi8((char) (2 << (2 * p)))), wh, sixteen);
                    t = _mm512_dpwssd_epi32(t, _mm512_dpbusd_epi32(z, wl, kz_bcast4(q + 64 * p + 4 * k)),
                            _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) (e + 64 + 32 * p))));
                    t = _mm512_dpwssd_epi32(t, _mm512_dpbusd_epi32(z, wh, kz_bcast4(q + 64 * p + 32 + 4 * k)),
                            _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *) (e + 80 + 32 * p))));
                }
                lane[k] = t;
            }
            __m512i imin = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                imin = _mm512_dpwssd_epi32(imin, _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *) (e + 192 + 32 * p))),
                        kz_bcast4(x.ps + 8 * (size_t) b + 2 * p));
            }
            float dx = x.d[b];
            __m512 d = _mm512_mul_ps(_mm512_set1_ps(dx), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) e)));
            __m512 dmin = _mm512_mul_ps(_mm512_set1_ps(-dx), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (e + 32))));
            summs = _mm512_fmadd_ps(dmin, _mm512_cvtepi32_ps(imin), summs);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                acc[k] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(lane[k]), acc[k]);
            }
        }
        // hsum_float_8 per row: ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
        __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[4]), _mm512_add_ps(acc[2], acc[6])),
                                 _mm512_add_ps(_mm512_add_ps(acc[1], acc[5]), _mm512_add_ps(acc[3], acc[7])));
        _mm512_storeu_ps(out + KQ4_GROUP_ROWS * (size_t) g, _mm512_add_ps(s, summs));
    }
}

// 1 when type has a kernel here (for activations in gemm order: Q4_K only)
static int kz_rows(int type, int gemm, const uint8_t *w, size_t rb, int rows, int blocks, const kq8_t *xs, int n, float *out) {
    if (gemm) {
        if (type != KQ_Q4_K) {
            return 0;
        }
        kz_q4k_gemm(w, rb, rows, blocks, xs, n, out);
        return 1;
    }
    switch (type) {
    case KQ_Q4_K:
        if (n == 1) {
            kz_q4k_one(w, rb, rows, blocks, xs[0], out);
        } else {
            kz_q4k(w, rb, rows, blocks, xs, n, out);
        }
        return 1;
    case KQ_Q5_K: kz_q5k(w, rb, rows, blocks, xs, n, out); return 1;
    case KQ_Q6_K: kz_q6k(w, rb, rows, blocks, xs, n, out); return 1;
    default: return 0;
    }
}
