// The paged KV pool and attention over it (io.moestream.runtime.backend.KvLayout, the CPU engine's
// block format). Every block holds block_tokens (B) positions of one sequence for every layer, one
// slab per (layer, kv head), slabs in order layer * kv_heads + head, each slab its K section then its
// V section:
//   open blocks   float32, sections [B][head_dim]: the positions of a block that is not full yet;
//   sealed blocks the KV codec (KV_F32, KV_F16: [B][head_dim] elements; KV_INT8, KV_INT4: KIVI, f16
//                 scales, f16 mins, codes; keys grouped per channel over G tokens, values per token
//                 over G channels; int4 packs channel 2j in the low nibble of byte j).
// Row r of a batch belongs to sequence row_seq[r] and sees positions 0..row_len[r]-1; with
// p = row_len[r] - 1, positions of blocks before p's block come from the sealed blocks of the
// sequence's table (tables[row_seq[r] * table_width + i]), p's own block from open block row_open[r].
//
// kv_store writes float rows into open blocks; kv_seal_<codec> compresses full open blocks, one layer
// at a time, exactly as the CPU's HeadSlab.seal (min rounded down and scale up to f16, nearest code;
// no fused multiply-adds so the codes match bit for bit). Split-K (flash-decoding):
// attention_partial_<codec> gives each (head, row, split) one block of ATT_WARPS warps that walks its
// share of positions with an online softmax, dequantizing sealed elements in the loop;
// attention_reduce merges the splits.
#include "common.cuh"

#define ATT_WARPS 4
#define MAX_PER_LANE 8 // head_dim <= 256

#define KV_F32 0
#define KV_F16 1
#define KV_INT8 2
#define KV_INT4 3

// Float offset of (block, layer, head, K|V, token 0) in the open blocks.
__device__ __forceinline__ size_t open_offset(int block, int layer, int head, int kv, int layers, int kv_heads, int block_tokens,
                                              int head_dim) {
    return ((((size_t) block * layers + layer) * kv_heads + head) * 2 + kv) * (size_t) block_tokens * head_dim;
}

// Byte offset of (block, layer, head)'s K section in the sealed blocks; its V section follows.
__device__ __forceinline__ size_t sealed_offset(int block, int layer, int head, int kv_heads, size_t block_bytes,
                                                size_t section_bytes) {
    return (size_t) block * block_bytes + 2 * ((size_t) layer * kv_heads + head) * section_bytes;
}

// Element (t, i) of a sealed K (kv = 0) or V (kv = 1) section, dequantized: min + scale * code.
template <int C>
__device__ __forceinline__ float sealed_load(const uint8_t* __restrict__ sec, int kv, int t, int i, int block_tokens, int head_dim,
                                             int group) {
    if (C == KV_F32) return reinterpret_cast<const float*>(sec)[t * head_dim + i];
    if (C == KV_F16) return f16_bits_to_float(reinterpret_cast<const uint16_t*>(sec)[t * head_dim + i]);
    int groups = kv == 0 ? (block_tokens / group) * head_dim : block_tokens * (head_dim / group);
    int g = kv == 0 ? (t / group) * head_dim + i : t * (head_dim / group) + i / group;
    const uint16_t* scale = reinterpret_cast<const uint16_t*>(sec);
    const uint16_t* mn = scale + groups;
    const uint8_t* codes = reinterpret_cast<const uint8_t*>(mn + groups);
    int e = t * head_dim + i;
    int code = C == KV_INT8 ? codes[e] : (codes[e >> 1] >> ((e & 1) * 4)) & 0xf;
    return f16_bits_to_float(mn[g]) + f16_bits_to_float(scale[g]) * (float) code;
}

// One block per row: k and v (rows, kv_heads * head_dim) into open slots (open block * B + offset).
extern "C" __global__ void kv_store(float* __restrict__ open, const float* __restrict__ k, const float* __restrict__ v,
                                   const int* __restrict__ slots, int layer, int layers, int kv_heads, int head_dim,
                                   int block_tokens) {
    int row = blockIdx.x;
    int slot = slots[row];
    int block = slot / block_tokens;
    int t = slot % block_tokens;
    int kv_dim = kv_heads * head_dim;
    for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
        int h = i / head_dim;
        int d = i % head_dim;
        size_t o = open_offset(block, layer, h, 0, layers, kv_heads, block_tokens, head_dim) + (size_t) t * head_dim + d;
        open[o] = k[(size_t) row * kv_dim + i];
        open[o + (size_t) block_tokens * head_dim] = v[(size_t) row * kv_dim + i];
    }
}

