// Kernel bodies, included once per instruction set by moestream_kernels.c with SUFFIX (name
// suffix) and DOT4(unsigned, signed) (8 int32 lanes, lane j = sum of the 4 byte products 4j..4j+3)
// defined. See moestream_kernels.c for the numerics. The batched kernels (WITH_BATCH) are only
// built for AVX2: with AVX-512 the packed ones of kernels_zmm.h run instead.
#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, SUFFIX)

static inline float FN(half)(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// llama.cpp's hsum_float_8: ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))
static inline float FN(hsum8)(__m256 acc) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

// lane k = sum of the 8 lanes of p[k] (integers: exact in any order)
static inline __m256i FN(reduce8)(const __m256i p[8]) {
    __m256i t0 = _mm256_hadd_epi32(p[0], p[1]);
    __m256i t1 = _mm256_hadd_epi32(p[2], p[3]);
    __m256i t2 = _mm256_hadd_epi32(p[4], p[5]);
    __m256i t3 = _mm256_hadd_epi32(p[6], p[7]);
    __m256i u0 = _mm256_hadd_epi32(t0, t1);
    __m256i u1 = _mm256_hadd_epi32(t2, t3);
    return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

static inline int FN(isum8)(__m256i p) {
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    return _mm_cvtsi128_si32(h);
}

// Q4_0 quants of one block as signed bytes in natural order: low nibbles then high nibbles, minus 8
static inline __m256i FN(q4_weights)(const uint8_t *block) {
    __m128i qs = _mm_loadu_si128((const __m128i *) (block + 2));
    __m128i mask = _mm_set1_epi8(0x0F);
    __m256i v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(qs, 4), mask), _mm_and_si128(qs, mask));
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

// the 8 int32 lane sums of signed weight bytes wq times signed activation bytes at y
static inline __m256i FN(products)(__m256i wq, __m256i abs_w, const int8_t *y) {
    __m256i sy = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *) y), wq);
    return DOT4(abs_w, sy);
}

static inline __m256 FN(q8_block)(const uint8_t *block, const int8_t *y, float dx, __m256 acc) {
    __m256i wq = _mm256_loadu_si256((const __m256i *) (block + 2));
    __m256i s = FN(products)(wq, _mm256_sign_epi8(wq, wq), y);
    return _mm256_fmadd_ps(_mm256_set1_ps(FN(half)(block) * dx), _mm256_cvtepi32_ps(s), acc);
}

// Four streams: lane j reads rows j*S .. j*S + S - 1 (S = rows / 4) in order, so each stream runs
// forward through its own part of the matrix and the hardware prefetcher follows it (rows r .. r+3
// side by side read ~25 % slower from memory); the rows after 4S one at a time.
static void FN(q8_rows)(const uint8_t *w, int row_bytes, int rows, int blocks, act_t x, float *out) {
    const size_t rb = (size_t) row_bytes;
    const int S = rows / 4;
    const size_t ls = (size_t) S * rb;
    for (int i = 0; i < S; i++) {
        const uint8_t *base = w + (size_t) i * rb;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
               acc3 = _mm256_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const uint8_t *blk = base + 34 * b;
            const int8_t *y = x.q + 32 * b;
            float dx = x.d[b];
            // each stream's next row (never faults)
            _mm_prefetch((const char *) blk + rb, _MM_HINT_T0);
            _mm_prefetch((const char *) blk + ls + rb, _MM_HINT_T0);
            _mm_prefetch((const char *) blk + 2 * ls + rb, _MM_HINT_T0);
            _mm_prefetch((const char *) blk + 3 * ls + rb, _MM_HINT_T0);
            acc0 = FN(q8_block)(blk, y, dx, acc0);
            acc1 = FN(q8_block)(blk + ls, y, dx, acc1);
            acc2 = FN(q8_block)(blk + 2 * ls, y, dx, acc2);
            acc3 = FN(q8_block)(blk + 3 * ls, y, dx, acc3);
        }
        out[i] = FN(hsum8)(acc0);
        out[i + S] = FN(hsum8)(acc1);
        out[i + 2 * S] = FN(hsum8)(acc2);
        out[i + 3 * S] = FN(hsum8)(acc3);
    }
    int r = 4 * S;
    for (; r < rows; r++) {
        const uint8_t *base = w + (size_t) r * row_bytes;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            acc = FN(q8_block)(base + 34 * b, x.q + 32 * b, x.d[b], acc);
        }
        out[r] = FN(hsum8)(acc);
    }
}

