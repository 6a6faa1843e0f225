// K-quant rows (Q2_K..Q6_K against a Q8_K activation; Q5_0, IQ4_NL, MXFP4 against Q8_0) for
// io.moestream.runtime.kernel.NativeKQuant,
// bit for bit KQuantKernels (Java): each 32-value chunk of weights is unpacked to unsigned bytes in a
// register, multiplied with the int8 activation quants (vpmaddubsw) and its four-value sums scaled
// (vpmaddwd) into 8 exact int32 lanes; the float steps follow llama.cpp's order as documented in
// KQuantKernels:
//   Q3_K/Q5_K/Q6_K: 8 lanes (lane k = four-sums 8c + k of every chunk c, times their scale),
//                   acc_k = fma(d, lane_k, acc_k) per block, hsum_float_8 (+ Q5_K's summs);
//   Q4_K/Q2_K:      acc = fma(isum, d_w * d_x, acc), acc_min likewise, per block (gemv) or per
//                   64 / 128 values (gemm); acc - acc_min.
// Included by moestream_kernels.c inside its AVX2+FMA+F16C target region; fmaf is one vfmadd there.

enum { KQ_Q5_0 = 6, KQ_Q2_K = 10, KQ_Q3_K = 11, KQ_Q4_K = 12, KQ_Q5_K = 13, KQ_Q6_K = 14, KQ_IQ4_NL = 20, KQ_MXFP4 = 39 };

static inline float kq_half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// lanes += the scale-weighted sums of four consecutive products of 32 weights w (uint8, < 64)
// with 32 activation quants x (int8): int32 lane k covers values 4k .. 4k+3, which share a scale
// (s_lo for values 0..15, s_hi for 16..31)
static inline __m256i kq_chunk(__m256i lanes, __m256i w, __m256i x, int s_lo, int s_hi) {
    __m256i pairs = _mm256_maddubs_epi16(w, x);
    __m256i sc = _mm256_setr_epi16(s_lo, s_lo, s_lo, s_lo, s_lo, s_lo, s_lo, s_lo,
                                   s_hi, s_hi, s_hi, s_hi, s_hi, s_hi, s_hi, s_hi);
    return _mm256_add_epi32(lanes, _mm256_madd_epi16(pairs, sc));
}

static inline int kq_isum(__m256i p) {
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    return _mm_cvtsi128_si32(h);
}

static inline __m256i kq_load(const void *p) {
    return _mm256_loadu_si256((const __m256i *) p);
}

// the 32 unsigned weights of chunk c (values 32c .. 32c+31) of the block at r; Q3_K as value + 4
static inline __m256i kq_weights(int type, const uint8_t *r, int c) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    switch (type) {
    case KQ_Q6_K: {
        int h = c >> 2, part = c & 3;
        __m256i ql = kq_load(r + 64 * h + 32 * (part & 1));
        __m256i qh = kq_load(r + 128 + 32 * h);
        __m256i low = part < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
        __m256i high;
        switch (part) {
        case 0: high = _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4); break;
        case 1: high = _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0C)), 2); break;
        case 2: high = _mm256_and_si256(qh, _mm256_set1_epi8(0x30)); break;
        default: high = _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8((char) 0xC0)), 2); break;
        }
        return _mm256_or_si256(low, high);
    }
    case KQ_Q5_K:
    case KQ_Q4_K: {
        __m256i qs = kq_load(r + (type == KQ_Q5_K ? 48 : 16) + 32 * (c >> 1));
        __m256i w = (c & 1) == 0 ? _mm256_and_si256(qs, m4) : _mm256_and_si256(_mm256_srli_epi16(qs, 4), m4);
        if (type == KQ_Q5_K) {
            __m256i bit = _mm256_set1_epi8((char) (1 << c));
            __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(kq_load(r + 16), bit), bit);
            w = _mm256_or_si256(w, _mm256_and_si256(set, _mm256_set1_epi8(16)));
        }
        return w;
    }
    case KQ_Q3_K: {
        int n = c >> 2, j = c & 3;
        __m256i low = _mm256_and_si256(_mm256_srli_epi16(kq_load(r + 32 + 32 * n), 2 * j), _mm256_set1_epi8(3));
        __m256i bit = _mm256_set1_epi8((char) (1 << (4 * n + j)));
        __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(kq_load(r), bit), bit);
        return _mm256_or_si256(low, _mm256_and_si256(set, _mm256_set1_epi8(4)));
    }
    default: { // Q2_K
        int n = c >> 2, j = c & 3;
        return _mm256_and_si256(_mm256_srli_epi16(kq_load(r + 16 + 32 * n), 2 * j), _mm256_set1_epi8(3));
    }
    }
}

static inline int kq_scale_min_k4(const uint8_t *s, int j, int which) {
    if (j < 4) {
        return s[j + 4 * which] & 63;
    }
    int hi = s[j + 4];
    int lo = s[j - 4 + 4 * which];
    return which == 0 ? (hi & 0xF) | ((lo >> 6) << 4) : (hi >> 4) | ((lo >> 6) << 4);
}

