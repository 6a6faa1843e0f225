// The loops shared by every product kernel (matmul.cu, matmul_blocks.cu): one warp per weight row,
// each pass of the warp over the row serving up to TILE input rows. TILE_CALL accumulates
// acc[j] += W[row] . x[xr[j]] over the warp's lanes.
#pragma once
#include "common.cuh"

// Each TILE of input rows [b0, b0 + cnt) against weight row `row`; results out[b][row].
#define MATMUL_BODY(TILE_CALL)                                                                     \
    int lane = threadIdx.x % WARP;                                                                 \
    int row = blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / WARP;                                   \
    if (row >= rows) return;                                                                       \
    for (int b0 = 0; b0 < n; b0 += TILE) {                                                         \
        int cnt = min(TILE, n - b0);                                                               \
        int xr[TILE];                                                                              \
        _Pragma("unroll") for (int j = 0; j < TILE; j++) xr[j] = b0 + min(j, cnt - 1);             \
        float acc[TILE] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};                                \
        TILE_CALL;                                                                                 \
        _Pragma("unroll") for (int j = 0; j < TILE; j++) {                                         \
            float s = warp_sum(acc[j]);                                                            \
            if (j < cnt && lane == 0) out[(size_t) (b0 + j) * rows + row] = s;                     \
        }                                                                                          \
    }

// Block (row tile, expert e): the rows of expert e's matrix against the inputs of its assignments.
// x row of assignment a is a (per_assignment) or a / k (per token); out[a][row].
#define EXPERT_BODY(TILE_CALL)                                                                     \
    int lane = threadIdx.x % WARP;                                                                 \
    int row = blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / WARP;                                   \
    int e = blockIdx.y;                                                                            \
    if (row >= rows) return;                                                                       \
    int begin = offsets[e];                                                                        \
    int end = offsets[e + 1];                                                                      \
    size_t erow = (size_t) e * rows + row;                                                         \
    for (int a0 = begin; a0 < end; a0 += TILE) {                                                   \
        int cnt = min(TILE, end - a0);                                                             \
        int xr[TILE];                                                                              \
        int as[TILE];                                                                              \
        _Pragma("unroll") for (int j = 0; j < TILE; j++) {                                         \
            as[j] = assign[a0 + min(j, cnt - 1)];                                                  \
            xr[j] = per_assignment ? as[j] : as[j] / k;                                            \
        }                                                                                          \
        float acc[TILE] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};                                \
        TILE_CALL;                                                                                 \
        _Pragma("unroll") for (int j = 0; j < TILE; j++) {                                         \
            float s = warp_sum(acc[j]);                                                            \
            if (j < cnt && lane == 0) out[(size_t) as[j] * rows + row] = s;                        \
        }                                                                                          \
    }