static void FN(q4_rows)(const uint8_t *w, int row_bytes, int rows, int blocks, act_t x, float *out) {
    int r = 0;
    for (; r + 8 <= rows; r += 8) {
        const uint8_t *base = w + (size_t) r * row_bytes;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const int8_t *y = x.q + 32 * b;
            float dx = x.d[b];
            __m256i p[8];
            float d[8];
            for (int i = 0; i < 8; i++) {
                const uint8_t *blk = base + (size_t) i * row_bytes + 18 * b;
                if (r + 16 <= rows) {
                    _mm_prefetch((const char *) blk + 8 * (size_t) row_bytes, _MM_HINT_T0);
                }
                __m256i wq = FN(q4_weights)(blk);
                p[i] = FN(products)(wq, _mm256_sign_epi8(wq, wq), y);
                d[i] = FN(half)(blk) * dx;
            }
            __m256 isum = _mm256_cvtepi32_ps(FN(reduce8)(p));
            acc = _mm256_fmadd_ps(isum, _mm256_loadu_ps(d), acc);
        }
        _mm256_storeu_ps(out + r, acc);
    }
    for (; r < rows; r++) {
        const uint8_t *base = w + (size_t) r * row_bytes;
        __m128 acc = _mm_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const uint8_t *blk = base + 18 * b;
            __m256i wq = FN(q4_weights)(blk);
            int isum = FN(isum8)(FN(products)(wq, _mm256_sign_epi8(wq, wq), x.q + 32 * b));
            acc = _mm_fmadd_ss(_mm_set_ss((float) isum), _mm_set_ss(FN(half)(blk) * x.d[b]), acc);
        }
        out[r] = _mm_cvtss_f32(acc);
    }
}

#if WITH_BATCH
// one row against kt (<= 8) activations; out[k * stride] = row . x[k]
static inline __attribute__((always_inline)) void FN(q8_tile)(const uint8_t *row, const uint8_t *next, int blocks,
        const act_t *x, int kt, float *out, int stride) {
    __m256 acc[8];
    for (int k = 0; k < kt; k++) {
        acc[k] = _mm256_setzero_ps();
    }
    for (int b = 0; b < blocks; b++) {
        const uint8_t *blk = row + 34 * b;
        if (next) {
            _mm_prefetch((const char *) next + 34 * b, _MM_HINT_T0);
        }
        __m256i wq = _mm256_loadu_si256((const __m256i *) (blk + 2));
        __m256i abs_w = _mm256_sign_epi8(wq, wq);
        float dw = FN(half)(blk);
        for (int k = 0; k < kt; k++) {
            __m256i s = FN(products)(wq, abs_w, x[k].q + 32 * b);
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * x[k].d[b]), _mm256_cvtepi32_ps(s), acc[k]);
        }
    }
    for (int k = 0; k < kt; k++) {
        out[(size_t) k * stride] = FN(hsum8)(acc[k]);
    }
}

static void FN(q8_batch)(const uint8_t *w, int row_bytes, int rows, int blocks, const act_t *x, int n, float *out) {
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = w + (size_t) r * row_bytes;
        const uint8_t *next = r + 1 < rows ? row + row_bytes : NULL;
        int k = 0;
        for (; k + 8 <= n; k += 8) {
            FN(q8_tile)(row, next, blocks, x + k, 8, out + (size_t) k * rows + r, rows);
        }
        if (k < n) {
            FN(q8_tile)(row, next, blocks, x + k, n - k, out + (size_t) k * rows + r, rows);
        }
    }
}

static void FN(q4_batch)(const uint8_t *w, int row_bytes, int rows, int blocks, const act_t *x, int n, float *out) {
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = w + (size_t) r * row_bytes;
        for (int k0 = 0; k0 < n; k0 += 8) {
            int kt = n - k0 < 8 ? n - k0 : 8;
            __m256 acc = _mm256_setzero_ps();
            for (int b = 0; b < blocks; b++) {
                const uint8_t *blk = row + 18 * b;
                if (r + 1 < rows) {
                    _mm_prefetch((const char *) blk + row_bytes, _MM_HINT_T0);
                }
                __m256i wq = FN(q4_weights)(blk);
                __m256i abs_w = _mm256_sign_epi8(wq, wq);
                float dw = FN(half)(blk);
                __m256i p[8];
                float d[8];
                for (int k = 0; k < 8; k++) {
                    if (k < kt) {
                        p[k] = FN(products)(wq, abs_w, x[k0 + k].q + 32 * b);
                        d[k] = dw * x[k0 + k].d[b];
                    } else {
                        p[k] = _mm256_setzero_si256();
                        d[k] = 0;
                    }
                }
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(FN(reduce8)(p)), _mm256_loadu_ps(d), acc);
            }
            float lanes[8];
            _mm256_storeu_ps(lanes, acc);
            for (int k = 0; k < kt; k++) {
                out[(size_t) (k0 + k) * rows + r] = lanes[k];
            }
        }
    }
}

#endif

#undef FN
#undef CAT
#undef CAT2