static inline int kq_scale_q3k(const uint8_t *s, int i) {
    int lo = i < 8 ? s[i] & 0xF : s[i - 8] >> 4;
    int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    return (lo | hi << 4) - 32;
}

// Q3_K, Q5_K, Q6_K: llama.cpp's vec_dot lanes
static float kq_dot_lanes(int type, const uint8_t *r, int blocks, const int8_t *q, const float *kd, const int32_t *bsums) {
    int bb = type == KQ_Q6_K ? 210 : type == KQ_Q5_K ? 176 : 110;
    int sc[16];
    int32_t sub[8];
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int b = 0; b < blocks; b++) {
        const uint8_t *o = r + (size_t) b * bb;
        const int32_t *bs = bsums + 16 * b;
        const int8_t *x = q + 256 * b;
        float d;
        int offset = 0;
        if (type == KQ_Q6_K) {
            d = kd[b] * kq_half(o + 208);
            for (int i = 0; i < 16; i++) {
                sc[i] = (int8_t) o[192 + i];
            }
            offset = 32;
        } else if (type == KQ_Q5_K) {
            d = kd[b] * kq_half(o);
            float dmin = -kd[b] * kq_half(o + 2);
            int mins = 0;
            for (int j = 0; j < 8; j++) {
                int s = kq_scale_min_k4(o + 4, j, 0);
                sc[2 * j] = s;
                sc[2 * j + 1] = s;
                mins += kq_scale_min_k4(o + 4, j, 1) * (bs[2 * j] + bs[2 * j + 1]);
            }
            summs = fmaf(dmin, (float) mins, summs);
        } else {
            d = kd[b] * kq_half(o + 108);
            for (int i = 0; i < 16; i++) {
                sc[i] = kq_scale_q3k(o + 96, i);
            }
            offset = 4; // Q3_K's weights came as value + 4
        }
        __m256i lanes = _mm256_setzero_si256();
        __m256i four = _mm256_setzero_si256(); // Q3_K: the 4 of every weight it was not set for
        for (int c = 0; c < 8; c++) {
            __m256i xv = kq_load(x + 32 * c);
            lanes = kq_chunk(lanes, kq_weights(type, o, c), xv, sc[2 * c], sc[2 * c + 1]);
            if (type == KQ_Q3_K) {
                four = kq_chunk(four, _mm256_set1_epi8(1), xv, sc[2 * c], sc[2 * c + 1]);
            }
        }
        if (type == KQ_Q6_K) {
            for (int k = 0; k < 8; k++) {
                sub[k] = offset * (bs[2 * k] * sc[2 * k] + bs[2 * k + 1] * sc[2 * k + 1]);
            }
            lanes = _mm256_sub_epi32(lanes, kq_load(sub));
        } else if (type == KQ_Q3_K) {
            lanes = _mm256_sub_epi32(lanes, _mm256_slli_epi32(four, 2));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), acc);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float sum = _mm_cvtss_f32(h);
    return type == KQ_Q5_K ? sum + summs : sum;
}

// Q4_K, Q2_K: the repacked kernels' two accumulators
static float kq_dot_mins(int type, const uint8_t *r, int blocks, int gemm, const int8_t *q, const float *kd,
        const int32_t *bsums) {
    int q4 = type == KQ_Q4_K;
    int bb = q4 ? 144 : 84;
    int step = gemm ? (q4 ? 2 : 4) : 8; // 32-value chunks per float step
    int sc[16];
    int mn[16];
    float acc = 0, acc_min = 0;
    for (int b = 0; b < blocks; b++) {
        const uint8_t *o = r + (size_t) b * bb;
        const int32_t *bs = bsums + 16 * b;
        const int8_t *x = q + 256 * b;
        float dd = kq_half(q4 ? o : o + 80) * kd[b];
        float dm = kq_half(q4 ? o + 2 : o + 82) * kd[b];
        if (q4) {
            for (int j = 0; j < 8; j++) {
                sc[2 * j] = sc[2 * j + 1] = kq_scale_min_k4(o + 4, j, 0);
                mn[2 * j] = kq_scale_min_k4(o + 4, j, 1);
                mn[2 * j + 1] = mn[2 * j];
            }
        } else {
            for (int i = 0; i < 16; i++) {
                sc[i] = o[i] & 0xF;
                mn[i] = o[i] >> 4;
            }
        }
        for (int g = 0; g < 8; g += step) {
            __m256i lanes = _mm256_setzero_si256();
            int imin = 0;
            for (int c = g; c < g + step; c++) {
                lanes = kq_chunk(lanes, kq_weights(type, o, c), kq_load(x + 32 * c), sc[2 * c], sc[2 * c + 1]);
                imin += mn[2 * c] * bs[2 * c] + mn[2 * c + 1] * bs[2 * c + 1];
            }
            acc = fmaf((float) kq_isum(lanes), dd, acc);
            acc_min = fmaf((float) imin, dm, acc_min);
        }
    }
    return acc - acc_min;
}

