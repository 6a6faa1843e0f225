// AVX-512 kernels (VNNI level only), included by moestream_kernels.c inside its VNNI target
// section after kernels_body.h. Same numerics as there: exact integer block sums, then the float
// steps of ScalarKernels in its order.
//
// Q4_0 puts four rows (or four activations) in one 512-bit register, one per 128-bit lane: the
// low nibbles of a block against the activation's first 16 quants and the high nibbles against
// the last 16 give each lane four partial sums of its row in two vpdpbusd. Nibbles are used
// unsigned and the -8 offset comes back as 8 * (sum of the activation block's quants).
//
// Batched products read activations packed once per product (pack_q8 / pack_q4):
//   Q8_0, per block b and pair p of activations (192 bytes): the pair's 2 x 32 quants | for each,
//        8 int32 = -128 * (sum of quants 4j..4j+3) | for each, its scale 8 times. The weights are
//        used as unsigned (w + 128, i.e. w ^ 0x80) and the -128 correction starts the sum, so one
//        vpdpbusd gives both activations' exact lane sums.
//   Q4_0, per block b and group g of 4 activations (192 bytes): quants 0-15 of the four | quants
//        16-31 of the four | 4 int32 = 8 * block sum | 4 scales | 32 bytes of padding. Rows go
//        four (or eight) at a time, one per 128-bit lane, and a transpose-reduce turns each group's
//        partial sums into 4 rows x 4 activations (q4_quad, q4_oct); the rows left over in pairs,
//        one 256-bit accumulator holding two rows times the group's four activations (q4_pass).
//
// Rows that share a pass are taken in streams (lane j: rows j*S .. j*S + S - 1), so that each lane
// reads forward through its own part of the matrix and the hardware prefetcher follows it.

#define Q8_PAIR_BYTES 192
#define Q4_GROUP_BYTES 192

static inline size_t packed_bytes(int q4, int n, int blocks) {
    return q4 ? (size_t) ((n + 3) / 4) * blocks * Q4_GROUP_BYTES : (size_t) ((n + 1) / 2) * blocks * Q8_PAIR_BYTES;
}

// lane k = total of the four partial sums of 128-bit lane k (pa: k < 4, pb: k >= 4)
static inline __m256i reduce4x4(__m512i pa, __m512i pb) {
    __m256i ya = _mm512_cvtepi64_epi32(_mm512_add_epi32(pa, _mm512_srli_epi64(pa, 32)));
    __m256i yb = _mm512_cvtepi64_epi32(_mm512_add_epi32(pb, _mm512_srli_epi64(pb, 32)));
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(ya), yb, 1);
    return _mm512_cvtepi64_epi32(_mm512_add_epi32(z, _mm512_srli_epi64(z, 32)));
}

static inline __m512i load4x16(const uint8_t *p, size_t stride) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *) p));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *) (p + stride)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *) (p + 2 * stride)), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *) (p + 3 * stride)), 3);
}

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

// the F16 scales at p, p + stride, ... (8 rows' blocks) as floats
static inline __m256 scales8(const uint8_t *p, size_t stride) {
    __m128i h = _mm_cvtsi32_si128(load_u16(p));
    h = _mm_insert_epi16(h, load_u16(p + stride), 1);
    h = _mm_insert_epi16(h, load_u16(p + 2 * stride), 2);
    h = _mm_insert_epi16(h, load_u16(p + 3 * stride), 3);
    h = _mm_insert_epi16(h, load_u16(p + 4 * stride), 4);
    h = _mm_insert_epi16(h, load_u16(p + 5 * stride), 5);
    h = _mm_insert_epi16(h, load_u16(p + 6 * stride), 6);
    h = _mm_insert_epi16(h, load_u16(p + 7 * stride), 7);
    return _mm256_cvtph_ps(h);
}

