// Attention over float32 key/value blocks for one query's group of heads (AVX-512 level), included
// by moestream_kernels.c inside its VNNI target section. Bit for bit the Java steps of
// Kernels.attendF32 (CompressedAttention's float32 path), which are llama.cpp's CPU attention
// without flash attention:
//   scores   ggml_vec_dot_f32: 4 x 16 fma lanes over steps of 64, (a0 + a2) + (a1 + a3), then the
//            16-lane tree of _mm512_reduce_add_ps; times scale
//   softmax  ggml's vector expf of score - max (Java's Math.max over the visible scores), summed per
//            16 positions into a double, each times (float) (1 / sum); masked positions 0
//   values   lane t % lanes (64 or 16) accumulates its positions in order, one fma each, the lanes
//            then folded as CpuMath.reduceLanes does
// Head sizes are a multiple of 64 (the caller checks), so no dot has a scalar tail.

#define ATT_MAX_HEADS 8
// floats between two heads' lane rows in the value-sum buffer: 64 rows of 16, plus one row so that
// the four heads' rows are not 4 KiB apart (a load would wait on the stores to the other heads' rows)
#define ATT_HEAD_STRIDE (64 * 16 + 16)

// CpuMath.reduce16: t_k = a[k + 8] + a[k], u_k = t[k + 4] + t[k], (u0 + u2) + (u1 + u3)
static inline float att_reduce16(__m512 v) {
    __m256 t = _mm256_add_ps(_mm512_extractf32x8_ps(v, 1), _mm512_castps512_ps256(v));
    __m128 u = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
    __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u));
    return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}

// Java's Math.max over the visible scores att[0, a) and att[b, len) in order, as far as softmax can
// tell: the largest score, or NaN if any score is NaN (a -0 / +0 choice does not change x - max's
// exponent), without a branch per position
static float att_max(const float *att, int len, int a, int b) {
    __m512 m = _mm512_set1_ps(-__builtin_inff());
    __mmask16 nan = 0;
    for (int r = 0; r < 2; r++) {
        int from = r == 0 ? 0 : b;
        int to = r == 0 ? a : len;
        int t = from;
        for (; t + 16 <= to; t += 16) {
            __m512 x = _mm512_loadu_ps(att + t);
            nan |= _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
            m = _mm512_max_ps(m, x);
        }
        if (t < to) {
            __mmask16 k = (__mmask16) ((1u << (to - t)) - 1);
            __m512 x = _mm512_mask_loadu_ps(_mm512_set1_ps(-__builtin_inff()), k, att + t);
            nan |= _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
            m = _mm512_max_ps(m, x);
        }
    }
    return nan ? __builtin_nanf("") : _mm512_reduce_max_ps(m);
}

// CpuMath.vexp (ggml's ggml_v_expf, one lane)
static float att_vexp(float x) {
    const float r = 0x1.8p23f;
    float z = fmaf(x, 0x1.715476p+0f, r);
    float n = z - r;
    float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    if (!(fabsf(n) <= 192)) {
        return n <= 0 ? 0.0f : __builtin_inff();
    }
    float u = b * b;
    float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                   fmaf(0x1.ffffecp-1f, b, 1.0f));
    return scalbnf(j, (int) n);
}