// The 32 signed weights of a Q5_0 / IQ4_NL / MXFP4 block (values 0..15 from the low nibbles, 16..31
// from the high ones)
static inline __m256i kq_weights32(int type, const uint8_t *o) {
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const uint8_t *qs = o + (type == KQ_Q5_0 ? 6 : type == KQ_MXFP4 ? 1 : 2);
    __m128i raw = _mm_loadu_si128((const __m128i *) qs);
    __m256i nib = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4));
    if (type == KQ_Q5_0) {
        uint32_t h;
        memcpy(&h, o + 2, 4);
        // byte j of the spread holds byte j / 8 of h; its bit j % 8 is the fifth bit of value j
        __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int) h),
                _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
        __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
        __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
        __m256i w = _mm256_or_si256(nib, _mm256_and_si256(set, _mm256_set1_epi8(16)));
        return _mm256_sub_epi8(w, _mm256_set1_epi8(16));
    }
    static const int8_t iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    static const int8_t mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    __m128i lut = _mm_loadu_si128((const __m128i *) (type == KQ_MXFP4 ? mxfp4 : iq4nl));
    return _mm256_shuffle_epi8(_mm256_set_m128i(lut, lut), nib);
}

// 8 int32 lanes, lane j = the sum of the products of values 4j .. 4j+3 (signed w and x)
static inline __m256i kq_quads32(__m256i w, __m256i x) {
    __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// Q5_0 (Q8_0's eight lanes, hsum_float_8) and IQ4_NL / MXFP4 (acc = fma(isum, d_w * d_x, acc)) against Q8_0 quants
static float kq_dot32(int type, const uint8_t *r, int blocks, const int8_t *q, const float *d) {
    int bb = type == KQ_Q5_0 ? 22 : type == KQ_MXFP4 ? 17 : 18;
    __m256 lanes = _mm256_setzero_ps();
    float acc = 0;
    for (int b = 0; b < blocks; b++) {
        const uint8_t *o = r + (size_t) b * bb;
        __m256i p = kq_quads32(kq_weights32(type, o), kq_load(q + 32 * b));
        if (type == KQ_Q5_0) {
            lanes = _mm256_fmadd_ps(_mm256_set1_ps(kq_half(o) * d[b]), _mm256_cvtepi32_ps(p), lanes);
        } else {
            float dw;
            if (type == KQ_MXFP4) {
                uint32_t bits = o[0] < 2 ? 0x00200000u << o[0] : (uint32_t) (o[0] - 1) << 23;
                memcpy(&dw, &bits, 4);
            } else {
                dw = kq_half(o);
            }
            acc = fmaf((float) kq_isum(p), dw * d[b], acc);
        }
    }
    if (type != KQ_Q5_0) {
        return acc;
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(lanes), _mm256_extractf128_ps(lanes, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

// out[outIndex + i] = row i . x for `rows` rows of `type` (rowBytes apart) at w + off; kd is the
// activation's Q8_K scales (K-quants) or Q8_0 scales (Q5_0, IQ4_NL, MXFP4), `blocks` of 256 or 32 values
JNIEXPORT void JNICALL Java_io_moestream_runtime_kernel_NativeKQuant_rows(JNIEnv *env, jclass cls, jint type,
        jobject buffer, jlong off, jint rowBytes, jint rows, jint blocks, jint gemm, jshortArray q, jfloatArray kd,
        jintArray bsums, jfloatArray out, jint outIndex) {
    (void) cls;
    const uint8_t *w = (const uint8_t *) (*env)->GetDirectBufferAddress(env, buffer) + off;
    int16_t *qq = (*env)->GetPrimitiveArrayCritical(env, q, NULL);
    float *dd = (*env)->GetPrimitiveArrayCritical(env, kd, NULL);
    int32_t *bs = (*env)->GetPrimitiveArrayCritical(env, bsums, NULL);
    float *o = (*env)->GetPrimitiveArrayCritical(env, out, NULL);
    int8_t *x8 = NULL;
    int small = type == KQ_Q5_0 || type == KQ_IQ4_NL || type == KQ_MXFP4;
    int n = blocks * (small ? 32 : 256);
    if (qq != NULL && dd != NULL && (small || bs != NULL) && o != NULL && (x8 = malloc((size_t) n)) != NULL) {
        for (int i = 0; i < n; i++) {
            x8[i] = (int8_t) qq[i]; // Q8_K and Q8_0 quants are within [-127, 127]
        }
        for (int i = 0; i < rows; i++) {
            const uint8_t *r = w + (size_t) i * rowBytes;
            o[outIndex + i] = small ? kq_dot32(type, r, blocks, x8, dd)
                    : type == KQ_Q4_K || type == KQ_Q2_K ? kq_dot_mins(type, r, blocks, gemm, x8, dd, bs)
                    : kq_dot_lanes(type, r, blocks, x8, dd, bs);
        }
    }
    free(x8);
    if (o != NULL) (*env)->ReleasePrimitiveArrayCritical(env, out, o, 0);
    if (bs != NULL) (*env)->ReleasePrimitiveArrayCritical(env, bsums, bs, JNI_ABORT);
    if (dd != NULL) (*env)->ReleasePrimitiveArrayCritical(env, kd, dd, JNI_ABORT);
    if (qq != NULL) (*env)->ReleasePrimitiveArrayCritical(env, q, qq, JNI_ABORT);
}