// f16 bits of the largest half <= x (HeadSlab's Half.floor) and of the smallest half >= x >= 0.
__device__ __forceinline__ uint16_t half_floor(float x) { return __half_as_ushort(__float2half_rd(x)); }
__device__ __forceinline__ uint16_t half_ceil(float x) { return __half_as_ushort(__float2half_ru(x)); }

// Java's Math.round(float) (half up), exact for |v| < 2^23.
__device__ __forceinline__ int round_half_up(float v) {
    float f = floorf(v);
    return (int) f + (__fsub_rn(v, f) >= 0.5f ? 1 : 0);
}

// The nearest code of x for group (m, sc) as HeadSlab.IntSlab.code, in the same float operations.
__device__ __forceinline__ int kivi_code(float x, float m, float sc, float inv, int qmax) {
    if (sc == 0.f) return 0;
    int c = round_half_up(__fmul_rn(__fsub_rn(x, m), inv));
    float here = fabsf(__fsub_rn(x, __fadd_rn(m, __fmul_rn((float) c, sc))));
    if (c < qmax && fabsf(__fsub_rn(x, __fadd_rn(m, __fmul_rn((float) (c + 1), sc)))) < here) {
        c++;
    } else if (c > 0 && fabsf(__fsub_rn(x, __fadd_rn(m, __fmul_rn((float) (c - 1), sc)))) < here) {
        c--;
    }
    return max(0, min(qmax, c));
}

// Java's Math.min / Math.max (HeadSlab's group range): NaN propagates from either side and -0 < +0,
// where fminf/fmaxf drop a NaN and may return either zero.
__device__ __forceinline__ float java_min(float a, float b) {
    if (a != a) return a;
    if (a == 0.f && b == 0.f && signbit(b)) return b;
    return a <= b ? a : b;
}

__device__ __forceinline__ float java_max(float a, float b) {
    if (a != a) return a;
    if (a == 0.f && b == 0.f && signbit(a)) return b;
    return a >= b ? a : b;
}

// Scale and min of the values x[0], x[stride], ... (n of them): writes their f16 bits, returns (m, sc, inv).
__device__ __forceinline__ float3 kivi_group(const float* x, int n, int stride, int qmax, uint16_t* scale_out, uint16_t* min_out) {
    float lo = INFINITY;
    float hi = -INFINITY;
    for (int j = 0; j < n; j++) {
        lo = java_min(lo, x[j * stride]);
        hi = java_max(hi, x[j * stride]);
    }
    uint16_t m16 = half_floor(lo);
    float m = f16_bits_to_float(m16);
    uint16_t s16 = half_ceil(__fdiv_rn(__fsub_rn(hi, m), (float) qmax));
    float sc = f16_bits_to_float(s16);
    *min_out = m16;
    *scale_out = s16;
    return make_float3(m, sc, sc == 0.f ? 0.f : __fdiv_rn(1.f, sc));
}