// four rows' Q4_0 block partial sums (unsigned nibbles) against one activation block
static inline __m512i q4_partials(__m512i qs, __m512i yl, __m512i yh) {
    const __m512i m = _mm512_set1_epi8(0x0F);
    __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(qs, m), yl);
    return _mm512_dpbusd_epi32(p, _mm512_and_si512(_mm512_srli_epi16(qs, 4), m), yh);
}

// Eight streams (lane j: rows j*S .. j*S + S - 1, S = rows / 8), each running forward through its
// own part of the matrix (see q8_rows in kernels_body.h); the rows after 8S by q4_rows_vnni.
static void q4_rows_zmm(const uint8_t *w, int row_bytes, int rows, int blocks, act_t x, float *out) {
    const size_t rb = (size_t) row_bytes;
    const int S = rows / 8;
    const size_t ls = (size_t) S * rb;
    for (int i = 0; i < S; i++) {
        const uint8_t *base = w + (size_t) i * rb;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const uint8_t *blk = base + 18 * b;
            if ((b & 1) == 0) {
                for (int j = 0; j < 8; j++) {
                    _mm_prefetch((const char *) blk + j * ls + rb, _MM_HINT_T0);  // each stream's next row
                }
            }
            __m512i yl = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) (x.q + 32 * b)));
            __m512i yh = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) (x.q + 32 * b + 16)));
            __m512i pa = q4_partials(load4x16(blk + 2, ls), yl, yh);
            __m512i pb = q4_partials(load4x16(blk + 4 * ls + 2, ls), yl, yh);
            __m256i isum = _mm256_sub_epi32(reduce4x4(pa, pb), _mm256_set1_epi32(8 * x.s[b]));
            __m256 d = _mm256_mul_ps(scales8(blk, ls), _mm256_set1_ps(x.d[b]));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
        }
        float v[8];
        _mm256_storeu_ps(v, acc);
        for (int j = 0; j < 8; j++) {
            out[i + j * S] = v[j];
        }
    }
    if (8 * S < rows) {
        q4_rows_vnni(w + (size_t) 8 * S * rb, row_bytes, rows - 8 * S, blocks, x, out + 8 * S);
    }
}

// Q4_0 rows repacked eight at a time, for single-activation products: per group of 8 rows and per
// block, the 8 F16 scales (16 bytes), then the 16 quant bytes of rows 0-3 and of rows 4-7 (one
// 128-bit lane per row; 144 bytes). A group is one forward stream, four rows are one 512-bit load
// and the eight scales one 128-bit load, where rows in place take 8 + 8 loads and inserts per
// block. Same numbers as q4_rows_zmm: the same partial sums, reduction and float steps.
#define Q4_GROUP_ROWS 8
#define Q4_REPACKED_BLOCK 144

static void q4_repack(const uint8_t *w, size_t row_bytes, int groups, int blocks, uint8_t *to) {
    for (int g = 0; g < groups; g++) {
        for (int b = 0; b < blocks; b++) {
            uint8_t *e = to + ((size_t) g * blocks + b) * Q4_REPACKED_BLOCK;
            for (int j = 0; j < Q4_GROUP_ROWS; j++) {
                const uint8_t *blk = w + ((size_t) g * Q4_GROUP_ROWS + j) * row_bytes + 18 * (size_t) b;
                memcpy(e + 2 * j, blk, 2);
                memcpy(e + 16 + 16 * j, blk + 2, 16);
            }
        }
    }
}

static void q4_groups_zmm(const uint8_t *w, int groups, int blocks, act_t x, float *out) {
    for (int g = 0; g < groups; g++) {
        const uint8_t *base = w + (size_t) g * blocks * Q4_REPACKED_BLOCK;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < blocks; b++) {
            const uint8_t *e = base + (size_t) b * Q4_REPACKED_BLOCK;
            __m512i yl = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) (x.q + 32 * b)));
            __m512i yh = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) (x.q + 32 * b + 16)));
            __m512i pa = q4_partials(_mm512_loadu_si512((const void *) (e + 16)), yl, yh);
            __m512i pb = q4_partials(_mm512_loadu_si512((const void *) (e + 80)), yl, yh);
            __m256i isum = _mm256_sub_epi32(reduce4x4(pa, pb), _mm256_set1_epi32(8 * x.s[b]));
            __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) e)), _mm256_set1_ps(x.d[b]));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
        }
        _mm256_storeu_ps(out + Q4_GROUP_ROWS * g, acc);
    }
}

