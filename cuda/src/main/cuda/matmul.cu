// Matrix-vector and small-batch products out[b][r] = W[r] . x[b] on F32, F16, BF16, Q8_0 and Q4_0
// weights, and the expert-grouped products of batched MoE. One warp per weight row; each pass of
// the warp over the row serves up to TILE input rows, so the row is read once per TILE inputs.
//
// Weight layouts on the device (io.moestream.cuda.WeightPacking):
//   F32/F16/BF16: rows of cols elements, as in GGUF.
//   Q8_0: int8 quants [rows][cols], then F16 scales [rows][cols/32].
//   Q4_0: nibbles [rows][cols/32][16] (low nibble = value j, high = j + 16), then F16 scales.
// Expert stacks are experts consecutive matrices (each part of the layout is [experts * rows]...).
// Q8_0/Q4_0 products read the activation quantized by quantize_q8_0 (int8 [n][cols], float scale
// [n][cols/32]) and integer-dot it with dp4a, as llama.cpp's ggml_vec_dot_q8_0_q8_0 / q4_0_q8_0.
#include "products.cuh"

// ---- row . TILE inputs, per weight type -------------------------------------------------------

__device__ __forceinline__ void tile_f32(const float* __restrict__ w, int cols, const float* __restrict__ x,
                                         const int (&xr)[TILE], int cnt, float (&acc)[TILE], int lane) {
    if ((cols & 3) == 0) {
        const float4* w4 = reinterpret_cast<const float4*>(w);
        for (int c = lane; c < cols / 4; c += WARP) {
            float4 a = w4[c];
#pragma unroll
            for (int j = 0; j < TILE; j++) {
                if (j < cnt) {
                    float4 b = reinterpret_cast<const float4*>(x + (size_t) xr[j] * cols)[c];
                    acc[j] += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
                }
            }
        }
    } else {
        for (int c = lane; c < cols; c += WARP) {
            float a = w[c];
#pragma unroll
            for (int j = 0; j < TILE; j++) {
                if (j < cnt) acc[j] += a * x[(size_t) xr[j] * cols + c];
            }
        }
    }
}

