// Products, expert-grouped products and embedding lookups for the block types read in their GGUF
// layout (blocks.cuh): Q2_K, Q3_K, Q4_K, Q5_K, Q6_K against the activation quantized to Q8_K
// (quantize_q8_k: int8 [n][cols], float scale [n][cols/256]), Q5_0, IQ4_NL, MXFP4 against it
// quantized to Q8_0 (quantize_q8_0 of matmul.cu), as llama.cpp's CPU backend does. Each lane takes
// 32-value sub-blocks of the row: the integer dot of the quants (dp4a) times the integer scales,
// then d_w * d_x (minus dmin_w * d_x * mins * activation sums for Q2_K, Q4_K, Q5_K).
#include "blocks.cuh"
#include "products.cuh"

// One warp per 256-value block: the element of largest |x| (the first on ties) gives
// iscale = -127 / max; q = min(127, rint(iscale * x)); d = 1 / iscale (ggml's quantize_row_q8_K).
extern "C" __global__ void quantize_q8_k(const float* __restrict__ x, int8_t* __restrict__ xq, float* __restrict__ xd,
                                         int blocks) {
    int blk = blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    if (blk >= blocks) return;
    const float* xb = x + (size_t) blk * 256;
    float amax = 0.f;
    int at = 256; // index of this lane's largest |x|, 256 when all are 0 (or NaN)
    for (int i = 0; i < 8; i++) {
        int idx = lane + 32 * i;
        float ax = fabsf(xb[idx]);
        if (ax > amax) {
            amax = ax;
            at = idx;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float a2 = __shfl_xor_sync(0xffffffffu, amax, o);
        int i2 = __shfl_xor_sync(0xffffffffu, at, o);
        if (a2 > amax || (a2 == amax && i2 < at)) {
            amax = a2;
            at = i2;
        }
    }
    int8_t* q = xq + (size_t) blk * 256;
    if (amax == 0.f) {
        for (int i = 0; i < 8; i++) q[lane + 32 * i] = 0;
        if (lane == 0) xd[blk] = 0.f;
        return;
    }
    float iscale = -127.f / xb[at];
    for (int i = 0; i < 8; i++) {
        int idx = lane + 32 * i;
        q[idx] = (int8_t) min(127, __float2int_rn(__fmul_rn(iscale, xb[idx])));
    }
    if (lane == 0) xd[blk] = 1.f / iscale;
}

// Row w (cols values in blocks of type T) against TILE activation rows.
template <int T>
__device__ __forceinline__ void tile_blocks(const uint8_t* __restrict__ w, int cols, const int8_t* __restrict__ xq,
                                            const float* __restrict__ xd, const int (&xr)[TILE], int cnt,
                                            float (&acc)[TILE], int lane) {
    constexpr int QK = BlockInfo<T>::values;
    constexpr int SUBS = QK / 32;
    int subs = cols / 32;
    int xblocks = cols / QK; // activation scales per row: Q8_K per 256 for the K-quants, Q8_0 per 32 otherwise
    for (int s = lane; s < subs; s += WARP) {
        const uint8_t* b = w + (size_t) (s / SUBS) * BlockInfo<T>::bytes;
        int j = s % SUBS;
        SubScales sc = sub_scales<T>(b, j);
        int wv[8];
        sub_pack<T>(b, j, wv);
#pragma unroll
        for (int r = 0; r < TILE; r++) {
            if (r < cnt) {
                acc[r] += sub_dot<T>(sc, wv, xq + (size_t) xr[r] * cols + 32 * s, xd[(size_t) xr[r] * xblocks + s / SUBS]);
            }
        }
    }
}

// matmul_<t> (w, xq, xd, out, rows, cols, n), expert_matmul_<t> (w, xq, xd, out, offsets, assign, rows,
// cols, k, per_assignment), embed_<t> (w, tokens, out, cols)
#define BLOCK_KERNELS(NAME, T)                                                                               \
    extern "C" __global__ void matmul_##NAME(const uint8_t* __restrict__ w, const int8_t* __restrict__ xq,  \
                                             const float* __restrict__ xd, float* __restrict__ out, int rows,   \
                                             int cols, int n) {                                                  \
        size_t rb = (size_t) (cols / BlockInfo<T>::values) * BlockInfo<T>::bytes;                               \
        MATMUL_BODY(tile_blocks<T>(w + (size_t) row * rb, cols, xq, xd, xr, cnt, acc, lane))                   \
    }                                                                                                            \
    extern "C" __global__ void expert_matmul_##NAME(const uint8_t* __restrict__ w, const int8_t* __restrict__ xq, \
                                                    const float* __restrict__ xd, float* __restrict__ out,       \
                                                    const int* __restrict__ offsets, const int* __restrict__ assign, \
                                                    int rows, int cols, int k, int per_assignment) {             \
        size_t rb = (size_t) (cols / BlockInfo<T>::values) * BlockInfo<T>::bytes;                               \
        EXPERT_BODY(tile_blocks<T>(w + erow * rb, cols, xq, xd, xr, cnt, acc, lane))                            \
    }                                                                                                            \
    extern "C" __global__ void embed_##NAME(const uint8_t* __restrict__ w, const int* __restrict__ tokens,        \
                                            float* __restrict__ out, int cols) {                                 \
        size_t rb = (size_t) (cols / BlockInfo<T>::values) * BlockInfo<T>::bytes;                               \
        const uint8_t* row = w + (size_t) tokens[blockIdx.x] * rb;                                              \
        for (int c = threadIdx.x; c < cols; c += blockDim.x) out[(size_t) blockIdx.x * cols + c] = dequant_value<T>(row, c); \
    }

BLOCK_KERNELS(q2_k, BT_Q2_K)
BLOCK_KERNELS(q3_k, BT_Q3_K)
BLOCK_KERNELS(q4_k, BT_Q4_K)
BLOCK_KERNELS(q5_k, BT_Q5_K)
BLOCK_KERNELS(q6_k, BT_Q6_K)
BLOCK_KERNELS(q5_0, BT_Q5_0)
BLOCK_KERNELS(iq4_nl, BT_IQ4_NL)
BLOCK_KERNELS(mxfp4, BT_MXFP4)