static void pack_q8(const act_t *x, int n, int blocks, uint8_t *to) {
    int pairs = (n + 1) / 2;
    for (int b = 0; b < blocks; b++) {
        for (int p = 0; p < pairs; p++) {
            uint8_t *e = to + ((size_t) b * pairs + p) * Q8_PAIR_BYTES;
            int32_t *c = (int32_t *) (e + 64);
            float *d = (float *) (e + 128);
            for (int h = 0; h < 2; h++) {
                int k = 2 * p + h;
                if (k < n) {
                    const int8_t *q = x[k].q + 32 * b;
                    memcpy(e + 32 * h, q, 32);
                    for (int j = 0; j < 8; j++) {
                        c[8 * h + j] = -128 * (q[4 * j] + q[4 * j + 1] + q[4 * j + 2] + q[4 * j + 3]);
                        d[8 * h + j] = x[k].d[b];
                    }
                } else {
                    memset(e + 32 * h, 0, 32);
                    for (int j = 0; j < 8; j++) {
                        c[8 * h + j] = 0;
                        d[8 * h + j] = 0;
                    }
                }
            }
        }
    }
}

static inline float hsum8_zmm(__m256 acc) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

#define Q8_TILE 8  // pairs of activations per pass over a pair of rows (16 activations, 16 accumulators)

// rows r0 and r1 (r1 may repeat r0 for a last odd row; its results are then not stored) against
// activation pairs p0 .. p0 + pt of the packed activations; pt is a constant at each call site
// (see q8_batch_packed, which uses it for the one to three rows after the last group of four), so
// the accumulators stay in registers
static inline __attribute__((always_inline)) void q8_pass(const uint8_t *r0, const uint8_t *r1, int pair,
        size_t row_bytes, int blocks, const uint8_t *packed, int pairs, int p0, const int pt, int n, float *out,
        int rows) {
    const __m256i flip = _mm256_set1_epi8((char) 0x80);
    __m512 acc0[Q8_TILE];
    __m512 acc1[Q8_TILE];
#pragma GCC unroll 8
    for (int p = 0; p < pt; p++) {
        acc0[p] = _mm512_setzero_ps();
        acc1[p] = _mm512_setzero_ps();
    }
    for (int b = 0; b < blocks; b++) {
        const uint8_t *b0 = r0 + 34 * b;
        const uint8_t *b1 = r1 + 34 * b;
        _mm_prefetch((const char *) b0 + 2 * row_bytes, _MM_HINT_T0);  // the next pair (never faults)
        _mm_prefetch((const char *) b0 + 3 * row_bytes, _MM_HINT_T0);
        __m512i u0 = _mm512_broadcast_i64x4(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (b0 + 2)), flip));
        __m512i u1 = _mm512_broadcast_i64x4(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (b1 + 2)), flip));
        __m512 dw0 = _mm512_set1_ps(_cvtsh_ss(load_u16(b0)));
        __m512 dw1 = _mm512_set1_ps(_cvtsh_ss(load_u16(b1)));
        const uint8_t *e = packed + ((size_t) b * pairs + p0) * Q8_PAIR_BYTES;