// F16 (bf16 = false) or BF16 (bf16 = true) weights; the input is rounded to the same type first.
template <bool bf16>
__device__ __forceinline__ void tile_half(const uint16_t* __restrict__ w, int cols, const float* __restrict__ x,
                                          const int (&xr)[TILE], int cnt, float (&acc)[TILE], int lane) {
    if ((cols & 7) == 0) {
        const uint4* w8 = reinterpret_cast<const uint4*>(w);
        for (int c = lane; c < cols / 8; c += WARP) {
            uint4 raw = w8[c];
            const uint16_t* h = reinterpret_cast<const uint16_t*>(&raw);
            float wf[8];
#pragma unroll
            for (int e = 0; e < 8; e++) wf[e] = bf16 ? bf16_bits_to_float(h[e]) : f16_bits_to_float(h[e]);
#pragma unroll
            for (int j = 0; j < TILE; j++) {
                if (j < cnt) {
                    const float4* xp = reinterpret_cast<const float4*>(x + (size_t) xr[j] * cols) + 2 * c;
                    float4 b0 = xp[0];
                    float4 b1 = xp[1];
                    float xs[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
                    float s = 0.f;
#pragma unroll
                    for (int e = 0; e < 8; e++) s += wf[e] * (bf16 ? round_bf16(xs[e]) : round_f16(xs[e]));
                    acc[j] += s;
                }
            }
        }
    } else {
        for (int c = lane; c < cols; c += WARP) {
            float a = bf16 ? bf16_bits_to_float(w[c]) : f16_bits_to_float(w[c]);
#pragma unroll
            for (int j = 0; j < TILE; j++) {
                if (j < cnt) {
                    float b = x[(size_t) xr[j] * cols + c];
                    acc[j] += a * (bf16 ? round_bf16(b) : round_f16(b));
                }
            }
        }
    }
}

// Q8_0: each lane takes 16-byte chunks (half a block) of the row.
__device__ __forceinline__ void tile_q8_0(const int8_t* __restrict__ wq, const uint16_t* __restrict__ ws, int cols,
                                          const int8_t* __restrict__ xq, const float* __restrict__ xd,
                                          const int (&xr)[TILE], int cnt, float (&acc)[TILE], int lane) {
    int nb = cols / 32;
    const int4* w16 = reinterpret_cast<const int4*>(wq);
    for (int c = lane; c < nb * 2; c += WARP) {
        int blk = c >> 1;
        int4 a = w16[c];
        float dw = f16_bits_to_float(ws[blk]);
#pragma unroll
        for (int j = 0; j < TILE; j++) {
            if (j < cnt) {
                int4 b = reinterpret_cast<const int4*>(xq + (size_t) xr[j] * cols)[c];
                int s = dot4(a.x, b.x, 0);
                s = dot4(a.y, b.y, s);
                s = dot4(a.z, b.z, s);
                s = dot4(a.w, b.w, s);
                acc[j] += (float) s * (dw * xd[(size_t) xr[j] * nb + blk]);
            }
        }
    }
}

// Q4_0: each lane takes whole blocks (16 bytes of nibbles); values are nibble - 8.
__device__ __forceinline__ void tile_q4_0(const uint8_t* __restrict__ wq, const uint16_t* __restrict__ ws, int cols,
                                          const int8_t* __restrict__ xq, const float* __restrict__ xd,
                                          const int (&xr)[TILE], int cnt, float (&acc)[TILE], int lane) {
    int nb = cols / 32;
    const int4* w16 = reinterpret_cast<const int4*>(wq);
    for (int blk = lane; blk < nb; blk += WARP) {
        int4 a = w16[blk];
        float dw = f16_bits_to_float(ws[blk]);
        int lo[4] = {a.x & 0x0f0f0f0f, a.y & 0x0f0f0f0f, a.z & 0x0f0f0f0f, a.w & 0x0f0f0f0f};
        int hi[4] = {(a.x >> 4) & 0x0f0f0f0f, (a.y >> 4) & 0x0f0f0f0f, (a.z >> 4) & 0x0f0f0f0f, (a.w >> 4) & 0x0f0f0f0f};
#pragma unroll
        for (int j = 0; j < TILE; j++) {
            if (j < cnt) {
                const int4* xp = reinterpret_cast<const int4*>(xq + (size_t) xr[j] * cols) + 2 * blk;
                int4 b0 = xp[0]; // values 0..15
                int4 b1 = xp[1]; // values 16..31
                int s = dot4(lo[0], b0.x, 0);
                s = dot4(lo[1], b0.y, s);
                s = dot4(lo[2], b0.z, s);
                s = dot4(lo[3], b0.w, s);
                s = dot4(hi[0], b1.x, s);
                s = dot4(hi[1], b1.y, s);
                s = dot4(hi[2], b1.z, s);
                s = dot4(hi[3], b1.w, s);
                int sx = dot4(0x01010101, b0.x, 0);
                sx = dot4(0x01010101, b0.y, sx);
                sx = dot4(0x01010101, b0.z, sx);
                sx = dot4(0x01010101, b0.w, sx);
                sx = dot4(0x01010101, b1.x, sx);
                sx = dot4(0x01010101, b1.y, sx);
                sx = dot4(0x01010101, b1.z, sx);
                sx = dot4(0x01010101, b1.w, sx);
                acc[j] += (float) (s - 8 * sx) * (dw * xd[(size_t) xr[j] * nb + blk]);
            }
        }
    }
}

// ---- activation quantization ------------------------------------------------------------------

// One warp per 32-value block: d = amax / 127 (kept as the F16-rounded value), q = rint(x * 127 / amax).
extern "C" __global__ void quantize_q8_0(const float* __restrict__ x, int8_t* __restrict__ xq, float* __restrict__ xd,
                                         int blocks) {
    int blk = blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    if (blk >= blocks) return;
    float v = x[(size_t) blk * 32 + lane];
    float amax = warp_max(fabsf(v));
    float id = amax != 0.f ? 127.f / amax : 0.f;
    xq[(size_t) blk * 32 + lane] = (int8_t) __float2int_rn(v * id);
    if (lane == 0) xd[blk] = round_f16(amax / 127.f);
}

// ---- plain products -----------------------------------------------------------------------------

extern "C" __global__ void matmul_f32(const float* __restrict__ w, const float* __restrict__ x, float* __restrict__ out,
                                      int rows, int cols, int n) {
    MATMUL_BODY(tile_f32(w + (size_t) row * cols, cols, x, xr, cnt, acc, lane))
}

extern "C" __global__ void matmul_f16(const uint16_t* __restrict__ w, const float* __restrict__ x, float* __restrict__ out,
                                      int rows, int cols, int n) {
    MATMUL_BODY(tile_half<false>(w + (size_t) row * cols, cols, x, xr, cnt, acc, lane))
}

extern "C" __global__ void matmul_bf16(const uint16_t* __restrict__ w, const float* __restrict__ x, float* __restrict__ out,
                                       int rows, int cols, int n) {
    MATMUL_BODY(tile_half<true>(w + (size_t) row * cols, cols, x, xr, cnt, acc, lane))
}

extern "C" __global__ void matmul_q8_0(const int8_t* __restrict__ wq, const uint16_t* __restrict__ ws,
                                       const int8_t* __restrict__ xq, const float* __restrict__ xd, float* __restrict__ out,
                                       int rows, int cols, int n) {
    MATMUL_BODY(tile_q8_0(wq + (size_t) row * cols, ws + (size_t) row * (cols / 32), cols, xq, xd, xr, cnt, acc, lane))
}

extern "C" __global__ void matmul_q4_0(const uint8_t* __restrict__ wq, const uint16_t* __restrict__ ws,
                                       const int8_t* __restrict__ xq, const float* __restrict__ xd, float* __restrict__ out,
                                       int rows, int cols, int n) {
    MATMUL_BODY(tile_q4_0(wq + (size_t) row * (cols / 2), ws + (size_t) row * (cols / 32), cols, xq, xd, xr, cnt, acc, lane))
}

// ---- expert-grouped products --------------------------------------------------------------------

// Groups the n*k assignments by expert (stable): assignments of expert e are
// assign[offsets[e] .. offsets[e+1]). One block; shared memory (experts + 1) ints.
extern "C" __global__ void moe_group(const int* __restrict__ ids, int assignments, int experts,
                                     int* __restrict__ offsets, int* __restrict__ assign) {
    extern __shared__ int start[];
    for (int e = threadIdx.x; e < experts; e += blockDim.x) {
        int c = 0;
        for (int a = 0; a < assignments; a++) c += ids[a] == e;
        start[e + 1] = c;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        start[0] = 0;
        for (int e = 0; e < experts; e++) start[e + 1] += start[e];
        for (int e = 0; e <= experts; e++) offsets[e] = start[e];
    }
    __syncthreads();
    for (int e = threadIdx.x; e < experts; e += blockDim.x) {
        int p = start[e];
        for (int a = 0; a < assignments; a++) {
            if (ids[a] == e) assign[p++] = a;
        }
    }
}

extern "C" __global__ void expert_matmul_f32(const float* __restrict__ w, const float* __restrict__ x, float* __restrict__ out,
                                             const int* __restrict__ offsets, const int* __restrict__ assign,
                                             int rows, int cols, int k, int per_assignment) {
    EXPERT_BODY(tile_f32(w + erow * cols, cols, x, xr, cnt, acc, lane))
}

extern "C" __global__ void expert_matmul_f16(const uint16_t* __restrict__ w, const float* __restrict__ x, float* __restrict__ out,
                                             const int* __restrict__ offsets, const int* __restrict__ assign,
                                             int rows, int cols, int k, int per_assignment) {
    EXPERT_BODY(tile_half<false>(w + erow * cols, cols, x, xr, cnt, acc, lane))
}

extern "C" __global__ void expert_matmul_bf16(const uint16_t* __restrict__ w, const float* __restrict__ x, float* __restrict__ out,
                                              const int* __restrict__ offsets, const int* __restrict__ assign,
                                              int rows, int cols, int k, int per_assignment) {
    EXPERT_BODY(tile_half<true>(w + erow * cols, cols, x, xr, cnt, acc, lane))
}

extern "C" __global__ void expert_matmul_q8_0(const int8_t* __restrict__ wq, const uint16_t* __restrict__ ws,
                                              const int8_t* __restrict__ xq, const float* __restrict__ xd, float* __restrict__ out,
                                              const int* __restrict__ offsets, const int* __restrict__ assign,
                                              int rows, int cols, int k, int per_assignment) {
    EXPERT_BODY(tile_q8_0(wq + erow * cols, ws + erow * (cols / 32), cols, xq, xd, xr, cnt, acc, lane))
}

extern "C" __global__ void expert_matmul_q4_0(const uint8_t* __restrict__ wq, const uint16_t* __restrict__ ws,
                                              const int8_t* __restrict__ xq, const float* __restrict__ xd, float* __restrict__ out,
                                              const int* __restrict__ offsets, const int* __restrict__ assign,
                                              int rows, int cols, int k, int per_assignment) {
    EXPERT_BODY(tile_q4_0(wq + erow * (cols / 2), ws + erow * (cols / 32), cols, xq, xd, xr, cnt, acc, lane))
}
