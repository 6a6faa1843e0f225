// Q4_K or Q5_K single-activation row product, two weight layouts, same numbers (docs/benchmarks.md,
// "Q4_K and Q5_K at batch 1, rows repacked sixteen at a time"): the runtime's AVX-512 kernels
// (model-runtime/src/main/c/kquant_zmm.h) on rows in place (GGUF layout; kz_q4k_one: four row
// streams per task, kz_q5k: row after row) and kz_q4k_groups / kz_q5k_groups on the same rows
// repacked sixteen at a time by kz_q4k_repack / kz_q5k_repack. Checks that both give the same
// bits, then prints GB/s of the file's bytes per layout and round, the layouts alternating.
// Build and run: benchmarks/native/run-kquant-layout.sh [q4_k|q5_k] [THREADS] [MB] [TASK_ROWS]
#include "moestream_kernels.c"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

enum { BLOCKS = 8, COLS = BLOCKS * 256 };  // rows of 2048 columns, as in bench-moe
static size_t ROW_BYTES, GROUP_BLOCK;
static int q5;
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
            (q5 ? kz_q5k_groups : kz_q4k_groups)(rows_repacked + r0 / KQ4_GROUP_ROWS * BLOCKS * GROUP_BLOCK,
                                                 (int) (task_rows / KQ4_GROUP_ROWS), BLOCKS, x, out + r0);
        } else {
            kz_rows(q5 ? KQ_Q5_K : KQ_Q4_K, 0, rows_in_place + r0 * ROW_BYTES, ROW_BYTES, (int) task_rows, BLOCKS, &x, 1,
                    out + r0);
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
    q5 = argc > 1 && strcmp(argv[1], "q5_k") == 0;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    size_t mb = argc > 3 ? (size_t) atol(argv[3]) : 160;
    if (argc > 4) {
        task_rows = (size_t) atol(argv[4]) / KQ4_GROUP_ROWS * KQ4_GROUP_ROWS;
    }
    if ((argc > 1 && !q5 && strcmp(argv[1], "q4_k") != 0) || threads < 1 || threads > 64 || task_rows < KQ4_GROUP_ROWS) {
        fprintf(stderr, "usage: kquant_layout [q4_k|q5_k] [threads 1-64] [MB] [task rows >= 16]\n");
        return 2;
    }
    ROW_BYTES = BLOCKS * (q5 ? 176 : 144);
    GROUP_BLOCK = q5 ? KQ5_GROUP_BLOCK : KQ4_GROUP_BLOCK;
    tasks = mb * 1000000 / ROW_BYTES / task_rows;
    size_t rows = tasks * task_rows, bytes = rows * ROW_BYTES;
    rows_in_place = aligned_alloc(64, bytes);
    rows_repacked = aligned_alloc(64, rows / KQ4_GROUP_ROWS * BLOCKS * GROUP_BLOCK);
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
            memcpy(rows_in_place + r * ROW_BYTES + (size_t) b * (ROW_BYTES / BLOCKS), &h, 2);
            h = (uint16_t) (0x2000 + (r * 11 + (size_t) b * 5) % 1024);
            memcpy(rows_in_place + r * ROW_BYTES + (size_t) b * (ROW_BYTES / BLOCKS) + 2, &h, 2);
        }
    }
    double r0 = seconds(CLOCK_MONOTONIC);
    (q5 ? kz_q5k_repack : kz_q4k_repack)(rows_in_place, ROW_BYTES, (int) (rows / KQ4_GROUP_ROWS), BLOCKS, rows_repacked);
    double repack_s = seconds(CLOCK_MONOTONIC) - r0;
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
    printf("{\"type\":\"%s\",\"rows\":%zu,\"weight_mb\":%.1f,\"task_rows\":%zu,\"threads\":%d,\"same_bits\":%s,\"repack_gb_per_s\":%.2f}\n",
           q5 ? "q5_k" : "q4_k", rows, bytes / 1e6, task_rows, threads, same ? "true" : "false", bytes / repack_s / 1e9);
    for (int round = 0; round < 6; round++) {
        for (repacked = 0; repacked < 2; repacked++) {
            double t0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
            run(threads);
            double dt = seconds(CLOCK_MONOTONIC) - t0, dc = seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
            printf("{\"type\":\"%s\",\"round\":%d,\"layout\":\"%s\",\"threads\":%d,\"gb_per_s\":%.1f,\"gb_per_cpu_s\":%.1f}\n", q5 ? "q5_k" : "q4_k", round,
                   repacked ? "repacked-16" : "in-place", threads, bytes / dt / 1e9, bytes / dc / 1e9);
        }
    }
    return same ? 0 : 1;
}