#pragma GCC unroll 8
        for (int p = 0; p < pt; p++) {
            const uint8_t *f = e + (size_t) p * Q8_PAIR_BYTES;
            __m512i y = _mm512_load_si512((const void *) f);
            __m512i c = _mm512_load_si512((const void *) (f + 64));
            __m512 dx = _mm512_load_ps((const void *) (f + 128));
            __m512i s0 = _mm512_dpbusd_epi32(c, u0, y);
            __m512i s1 = _mm512_dpbusd_epi32(c, u1, y);
            acc0[p] = _mm512_fmadd_ps(_mm512_mul_ps(dw0, dx), _mm512_cvtepi32_ps(s0), acc0[p]);
            acc1[p] = _mm512_fmadd_ps(_mm512_mul_ps(dw1, dx), _mm512_cvtepi32_ps(s1), acc1[p]);
        }
    }
#pragma GCC unroll 8
    for (int p = 0; p < pt; p++) {
        size_t k = 2 * (size_t) (p0 + p);
        out[k * rows] = hsum8_zmm(_mm512_castps512_ps256(acc0[p]));
        if (pair) {
            out[k * rows + 1] = hsum8_zmm(_mm512_castps512_ps256(acc1[p]));
        }
        if ((int) k + 1 < n) {
            out[(k + 1) * rows] = hsum8_zmm(_mm512_extractf32x8_ps(acc0[p], 1));
            if (pair) {
                out[(k + 1) * rows + 1] = hsum8_zmm(_mm512_extractf32x8_ps(acc1[p], 1));
            }
        }
    }
}

// The batched product over rows in pairs: the packed activations in tiles of up to 8 units (Q8_0:
// pairs of activations; Q4_0: groups of four), each tile's width a compile-time constant at its
// call of PASS so that the accumulators stay in registers.
#define PASS_CASE(PASS, W) \
    case W: PASS(r0, r1, pair, (size_t) row_bytes, blocks, packed, units, u0, W, n, out + r, rows); break;
#define BATCH_DRIVER(NAME, PASS, PER_UNIT) \
    static void NAME(const uint8_t *w, int row_bytes, int first, int rows, int blocks, const uint8_t *packed, int n, \
                     float *out) { \
        const int units = (n + PER_UNIT - 1) / PER_UNIT; \
        for (int r = first; r < rows; r += 2) { \
            const uint8_t *r0 = w + (size_t) r * row_bytes; \
            int pair = r + 1 < rows; \
            const uint8_t *r1 = pair ? r0 + row_bytes : r0; \
            for (int u0 = 0; u0 < units; u0 += 8) { \
                switch (units - u0 < 8 ? units - u0 : 8) { \
                    PASS_CASE(PASS, 8) PASS_CASE(PASS, 7) PASS_CASE(PASS, 6) PASS_CASE(PASS, 5) \
                    PASS_CASE(PASS, 4) PASS_CASE(PASS, 3) PASS_CASE(PASS, 2) \
                    default: PASS(r0, r1, pair, (size_t) row_bytes, blocks, packed, units, u0, 1, n, out + r, rows); \
                } \
            } \
        } \
    }

// four rows (r0 and the three after it) against activation pairs p0 .. p0 + pt (pt <= 4, a constant
// at each call site): each packed block is read once per four rows and four rows' reads are in
// flight per thread (1.13-1.26x the row-pair pass at 4, 16 and 64 activations)
static inline __attribute__((always_inline)) void q8_quad(const uint8_t *r0, size_t row_bytes, size_t ls, int os,
        int blocks, const uint8_t *packed, int pairs, int p0, const int pt, int n, float *out, int rows) {
    const __m256i flip = _mm256_set1_epi8((char) 0x80);
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
#pragma GCC unroll 4
        for (int p = 0; p < pt; p++) {
            acc[i][p] = _mm512_setzero_ps();
        }
    }
    for (int b = 0; b < blocks; b++) {
        const uint8_t *b0 = r0 + 34 * b;
        __m512i u[4];
        __m512 dw[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const uint8_t *bi = b0 + i * ls;
            _mm_prefetch((const char *) bi + row_bytes, _MM_HINT_T0);  // each stream's next row (never faults)
            u[i] = _mm512_broadcast_i64x4(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (bi + 2)), flip));
            dw[i] = _mm512_set1_ps(_cvtsh_ss(load_u16(bi)));
        }
        const uint8_t *e = packed + ((size_t) b * pairs + p0) * Q8_PAIR_BYTES;
