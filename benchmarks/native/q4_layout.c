// Q4_0 single-activation row product, two weight layouts, same numbers (docs/benchmarks.md,
// "Against llama.cpp on this machine"): the runtime's AVX-512 kernels (model-runtime/src/main/c)
// q4_rows_zmm on rows in place (GGUF layout, 18-byte blocks, eight row streams per task) and
// q4_groups_zmm on the same rows repacked eight at a time by q4_repack. Checks that both give the
// same bits, then prints weight GB/s per layout and round, the layouts alternating.
// Build and run: benchmarks/native/run-q4-layout.sh [THREADS] [MB] [TASK_ROWS]
#include "moestream_kernels.c"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>


enum { BLOCKS = 64, ROW_BYTES = BLOCKS * 18 };  // rows of 2048 columns, as in bench-moe
static uint8_t *rows_in_place, *rows_repacked;
static size_t task_rows = 512, tasks;
static int repacked;
static atomic_size_t next_task;
static act_t x;
static float *out;

static void *worker(void *arg) {
    (void) arg;
    size_t t;
    while ((t = atomic_fetch_add(&next_task, 1)) < tasks) {
        size_t r0 = t * task_rows;
        if (repacked) {
            q4_groups_zmm(rows_repacked + r0 * ROW_BYTES, (int) (task_rows / 8), BLOCKS, x, out + r0);
        } else {
            q4_rows_zmm(rows_in_place + r0 * ROW_BYTES, ROW_BYTES, (int) task_rows, BLOCKS, x, out + r0);
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
        task_rows = (size_t) atol(argv[3]) / 8 * 8;
    }
    if (threads < 1 || threads > 64 || task_rows < 8) {
        fprintf(stderr, "usage: q4_layout [threads 1-64] [MB] [task rows >= 8]\n");
        return 2;
    }
    tasks = mb * 1000000 / ROW_BYTES / task_rows;
    size_t rows = tasks * task_rows, bytes = rows * ROW_BYTES;
    rows_in_place = malloc(bytes + 64);
    rows_repacked = malloc(bytes + 64);
    int8_t *act = malloc(BLOCKS * 40);
    out = malloc(rows * sizeof(float));
    float *first = malloc(rows * sizeof(float));
    if (!rows_in_place || !rows_repacked || !act || !out || !first) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint32_t seed = 12345;
    for (size_t i = 0; i < bytes; i++) {
        seed = seed * 1664525u + 1013904223u;
        rows_in_place[i] = (uint8_t) (seed >> 24);
    }
    for (size_t r = 0; r < rows; r++) {  // finite F16 scales in [2^-3, 2^-2)
        for (int b = 0; b < BLOCKS; b++) {
            uint16_t h = (uint16_t) (0x3000 + (r * 7 + (size_t) b * 13) % 1024);
            memcpy(rows_in_place + r * ROW_BYTES + (size_t) b * 18, &h, 2);
        }
    }
    q4_repack(rows_in_place, ROW_BYTES, (int) (rows / 8), BLOCKS, rows_repacked);
    x.q = act;
    x.d = (const float *) (act + BLOCKS * 32);
    x.s = (const int32_t *) (act + BLOCKS * 36);
    for (int b = 0; b < BLOCKS; b++) {
        int s = 0;
        for (int k = 0; k < 32; k++) {
            act[32 * b + k] = (int8_t) ((32 * b + k) * 37 % 255 - 127);
            s += act[32 * b + k];
        }
        ((float *) x.d)[b] = 0.01f * (float) (b + 1);
        ((int32_t *) x.s)[b] = s;
    }
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
                   repacked ? "repacked-8" : "in-place", threads, bytes / dt / 1e9, bytes / dc / 1e9);
        }
    }
    return same ? 0 : 1;
}