// Grid (seals, kv_heads): compresses (layer, head) of open block seals[2s] into sealed block seals[2s+1].
template <int C>
__device__ void kv_seal(const float* __restrict__ open, uint8_t* __restrict__ sealed, const int* __restrict__ seals, int layer,
                        int layers, int kv_heads, int head_dim, int block_tokens, int group, size_t block_bytes,
                        size_t section_bytes) {
    int h = blockIdx.y;
    const float* ok = open + open_offset(seals[2 * blockIdx.x], layer, h, 0, layers, kv_heads, block_tokens, head_dim);
    const float* ov = ok + (size_t) block_tokens * head_dim;
    uint8_t* sk = sealed + sealed_offset(seals[2 * blockIdx.x + 1], layer, h, kv_heads, block_bytes, section_bytes);
    uint8_t* sv = sk + section_bytes;
    int n = block_tokens * head_dim;
    if (C == KV_F32 || C == KV_F16) {
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            if (C == KV_F32) {
                reinterpret_cast<float*>(sk)[i] = ok[i];
                reinterpret_cast<float*>(sv)[i] = ov[i];
            } else {
                reinterpret_cast<__half*>(sk)[i] = __float2half_rn(ok[i]);
                reinterpret_cast<__half*>(sv)[i] = __float2half_rn(ov[i]);
            }
        }
        return;
    }
    const int qmax = C == KV_INT8 ? 255 : 15;
    const int pack = C == KV_INT8 ? 1 : 2; // channels per thread: an int4 byte is written by one thread
    // keys: per channel c, tokens [gi * G, gi * G + G)
    int kGroups = (block_tokens / group) * head_dim;
    uint16_t* kScale = reinterpret_cast<uint16_t*>(sk);
    uint16_t* kMin = kScale + kGroups;
    uint8_t* kCodes = reinterpret_cast<uint8_t*>(kMin + kGroups);
    for (int w = threadIdx.x; w < (block_tokens / group) * (head_dim / pack); w += blockDim.x) {
        int gi = w / (head_dim / pack);
        int c0 = (w % (head_dim / pack)) * pack;
        float3 p[2];
        for (int j = 0; j < pack; j++) {
            int c = c0 + j;
            p[j] = kivi_group(ok + (size_t) gi * group * head_dim + c, group, head_dim, qmax, &kScale[gi * head_dim + c],
                              &kMin[gi * head_dim + c]);
        }
        for (int t = gi * group; t < gi * group + group; t++) {
            int e = t * head_dim + c0;
            int a = kivi_code(ok[e], p[0].x, p[0].y, p[0].z, qmax);
            if (C == KV_INT8) {
                kCodes[e] = (uint8_t) a;
            } else {
                int b = kivi_code(ok[e + 1], p[1].x, p[1].y, p[1].z, qmax);
                kCodes[e >> 1] = (uint8_t) (a | (b << 4));
            }
        }
    }
    // values: per token t, channels [gi * G, gi * G + G)
    int gpt = head_dim / group;
    int vGroups = block_tokens * gpt;
    uint16_t* vScale = reinterpret_cast<uint16_t*>(sv);
    uint16_t* vMin = vScale + vGroups;
    uint8_t* vCodes = reinterpret_cast<uint8_t*>(vMin + vGroups);
    for (int w = threadIdx.x; w < vGroups; w += blockDim.x) {
        int t = w / gpt;
        int gi = w % gpt;
        const float* x = ov + (size_t) t * head_dim + gi * group;
        float3 p = kivi_group(x, group, 1, qmax, &vScale[w], &vMin[w]);
        for (int c = 0; c < group; c += pack) {
            int e = t * head_dim + gi * group + c;
            int a = kivi_code(x[c], p.x, p.y, p.z, qmax);
            if (C == KV_INT8) {
                vCodes[e] = (uint8_t) a;
            } else {
                int b = kivi_code(x[c + 1], p.x, p.y, p.z, qmax);
                vCodes[e >> 1] = (uint8_t) (a | (b << 4));
            }
        }
    }
}

#define KV_SEAL(NAME, C)                                                                                                      \
    extern "C" __global__ void NAME(const float* open, uint8_t* sealed, const int* seals, int layer, int layers, int kv_heads, \
                                    int head_dim, int block_tokens, int group, size_t block_bytes, size_t section_bytes) {      \
        kv_seal<C>(open, sealed, seals, layer, layers, kv_heads, head_dim, block_tokens, group, block_bytes, section_bytes);     \
    }
KV_SEAL(kv_seal_f32, KV_F32)
KV_SEAL(kv_seal_f16, KV_F16)
KV_SEAL(kv_seal_int8, KV_INT8)
KV_SEAL(kv_seal_int4, KV_INT4)