#pragma GCC unroll 4
        for (int p = 0; p < pt; p++) {
            const uint8_t *f = e + (size_t) p * Q8_PAIR_BYTES;
            __m512i y = _mm512_load_si512((const void *) f);
            __m512i c = _mm512_load_si512((const void *) (f + 64));
            __m512 dx = _mm512_load_ps((const void *) (f + 128));
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m512i s = _mm512_dpbusd_epi32(c, u[i], y);
                acc[i][p] = _mm512_fmadd_ps(_mm512_mul_ps(dw[i], dx), _mm512_cvtepi32_ps(s), acc[i][p]);
            }
        }
    }
#pragma GCC unroll 4
    for (int p = 0; p < pt; p++) {
        size_t k = 2 * (size_t) (p0 + p);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            out[k * rows + i * os] = hsum8_zmm(_mm512_castps512_ps256(acc[i][p]));
            if ((int) k + 1 < n) {
                out[(k + 1) * rows + i * os] = hsum8_zmm(_mm512_extractf32x8_ps(acc[i][p], 1));
            }
        }
    }
}

// Rows in four streams (lane i: rows i*S .. i*S + S - 1, S = rows / 4; see q8_rows in
// kernels_body.h), the rows after 4S in pairs.
static void q8_batch_packed(const uint8_t *w, int row_bytes, int rows, int blocks, const uint8_t *packed, int n,
                            float *out) {
    const int pairs = (n + 1) / 2;
    const int S = rows / 4;
    const size_t ls = (size_t) S * row_bytes;
    for (int i = 0; i < S; i++) {
        const uint8_t *r0 = w + (size_t) i * row_bytes;
        for (int p0 = 0; p0 < pairs; p0 += 4) {
            switch (pairs - p0 < 4 ? pairs - p0 : 4) {
                case 4: q8_quad(r0, (size_t) row_bytes, ls, S, blocks, packed, pairs, p0, 4, n, out + i, rows); break;
                case 3: q8_quad(r0, (size_t) row_bytes, ls, S, blocks, packed, pairs, p0, 3, n, out + i, rows); break;
                case 2: q8_quad(r0, (size_t) row_bytes, ls, S, blocks, packed, pairs, p0, 2, n, out + i, rows); break;
                default: q8_quad(r0, (size_t) row_bytes, ls, S, blocks, packed, pairs, p0, 1, n, out + i, rows); break;
            }
        }
    }
    int r = 4 * S;
    for (; r < rows; r += 2) {
        const uint8_t *r0 = w + (size_t) r * row_bytes;
        int pair = r + 1 < rows;
        const uint8_t *r1 = pair ? r0 + row_bytes : r0;
        int units = pairs;
        for (int u0 = 0; u0 < units; u0 += 4) {
            switch (units - u0 < 4 ? units - u0 : 4) {
                PASS_CASE(q8_pass, 4) PASS_CASE(q8_pass, 3) PASS_CASE(q8_pass, 2)
                default: q8_pass(r0, r1, pair, (size_t) row_bytes, blocks, packed, units, u0, 1, n, out + r, rows);
            }
        }
    }
}


static void pack_q4(const act_t *x, int n, int blocks, uint8_t *to) {
    int groups = (n + 3) / 4;
    for (int b = 0; b < blocks; b++) {
        for (int g = 0; g < groups; g++) {
            uint8_t *e = to + ((size_t) b * groups + g) * Q4_GROUP_BYTES;
            int32_t *s = (int32_t *) (e + 128);
            float *d = (float *) (e + 144);
            memset(e + 160, 0, 32);
            for (int i = 0; i < 4; i++) {
                int k = 4 * g + i;
                if (k < n) {
                    memcpy(e + 16 * i, x[k].q + 32 * b, 16);
                    memcpy(e + 64 + 16 * i, x[k].q + 32 * b + 16, 16);
                    s[i] = 8 * x[k].s[b];
                    d[i] = x[k].d[b];
                } else {
                    memset(e + 16 * i, 0, 16);
                    memset(e + 64 + 16 * i, 0, 16);
                    s[i] = 0;
                    d[i] = 0;
                }
            }
        }
    }
}

