// Q4_K single-activation row product, two weight layouts, same numbers (docs/benchmarks.md,
// "Q4_K at batch 1, rows repacked sixteen at a time"): the runtime's AVX-512 kernels
// (model-runtime/src/main/c/kquant_zmm.h) kz_q4k_one on rows in place (GGUF layout, 144-byte
// super-blocks, four row streams per task) and kz_q4k_groups on the same rows repacked sixteen at a
// time by kz_q4k_repack. Checks that both give the same bits, then prints GB/s of the file's bytes
// per layout and round, the layouts alternating.
// Build and run: benchmarks/native/run-q4k-layout.sh [THREADS] [MB] [TASK_ROWS]
#include "moestream_kernels.c"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

enum { BLOCKS = 8, COLS = BLOCKS * 256, ROW_BYTES = BLOCKS * 144 };  // rows of 2048 columns, as in bench-moe
static uint8_t *rows_in_place, *rows_repacked;
static size_t task_rows = 512, tasks;
static int repacked;
static atomic_size_t next_task;
static kq8_t x;
static float *out;

static void *worker(void *arg) {
    (void) arg;
    size_t t;
    while ((t = atomic_fetch_add(&next_task, 1)) < tasks) {
        size_t r0 = t * task_rows;
        if (repacked) {
            kz_q4k_groups(rows_repacked + r0 / KQ4_GROUP_ROWS * BLOCKS * KQ4_GROUP_BLOCK,
                          (int) (task_rows / KQ4_GROUP_ROWS), BLOCKS, x, out + r0);
        } else {
            kz_q4k_one(rows_in_place + r0 * ROW_BYTES, ROW_BYTES, (int) task_rows, BLOCKS, x, out + r0);
        }
    }
    return NULL;
}

static double seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void run(int threads) {
    pthread_t th[64];
    atomic_store(&next_task, 0);
    for (int i = 1; i < threads; i++) {
        pthread_create(&th[i], NULL, worker, NULL);
    }
    worker(NULL);
    for (int i = 1; i < threads; i++) {
        pthread_join(th[i], NULL);
    }
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    size_t mb = argc > 2 ? (size_t) atol(argv[2]) : 160;
    if (argc > 3) {
        task_rows = (size_t) atol(argv[3]) / KQ4_GROUP_ROWS * KQ4_GROUP_ROWS;
    }
    if (threads < 1 || threads > 64 || task_rows < KQ4_GROUP_ROWS) {
        fprintf(stderr, "usage: q4k_layout [threads 1-64] [MB] [task rows >= 16]\n");
        return 2;
    }
    tasks = mb * 1000000 / ROW_BYTES / task_rows;
    size_t rows = tasks * task_rows, bytes = rows * ROW_BYTES;
    rows_in_place = aligned_alloc(64, bytes);
    rows_repacked = aligned_alloc(64, rows / KQ4_GROUP_ROWS * BLOCKS * KQ4_GROUP_BLOCK);
    float *xf = malloc(COLS * sizeof(float));
    int16_t *q = malloc(COLS * sizeof(int16_t));
    float *d = malloc(BLOCKS * sizeof(float));
    int32_t *bsums = malloc(COLS / 16 * sizeof(int32_t));
    uint8_t *act = aligned_alloc(64, 4096 + COLS * 3);
    out = malloc(rows * sizeof(float));
    float *first = malloc(rows * sizeof(float));
    if (!rows_in_place || !rows_repacked || !xf || !q || !d || !bsums || !act || !out || !first) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint32_t seed = 12345;
    for (size_t i = 0; i < bytes; i++) {
        seed = seed * 1664525u + 1013904223u;
        rows_in_place[i] = (uint8_t) (seed >> 24);
    }
    for (size_t r = 0; r < rows; r++) {  // finite F16 d and dmin in [2^-7, 2^-6)
        for (int b = 0; b < BLOCKS; b++) {
            uint16_t h = (uint16_t) (0x2000 + (r * 7 + (size_t) b * 13) % 1024);
            memcpy(rows_in_place + r * ROW_BYTES + (size_t) b * 144, &h, 2);
            h = (uint16_t) (0x2000 + (r * 11 + (size_t) b * 5) % 1024);
            memcpy(rows_in_place + r * ROW_BYTES + (size_t) b * 144 + 2, &h, 2);
        }
    }
    kz_q4k_repack(rows_in_place, ROW_BYTES, (int) (rows / KQ4_GROUP_ROWS), BLOCKS, rows_repacked);
    for (int i = 0; i < COLS; i++) {
        seed = seed * 1664525u + 1013904223u;
        xf[i] = (float) ((int32_t) seed) / 2147483648.0f * (1 + i % 7);
    }
    quantize_q8k(xf, COLS, q, d, bsums, act);
    x = kq8_at((jlong) (intptr_t) act, COLS);
    repacked = 0;
    run(1);
    memcpy(first, out, rows * sizeof(float));
    repacked = 1;
    run(1);
    int same = memcmp(first, out, rows * sizeof(float)) == 0;
    printf("{\"rows\":%zu,\"weight_mb\":%.1f,\"task_rows\":%zu,\"threads\":%d,\"same_bits\":%s}\n", rows, bytes / 1e6,
           task_rows, threads, same ? "true" : "false");
    for (int round = 0; round < 6; round++) {
        for (repacked = 0; repacked < 2; repacked++) {
            double t0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
            run(threads);
            double dt = seconds(CLOCK_MONOTONIC) - t0, dc = seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
            printf("{\"round\":%d,\"layout\":\"%s\",\"threads\":%d,\"gb_per_s\":%.1f,\"gb_per_cpu_s\":%.1f}\n", round,
                   repacked ? "repacked-16" : "in-place", threads, bytes / dt / 1e9, bytes / dc / 1e9);
        }
    }
    return same ? 0 : 1;
}