// partial[((row * heads + h) * splits + s) * (head_dim + 2) + ...] = {max, sum, o[head_dim]} (o unnormalised).
template <int C>
__device__ void attention_partial(const float* __restrict__ q, const uint8_t* __restrict__ sealed, const float* __restrict__ open,
                                  const int* __restrict__ row_seq, const int* __restrict__ row_len, const int* __restrict__ tables,
                                  const int* __restrict__ row_open, float* __restrict__ partial, int layer, int layers, int heads,
                                  int kv_heads, int head_dim, int block_tokens, int group, int table_width, int chunk, float scale,
                                  size_t block_bytes, size_t section_bytes, int window) {
    __shared__ float s_m[ATT_WARPS];
    __shared__ float s_l[ATT_WARPS];
    __shared__ float s_o[ATT_WARPS][MAX_PER_LANE * WARP];
    int h = blockIdx.x;
    int row = blockIdx.y;
    int split = blockIdx.z;
    int splits = gridDim.z;
    int warp = threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    int kvh = h / (heads / kv_heads);
    int len = row_len[row];
    int cur = (len - 1) / block_tokens; // the row's own block: open
    const int* table = tables + (size_t) row_seq[row] * table_width;
    const float* ok = open + open_offset(row_open[row], layer, kvh, 0, layers, kv_heads, block_tokens, head_dim);
    const float* ov = ok + (size_t) block_tokens * head_dim;
    int begin = split * chunk;
    int end = min(len, begin + chunk);
    if (window > 0) begin = max(begin, len - window); // a sliding-window layer sees its last window positions

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
        int b = t / block_tokens;
        int tt = t % block_tokens;
        const uint8_t* sk = b < cur ? sealed + sealed_offset(table[b], layer, kvh, kv_heads, block_bytes, section_bytes) : nullptr;
        float s = 0.f;
#pragma unroll
        for (int m = 0; m < MAX_PER_LANE; m++) {
            int i = lane + m * WARP;
            if (i < head_dim) {
                float kx = b < cur ? sealed_load<C>(sk, 0, tt, i, block_tokens, head_dim, group) : ok[tt * head_dim + i];
                s += qv[m] * kx;
            }
        }
        s = warp_sum(s) * scale;
        float mn = fmaxf(mx, s);
        float corr = expf(mx - mn);
        float p = expf(s - mn);
        l = l * corr + p;
#pragma unroll
        for (int m = 0; m < MAX_PER_LANE; m++) {
            int i = lane + m * WARP;
            if (i < head_dim) {
                float vx = b < cur ? sealed_load<C>(sk + section_bytes, 1, tt, i, block_tokens, head_dim, group)
                                   : ov[tt * head_dim + i];
                o[m] = o[m] * corr + p * vx;
            }
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

#define ATTENTION_PARTIAL(NAME, C)                                                                                             \
    extern "C" __global__ void NAME(const float* q, const uint8_t* sealed, const float* open, const int* row_seq,             \
                                    const int* row_len, const int* tables, const int* row_open, float* partial, int layer,   \
                                    int layers, int heads, int kv_heads, int head_dim, int block_tokens, int group,          \
                                    int table_width, int chunk, float scale, size_t block_bytes, size_t section_bytes,       \
                                    int window) {                                                                            \
        attention_partial<C>(q, sealed, open, row_seq, row_len, tables, row_open, partial, layer, layers, heads, kv_heads,     \
                             head_dim, block_tokens, group, table_width, chunk, scale, block_bytes, section_bytes, window);    \
    }
ATTENTION_PARTIAL(attention_partial_f32, KV_F32)
ATTENTION_PARTIAL(attention_partial_f16, KV_F16)
ATTENTION_PARTIAL(attention_partial_int8, KV_INT8)
ATTENTION_PARTIAL(attention_partial_int4, KV_INT4)

// Merges the splits of (head, row): out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M). With attention
// sinks (sinks[h], one logit per head, or null) the sink takes part in the softmax without a value:
// M = max(M, sink) and the denominator gains e^(sink - M) (CpuMath's maskedSoftmax with a sink).
extern "C" __global__ void attention_reduce(const float* __restrict__ partial, float* __restrict__ out, int heads,
                                            int head_dim, int splits, const float* __restrict__ sinks) {
    int h = blockIdx.x;
    int row = blockIdx.y;
    const float* p = partial + ((size_t) row * heads + h) * splits * (head_dim + 2);
    float M = -INFINITY;
    for (int s = 0; s < splits; s++) M = fmaxf(M, p[s * (head_dim + 2)]);
    if (sinks != nullptr) M = M > sinks[h] ? M : sinks[h];
    float L = sinks != nullptr ? expf(sinks[h] - M) : 0.f;
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