#define Q4_TILE 8  // groups of 4 activations per pass over a pair of rows

// rows r0 and r1 (r1 may repeat r0 for a last odd row; its results are then not stored) against
// groups g0 .. g0 + gt of the packed activations (gt constant at each call site)
static inline __attribute__((always_inline)) void q4_pass(const uint8_t *r0, const uint8_t *r1, int pair,
        size_t row_bytes, int blocks, const uint8_t *packed, int groups, int g0, const int gt, int n, float *out,
        int rows) {
    const __m512i m = _mm512_set1_epi8(0x0F);
    __m256 acc[Q4_TILE];
#pragma GCC unroll 8
    for (int g = 0; g < gt; g++) {
        acc[g] = _mm256_setzero_ps();
    }
    for (int b = 0; b < blocks; b++) {
        const uint8_t *b0 = r0 + 18 * b;
        const uint8_t *b1 = r1 + 18 * b;
        _mm_prefetch((const char *) b0 + 2 * row_bytes, _MM_HINT_T0);  // the next pair (never faults)
        _mm_prefetch((const char *) b0 + 3 * row_bytes, _MM_HINT_T0);
        // the quants broadcast straight from memory (a load, no shuffle), nibbles split in 512 bits
        __m512i q0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) (b0 + 2)));
        __m512i q1 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *) (b1 + 2)));
        __m512i w0l = _mm512_and_si512(q0, m);
        __m512i w0h = _mm512_and_si512(_mm512_srli_epi16(q0, 4), m);
        __m512i w1l = _mm512_and_si512(q1, m);
        __m512i w1h = _mm512_and_si512(_mm512_srli_epi16(q1, 4), m);
        // the two rows' scales as [d0 x4, d1 x4]: two word broadcasts, one conversion
        __m256 dw = _mm256_cvtph_ps(_mm_unpacklo_epi64(_mm_set1_epi16((short) load_u16(b0)), _mm_set1_epi16((short) load_u16(b1))));
        const uint8_t *e = packed + ((size_t) b * groups + g0) * Q4_GROUP_BYTES;
#pragma GCC unroll 8
        for (int g = 0; g < gt; g++) {
            const uint8_t *f = e + (size_t) g * Q4_GROUP_BYTES;
            __m512i yl = _mm512_load_si512((const void *) f);
            __m512i yh = _mm512_load_si512((const void *) (f + 64));
            __m512i pa = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w0l, yl), w0h, yh);
            __m512i pb = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w1l, yl), w1h, yh);
            __m256i isum = _mm256_sub_epi32(reduce4x4(pa, pb),
                                            _mm256_broadcastsi128_si256(_mm_load_si128((const __m128i *) (f + 128))));
            __m256 d = _mm256_mul_ps(dw, _mm256_broadcast_ps((const __m128 *) (f + 144)));
            acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc[g]);
        }
    }
#pragma GCC unroll 8
    for (int g = 0; g < gt; g++) {
        float lanes[8];
        _mm256_storeu_ps(lanes, acc[g]);
        for (int i = 0; i < 4 && 4 * (g0 + g) + i < n; i++) {
            out[(size_t) (4 * (g0 + g) + i) * rows] = lanes[i];
            if (pair) {
                out[(size_t) (4 * (g0 + g) + i) * rows + 1] = lanes[4 + i];
            }
        }
    }
}

BATCH_DRIVER(q4_pairs_packed, q4_pass, 4)

