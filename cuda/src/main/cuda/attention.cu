// Attention over the paged KV pool. A physical block holds block_tokens positions of one sequence
// for every layer: [layer][K|V][token][kv_heads * head_dim] (io.moestream.runtime.backend.KvLayout).
// Row r of the batch belongs to sequence row_seq[r] and sees its positions 0..row_len[r]-1; the
// sequence's logical block i is physical block tables[row_seq[r] * table_width + i].
//
// Split-K (flash-decoding): attention_partial_* gives each (head, row, split) one block of
// ATT_WARPS warps that walks its share of positions with an online softmax; attention_reduce merges
// the splits. Elements are F32 or F16 (the KV codec).
#include "common.cuh"

#define ATT_WARPS 4
#define MAX_PER_LANE 8 // head_dim <= 256

template <typename T> __device__ __forceinline__ float kv_load(const T* p);
template <> __device__ __forceinline__ float kv_load<float>(const float* p) { return *p; }
template <> __device__ __forceinline__ float kv_load<__half>(const __half* p) { return __half2float(*p); }

template <typename T> __device__ __forceinline__ T kv_from_float(float v);
template <> __device__ __forceinline__ float kv_from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half kv_from_float<__half>(float v) { return __float2half_rn(v); }

// Element offset of (slot, layer, kv, 0) in the pool.
__device__ __forceinline__ size_t kv_offset(int slot, int layer, int kv, int layers, int block_tokens, int kv_dim) {
    size_t block = slot / block_tokens;
    int off = slot % block_tokens;
    return ((block * layers + layer) * 2 + kv) * (size_t) block_tokens * kv_dim + (size_t) off * kv_dim;
}

template <typename T>
__device__ void kv_store(T* __restrict__ pool, const float* __restrict__ k, const float* __restrict__ v,
                         const int* __restrict__ slots, int layer, int layers, int block_tokens, int kv_dim) {
    int row = blockIdx.x;
    int slot = slots[row];
    T* kd = pool + kv_offset(slot, layer, 0, layers, block_tokens, kv_dim);
    T* vd = pool + kv_offset(slot, layer, 1, layers, block_tokens, kv_dim);
    for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
        kd[i] = kv_from_float<T>(k[(size_t) row * kv_dim + i]);
        vd[i] = kv_from_float<T>(v[(size_t) row * kv_dim + i]);
    }
}

extern "C" __global__ void kv_store_f32(float* pool, const float* k, const float* v, const int* slots, int layer, int layers,
                                        int block_tokens, int kv_dim) {
    kv_store<float>(pool, k, v, slots, layer, layers, block_tokens, kv_dim);
}

extern "C" __global__ void kv_store_f16(__half* pool, const float* k, const float* v, const int* slots, int layer, int layers,
                                        int block_tokens, int kv_dim) {
    kv_store<__half>(pool, k, v, slots, layer, layers, block_tokens, kv_dim);
}