// Kernels.maskedSoftmax; att holds len rounded up to 16 floats
static void att_softmax(float *att, int len, int a, int b, float max) {
    const int padded = (len + 15) & ~15;
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 mx = _mm512_set1_ps(max);
    double sum = 0;
    for (int c = 0; c < padded; c += 16) {
        if (c + 16 <= len && (c + 16 <= a || c >= b)) {
            __m512 x = _mm512_sub_ps(_mm512_loadu_ps(att + c), mx);
            __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
            __m512 n = _mm512_sub_ps(z, r);
            // all |n| <= 125 (false for NaN): 2^n goes into the exponent field exactly
            if (_mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(125.0f), _CMP_LE_OQ) == 0xFFFF) {
                __m512 neg = _mm512_sub_ps(_mm512_setzero_ps(), n);
                __m512 bb = _mm512_fmadd_ps(neg, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                            _mm512_fmadd_ps(neg, _mm512_set1_ps(0x1.62e4p-1f), x));
                __m512 sq = _mm512_mul_ps(bb, bb);
                __m512 hi = _mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), bb, _mm512_set1_ps(0x1.573e2ep-5f));
                __m512 mid = _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), bb, _mm512_set1_ps(0x1.fffdb6p-2f));
                __m512 lo = _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), bb, _mm512_set1_ps(1.0f));
                __m512 j = _mm512_fmadd_ps(_mm512_fmadd_ps(hi, sq, mid), sq, lo);
                __m512i scale = _mm512_slli_epi32(_mm512_castps_si512(z), 23);
                __m512 e = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(j), scale));
                _mm512_storeu_ps(att + c, e);
                sum += att_reduce16(e);
                continue;
            }
        }
        for (int t = c; t < c + 16; t++) {
            att[t] = t < len && (t < a || t >= b) ? att_vexp(att[t] - max) : 0.0f;
        }
        sum += att_reduce16(_mm512_loadu_ps(att + c));
    }
    const float inv = (float) (1.0 / sum);
    for (int t = 0; t < len; t++) {
        att[t] *= inv;
    }
}

// CpuMath.reduceLanes for 16 output values: lane rows L (16 floats each) of buf, 64 or 16 of them
static inline __m512 att_fold(const float *buf, int lanes) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int k = 0; k < 16; k++) {
        r[k] = _mm512_load_ps(buf + 16 * k);
        if (lanes == 64) {
            r[k] = _mm512_add_ps(_mm512_add_ps(r[k], _mm512_load_ps(buf + 16 * (32 + k))),
                                 _mm512_add_ps(_mm512_load_ps(buf + 16 * (16 + k)), _mm512_load_ps(buf + 16 * (48 + k))));
        }
    }
    __m512 t0 = _mm512_add_ps(_mm512_add_ps(r[0], r[8]), _mm512_add_ps(r[4], r[12]));
    __m512 t1 = _mm512_add_ps(_mm512_add_ps(r[1], r[9]), _mm512_add_ps(r[5], r[13]));
    __m512 t2 = _mm512_add_ps(_mm512_add_ps(r[2], r[10]), _mm512_add_ps(r[6], r[14]));
    __m512 t3 = _mm512_add_ps(_mm512_add_ps(r[3], r[11]), _mm512_add_ps(r[7], r[15]));
    return _mm512_add_ps(_mm512_add_ps(t0, t2), _mm512_add_ps(t1, t3));
}

// the scores of the position whose keys are at kt for the four heads whose queries are at q0 .. q3,
// in lanes 0 .. 3
static inline __m128 att_scores4(const float *kt, int hd, const float *q0, const float *q1, const float *q2,
                                 const float *q3, float scale) {
    __m512 a[4][4];
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            a[g][j] = _mm512_setzero_ps();
        }
    }
    const float *qs[4] = {q0, q1, q2, q3};
    for (int i = 0; i < hd; i += 64) {
        __m512 k0 = _mm512_loadu_ps(kt + i), k1 = _mm512_loadu_ps(kt + i + 16), k2 = _mm512_loadu_ps(kt + i + 32),
               k3 = _mm512_loadu_ps(kt + i + 48);
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            a[g][0] = _mm512_fmadd_ps(k0, _mm512_loadu_ps(qs[g] + i), a[g][0]);
            a[g][1] = _mm512_fmadd_ps(k1, _mm512_loadu_ps(qs[g] + i + 16), a[g][1]);
            a[g][2] = _mm512_fmadd_ps(k2, _mm512_loadu_ps(qs[g] + i + 32), a[g][2]);
            a[g][3] = _mm512_fmadd_ps(k3, _mm512_loadu_ps(qs[g] + i + 48), a[g][3]);
        }
    }
    float s[4];
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        s[g] = att_reduce16(_mm512_add_ps(_mm512_add_ps(a[g][0], a[g][2]), _mm512_add_ps(a[g][1], a[g][3]))) * scale;
    }
    return _mm_set_ps(s[3], s[2], s[1], s[0]);
}