// 16 sums from four registers of four partial sums per 128-bit lane: lane L, element j of the
// result = total of lane L of p[j] (two rounds of interleave-and-add; integers, exact in any order)
static inline __m512i transpose_reduce(__m512i p0, __m512i p1, __m512i p2, __m512i p3) {
    __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(p0, p1), _mm512_unpackhi_epi32(p0, p1));
    __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(p2, p3), _mm512_unpackhi_epi32(p2, p3));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
}

#define Q4_QUAD_TILE 4  // groups of 4 activations per pass over four rows

// the scales of four rows' blocks (p, p + ls, p + 2 ls, p + 3 ls) as floats, each four times
static inline __m512 scales4x4(const uint8_t *p, size_t ls) {
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    uint64_t h = (uint64_t) load_u16(p) | (uint64_t) load_u16(p + ls) << 16 | (uint64_t) load_u16(p + 2 * ls) << 32
                 | (uint64_t) load_u16(p + 3 * ls) << 48;
    return _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi64_si128((long long) h))));
}

// one group's 16 exact block sums (lane = row, element = activation) of the four rows whose
// unsigned nibbles are wl / wh against the packed group at f, minus 8 * the activations' sums
static inline __m512i q4_group_sums(__m512i wl, __m512i wh, const uint8_t *f) {
    __m512i p[4];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        __m512i yl = _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *) (f + 16 * k)));
        __m512i yh = _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *) (f + 64 + 16 * k)));
        p[k] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wl, yl), wh, yh);
    }
    return _mm512_sub_epi32(transpose_reduce(p[0], p[1], p[2], p[3]),
                            _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *) (f + 128))));
}

// out[k * rows + j * os] (k: the group's activations, j: lane) from a pass's accumulator
static inline void q4_store(__m512 acc, int k0, int n, float *out, int os, int rows) {
    float v[16];
    _mm512_storeu_ps(v, acc);
    for (int k = 0; k < 4 && k0 + k < n; k++) {
        float *o = out + (size_t) (k0 + k) * rows;
        o[0] = v[k];
        o[os] = v[4 + k];
        o[2 * os] = v[8 + k];
        o[3 * os] = v[12 + k];
    }
}

// Rows r0, r0 + ls, r0 + 2 ls, r0 + 3 ls (bytes), one per 128-bit lane, against groups g0 .. g0 + gt
// of the packed activations (gt <= 4, a constant at each call site): per group and block each
// activation's quants broadcast to the four lanes, two vpdpbusd per activation, and one
// transpose-reduce gives the 16 exact block sums; the float steps are then 16 wide.
static inline __attribute__((always_inline)) void q4_quad(const uint8_t *r0, size_t row_bytes, size_t ls, int os,
        int blocks, const uint8_t *packed, int groups, int g0, const int gt, int n, float *out, int rows) {
    const __m512i m = _mm512_set1_epi8(0x0F);
    __m512 acc[Q4_QUAD_TILE];
#pragma GCC unroll 4
    for (int g = 0; g < gt; g++) {
        acc[g] = _mm512_setzero_ps();
    }
    for (int b = 0; b < blocks; b++) {
        const uint8_t *blk = r0 + 18 * b;
        _mm_prefetch((const char *) blk + row_bytes, _MM_HINT_T0);  // each stream's next row (never faults)
        _mm_prefetch((const char *) blk + ls + row_bytes, _MM_HINT_T0);
        _mm_prefetch((const char *) blk + 2 * ls + row_bytes, _MM_HINT_T0);
        _mm_prefetch((const char *) blk + 3 * ls + row_bytes, _MM_HINT_T0);
        __m512i q = load4x16(blk + 2, ls);
        __m512i wl = _mm512_and_si512(q, m);
        __m512i wh = _mm512_and_si512(_mm512_srli_epi16(q, 4), m);
        __m512 dw = scales4x4(blk, ls);
        const uint8_t *e = packed + ((size_t) b * groups + g0) * Q4_GROUP_BYTES;
#pragma GCC unroll 4
        for (int g = 0; g < gt; g++) {
            const uint8_t *f = e + (size_t) g * Q4_GROUP_BYTES;
            __m512 d = _mm512_mul_ps(dw, _mm512_broadcast_f32x4(_mm_load_ps((const float *) (f + 144))));
            acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q4_group_sums(wl, wh, f)), d, acc[g]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < gt; g++) {
        q4_store(acc[g], 4 * (g0 + g), n, out, os, rows);
    }
}