// partial[((row * heads + h) * splits + s) * (head_dim + 2) + ...] = {max, sum, o[head_dim]} (o unnormalised).
template <typename T>
__device__ void attention_partial(const float* __restrict__ q, const T* __restrict__ pool, const int* __restrict__ row_seq,
                                  const int* __restrict__ row_len, const int* __restrict__ tables, float* __restrict__ partial,
                                  int layer, int layers, int heads, int kv_heads, int head_dim, int block_tokens,
                                  int table_width, int chunk, float scale) {
    __shared__ float s_m[ATT_WARPS];
    __shared__ float s_l[ATT_WARPS];
    __shared__ float s_o[ATT_WARPS][MAX_PER_LANE * WARP];
    int h = blockIdx.x;
    int row = blockIdx.y;
    int split = blockIdx.z;
    int splits = gridDim.z;
    int warp = threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    int kv_dim = kv_heads * head_dim;
    int kvh = h / (heads / kv_heads);
    int len = row_len[row];
    const int* table = tables + (size_t) row_seq[row] * table_width;
    int begin = split * chunk;
    int end = min(len, begin + chunk);

    float qv[MAX_PER_LANE];
    float o[MAX_PER_LANE];
#pragma unroll
    for (int m = 0; m < MAX_PER_LANE; m++) {
        int i = lane + m * WARP;
        qv[m] = i < head_dim ? q[(size_t) row * heads * head_dim + h * head_dim + i] : 0.f;
        o[m] = 0.f;
    }
    float mx = -INFINITY;
    float l = 0.f;
    for (int t = begin + warp; t < end; t += ATT_WARPS) {
        int slot = table[t / block_tokens] * block_tokens + t % block_tokens;
        const T* kp = pool + kv_offset(slot, layer, 0, layers, block_tokens, kv_dim) + kvh * head_dim;
        const T* vp = pool + kv_offset(slot, layer, 1, layers, block_tokens, kv_dim) + kvh * head_dim;
        float s = 0.f;
#pragma unroll
        for (int m = 0; m < MAX_PER_LANE; m++) {
            int i = lane + m * WARP;
            if (i < head_dim) s += qv[m] * kv_load<T>(kp + i);
        }
        s = warp_sum(s) * scale;
        float mn = fmaxf(mx, s);
        float corr = expf(mx - mn);
        float p = expf(s - mn);
        l = l * corr + p;
#pragma unroll
        for (int m = 0; m < MAX_PER_LANE; m++) {
            int i = lane + m * WARP;
            if (i < head_dim) o[m] = o[m] * corr + p * kv_load<T>(vp + i);
        }
        mx = mn;
    }
    if (lane == 0) {
        s_m[warp] = mx;
        s_l[warp] = l;
    }
#pragma unroll
    for (int m = 0; m < MAX_PER_LANE; m++) s_o[warp][lane + m * WARP] = o[m];
    __syncthreads();
    float M = -INFINITY;
    for (int w = 0; w < ATT_WARPS; w++) M = fmaxf(M, s_m[w]);
    float* out = partial + (((size_t) row * heads + h) * splits + split) * (head_dim + 2);
    for (int i = threadIdx.x; i < head_dim; i += blockDim.x) {
        float acc = 0.f;
        for (int w = 0; w < ATT_WARPS; w++) {
            if (s_m[w] != -INFINITY) acc += s_o[w][i] * expf(s_m[w] - M);
        }
        out[2 + i] = acc;
    }
    if (threadIdx.x == 0) {
        float L = 0.f;
        for (int w = 0; w < ATT_WARPS; w++) {
            if (s_m[w] != -INFINITY) L += s_l[w] * expf(s_m[w] - M);
        }
        out[0] = M;
        out[1] = L;
    }
}

extern "C" __global__ void attention_partial_f32(const float* q, const float* pool, const int* row_seq, const int* row_len,
                                                 const int* tables, float* partial, int layer, int layers, int heads,
                                                 int kv_heads, int head_dim, int block_tokens, int table_width, int chunk,
                                                 float scale) {
    attention_partial<float>(q, pool, row_seq, row_len, tables, partial, layer, layers, heads, kv_heads, head_dim,
                             block_tokens, table_width, chunk, scale);
}

extern "C" __global__ void attention_partial_f16(const float* q, const __half* pool, const int* row_seq, const int* row_len,
                                                 const int* tables, float* partial, int layer, int layers, int heads,
                                                 int kv_heads, int head_dim, int block_tokens, int table_width, int chunk,
                                                 float scale) {
    attention_partial<__half>(q, pool, row_seq, row_len, tables, partial, layer, layers, heads, kv_heads, head_dim,
                              block_tokens, table_width, chunk, scale);
}

// Merges the splits of (head, row): out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M).
extern "C" __global__ void attention_reduce(const float* __restrict__ partial, float* __restrict__ out, int heads,
                                            int head_dim, int splits) {
    int h = blockIdx.x;
    int row = blockIdx.y;
    const float* p = partial + ((size_t) row * heads + h) * splits * (head_dim + 2);
    float M = -INFINITY;
    for (int s = 0; s < splits; s++) M = fmaxf(M, p[s * (head_dim + 2)]);
    float L = 0.f;
    for (int s = 0; s < splits; s++) {
        float m = p[s * (head_dim + 2)];
        if (m != -INFINITY) L += p[s * (head_dim + 2) + 1] * expf(m - M);
    }
    for (int i = threadIdx.x; i < head_dim; i += blockDim.x) {
        float acc = 0.f;
        for (int s = 0; s < splits; s++) {
            float m = p[s * (head_dim + 2)];
            if (m != -INFINITY) acc += p[s * (head_dim + 2) + 2 + i] * expf(m - M);
        }
        out[(size_t) row * heads * head_dim + h * head_dim + i] = acc / L;
    }
}
