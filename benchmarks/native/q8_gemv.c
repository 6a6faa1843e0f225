// Native reference point for docs/benchmarks.md: how fast plain C with AVX-512 VNNI multiplies
// Q8_0 rows by a Q8_0 activation on this machine, reading the rows from a mapped GGUF file as the
// Java kernels do. Not llama.cpp's code; the same block math (int8 dot per 32 weights, one fma per
// block into 8 lanes). Timing only: the bytes are read as Q8_0 blocks wherever they come from.
// Build and run: benchmarks/native/run-q8-gemv.sh FILE
#include <immintrin.h>
#include <fcntl.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float half_to_float(uint16_t h) {
    return _cvtsh_ss(h);
}

// one row of `blocks` Q8_0 blocks (34 bytes: f16 scale, 32 int8) against activation quants q, scales d
static float row_dot(const uint8_t *w, int blocks, const int8_t *q, const float *d) {
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < blocks; b++, w += 34) {
        __m256i x = _mm256_loadu_si256((const __m256i *) (w + 2));
        __m256i y = _mm256_loadu_si256((const __m256i *) (q + 32 * b));
        __m256i ax = _mm256_sign_epi8(x, x);  // |x| as unsigned
        __m256i sy = _mm256_sign_epi8(y, x);  // y with x's sign
        __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(*(const uint16_t *) w) * d[b]), _mm256_cvtepi32_ps(s), acc);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

// four rows at a time (the activation loads shared), prefetching `ahead` bytes past each row
static void rows4_dot(const uint8_t *w, int row_bytes, int blocks, const int8_t *q, const float *d, float *out, int ahead) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int b = 0; b < blocks; b++) {
        __m256i y = _mm256_loadu_si256((const __m256i *) (q + 32 * b));
        for (int r = 0; r < 4; r++) {
            const uint8_t *blk = w + r * row_bytes + 34 * b;
            if (ahead) _mm_prefetch((const char *) blk + ahead, _MM_HINT_T0);
            __m256i x = _mm256_loadu_si256((const __m256i *) (blk + 2));
            __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(*(const uint16_t *) blk) * d[b]), _mm256_cvtepi32_ps(s), acc[r]);
        }
    }
    for (int r = 0; r < 4; r++) {
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[r]), _mm256_extractf128_ps(acc[r], 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        out[r] = _mm_cvtss_f32(h);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE.gguf [threads]\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 1;
    }
    const uint8_t *map = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    const int cols = 2048, blocks = cols / 32, row_bytes = blocks * 34;
    long rows = (long) (st.st_size - 4096) / row_bytes;
    int8_t *q = aligned_alloc(64, cols);
    float *d = malloc(sizeof(float) * blocks);
    for (int i = 0; i < cols; i++) q[i] = (int8_t) ((i * 37) % 255 - 127);
    for (int b = 0; b < blocks; b++) d[b] = 0.01f;
    float *out = malloc(sizeof(float) * rows);
    const char *names[] = {"one row", "four rows", "four rows + prefetch"};
    for (int variant = 0; variant < 3; variant++) {
        for (int threads = 1; threads <= (argc > 2 ? atoi(argv[2]) : 2); threads++) {
            double best = 1e9;
            for (int rep = 0; rep < 4; rep++) {
                double t0 = now();
                if (variant == 0) {
#pragma omp parallel for num_threads(threads) schedule(static, 64)
                    for (long r = 0; r < rows; r++) {
                        out[r] = row_dot(map + 4096 + r * row_bytes, blocks, q, d);
                    }
                } else {
                    int ahead = variant == 2 ? 4 * row_bytes : 0;
#pragma omp parallel for num_threads(threads) schedule(static, 16)
                    for (long r = 0; r < rows - 4; r += 4) {
                        rows4_dot(map + 4096 + r * row_bytes, row_bytes, blocks, q, d, out + r, ahead);
                    }
                }
                double dt = now() - t0;
                if (dt < best) best = dt;
            }
            double blk = (double) rows * blocks;
            printf("{\"kernel\":\"%s\",\"threads\":%d,\"m_block_dots_per_s\":%.0f,\"gb_per_s\":%.1f,\"check\":%g}\n",
                   names[variant], threads, blk / best / 1e6, blk * 34 / best / 1e9, (double) out[rows / 2]);
        }
    }
    return 0;
}