// Eight rows (r0 + j ls, j < 8) against one group (n <= 4): q4_quad's steps for two quads at once,
// the activation's quants loaded once for both (1.05-1.08x four rows at a time, from cache).
static void q4_oct(const uint8_t *r0, size_t row_bytes, size_t ls, int os, int blocks, const uint8_t *packed, int n,
                   float *out, int rows) {
    const __m512i m = _mm512_set1_epi8(0x0F);
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int b = 0; b < blocks; b++) {
        const uint8_t *f = packed + (size_t) b * Q4_GROUP_BYTES;
        __m512 dx = _mm512_broadcast_f32x4(_mm_load_ps((const float *) (f + 144)));
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const uint8_t *blk = r0 + 4 * h * ls + 18 * b;
            if ((b & 1) == 0) {
                _mm_prefetch((const char *) blk + row_bytes, _MM_HINT_T0);  // each stream's next row
                _mm_prefetch((const char *) blk + ls + row_bytes, _MM_HINT_T0);
                _mm_prefetch((const char *) blk + 2 * ls + row_bytes, _MM_HINT_T0);
                _mm_prefetch((const char *) blk + 3 * ls + row_bytes, _MM_HINT_T0);
            }
            __m512i q = load4x16(blk + 2, ls);
            __m512i wl = _mm512_and_si512(q, m);
            __m512i wh = _mm512_and_si512(_mm512_srli_epi16(q, 4), m);
            __m512 d = _mm512_mul_ps(scales4x4(blk, ls), dx);
            acc[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q4_group_sums(wl, wh, f)), d, acc[h]);
        }
    }
    q4_store(acc[0], 0, n, out, os, rows);
    q4_store(acc[1], 0, n, out + 4 * (size_t) os, os, rows);
}

// Rows in streams (see q8_rows in kernels_body.h): eight (lane j: rows j*S .. j*S + S - 1, S = rows
// / 8) when the activations fit one group, else four; the rows after them in pairs.
static void q4_batch_packed(const uint8_t *w, int row_bytes, int rows, int blocks, const uint8_t *packed, int n,
                            float *out) {
    const int groups = (n + 3) / 4;
    const size_t rb = (size_t) row_bytes;
    int r = 0;
    if (groups == 1) {
        const int S = rows / 8;
        for (int i = 0; i < S; i++) {
            q4_oct(w + (size_t) i * rb, rb, (size_t) S * rb, S, blocks, packed, n, out + i, rows);
        }
        r = 8 * S;
    }
    const int S = (rows - r) / 4;
    const size_t ls = (size_t) S * rb;
    for (int i = 0; i < S; i++) {
        const uint8_t *r0 = w + (size_t) (r + i) * rb;
        float *o = out + r + i;
        for (int g0 = 0; g0 < groups; g0 += Q4_QUAD_TILE) {
            switch (groups - g0 < Q4_QUAD_TILE ? groups - g0 : Q4_QUAD_TILE) {
                case 4: q4_quad(r0, rb, ls, S, blocks, packed, groups, g0, 4, n, o, rows); break;
                case 3: q4_quad(r0, rb, ls, S, blocks, packed, groups, g0, 3, n, o, rows); break;
                case 2: q4_quad(r0, rb, ls, S, blocks, packed, groups, g0, 2, n, o, rows); break;
                default: q4_quad(r0, rb, ls, S, blocks, packed, groups, g0, 1, n, o, rows); break;
            }
        }
    }
    q4_pairs_packed(w, row_bytes, r + 4 * S, rows, blocks, packed, n, out);
}