// the value sums of four heads (probabilities p0 .. p3) for output values c .. c + 15, lane rows in
// buf (head g's at g * ATT_HEAD_STRIDE): lane L accumulates positions L, L + lanes, ... (visible
// ones) in registers from +0, then is stored once
static inline void att_values4(const float *const *v, int bt, int hd, int len, int a, int b, int c, const float *p0,
                               const float *p1, const float *p2, const float *p3, int lanes, float *buf) {
    const size_t hs = ATT_HEAD_STRIDE;
    for (int lane = 0; lane < lanes; lane++) {
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (int t = lane; t < len; t += lanes) {
            if (t >= a && t < b) {
                continue;
            }
            __m512 vt = _mm512_loadu_ps(v[t / bt] + (size_t) (t % bt) * hd + c);
            acc0 = _mm512_fmadd_ps(vt, _mm512_set1_ps(p0[t]), acc0);
            acc1 = _mm512_fmadd_ps(vt, _mm512_set1_ps(p1[t]), acc1);
            acc2 = _mm512_fmadd_ps(vt, _mm512_set1_ps(p2[t]), acc2);
            acc3 = _mm512_fmadd_ps(vt, _mm512_set1_ps(p3[t]), acc3);
        }
        float *row = buf + 16 * lane;
        _mm512_store_ps(row, acc0);
        _mm512_store_ps(row + hs, acc1);
        _mm512_store_ps(row + 2 * hs, acc2);
        _mm512_store_ps(row + 3 * hs, acc3);
    }
}

// k[i] / v[i]: block i's (bt positions x hd) keys / values, NULL for blocks nothing visible falls in;
// att[g]: head g's scores, then probabilities (len rounded up to 16); q: the heads' queries one after
// another; out: their outputs likewise. Visible: positions [0, a) and [b, len). Heads go in fours
// (a last group of fewer repeats its first head in the spare places, whose results are not kept).
static void attend_f32(const float *const *k, const float *const *v, int bt, int hd, int len, int a, int b,
                       const float *q, int heads, float scale, float *const *att, int lanes, float *out) {
    float buf[4 * ATT_HEAD_STRIDE] __attribute__((aligned(64)));
    for (int g0 = 0; g0 < heads; g0 += 4) {
        const int n = heads - g0 < 4 ? heads - g0 : 4;
        int h[4];
        for (int j = 0; j < 4; j++) {
            h[j] = g0 + (j < n ? j : 0);
        }
        for (int t = 0; t < len; t++) {
            if (t >= a && t < b) {
                continue;
            }
            __m128 s = att_scores4(k[t / bt] + (size_t) (t % bt) * hd, hd, q + (size_t) h[0] * hd,
                                   q + (size_t) h[1] * hd, q + (size_t) h[2] * hd, q + (size_t) h[3] * hd, scale);
            float s0 = _mm_cvtss_f32(s), s1 = _mm_cvtss_f32(_mm_shuffle_ps(s, s, 1)),
                  s2 = _mm_cvtss_f32(_mm_shuffle_ps(s, s, 2)), s3 = _mm_cvtss_f32(_mm_shuffle_ps(s, s, 3));
            // spare places repeat head h[0]: storing their (equal) scores again is harmless
            att[h[3]][t] = s3;
            att[h[2]][t] = s2;
            att[h[1]][t] = s1;
            att[h[0]][t] = s0;
        }
        for (int j = 0; j < n; j++) {
            att_softmax(att[h[j]], len, a, b, att_max(att[h[j]], len, a, b));
        }
        for (int c = 0; c < hd; c += 16) {
            att_values4(v, bt, hd, len, a, b, c, att[h[0]], att[h[1]], att[h[2]], att[h[3]], lanes, buf);
            for (int j = 0; j < n; j++) {
                _mm512_storeu_ps(out + (size_t) h[j] * hd + c, att_fold(buf + (size_t) j * ATT_HEAD_STRIDE, lanes));
            }
        }
    }
}
