// MoE routing and combine (io.moestream.runtime.backend.RouterSpec). route: one block per token,
// thread 0 runs the same serial steps as the CPU reference (the work is tiny next to the products):
// gating, bias for selection only, group limit by top-2 sums, top-k (ties to the lower id),
// weights, renormalisation, scale.
#include "common.cuh"

#define GATING_SOFTMAX 0
#define GATING_SIGMOID 1
#define GATING_SOFTMAX_AFTER_TOPK 2

// shared memory: 2 * experts floats + experts ints
extern "C" __global__ void route(const float* __restrict__ logits, const float* __restrict__ bias, int* __restrict__ ids,
                                 float* __restrict__ weights, int experts, int k, int gating, int normalize, float scale,
                                 int groups, int groups_used) {
    extern __shared__ float smem[];
    float* p = smem;
    float* sel = smem + experts;
    int* taken = reinterpret_cast<int*>(smem + 2 * experts);
    int t = blockIdx.x;
    const float* lg = logits + (size_t) t * experts;
    for (int e = threadIdx.x; e < experts; e += blockDim.x) {
        p[e] = lg[e];
        taken[e] = 0;
    }
    __syncthreads();
    if (threadIdx.x != 0) return;
    if (gating == GATING_SOFTMAX) {
        float mx = -INFINITY;
        for (int e = 0; e < experts; e++) mx = fmaxf(mx, p[e]);
        float sum = 0.f;
        for (int e = 0; e < experts; e++) {
            p[e] = expf(p[e] - mx);
            sum += p[e];
        }
        for (int e = 0; e < experts; e++) p[e] /= sum;
    } else if (gating == GATING_SIGMOID) {
        for (int e = 0; e < experts; e++) p[e] = 1.f / (1.f + expf(-p[e]));
    }
    for (int e = 0; e < experts; e++) sel[e] = bias ? p[e] + bias[e] : p[e];
    if (groups > 1) {
        int per = experts / groups;
        // taken[] doubles as the kept-group marks here, cleared afterwards
        for (int j = 0; j < groups_used; j++) {
            int best = -1;
            float bestScore = -INFINITY;
            for (int g = 0; g < groups; g++) {
                if (taken[g]) continue;
                float b1 = -INFINITY, b2 = -INFINITY;
                for (int e = g * per; e < (g + 1) * per; e++) {
                    if (sel[e] > b1) {
                        b2 = b1;
                        b1 = sel[e];
                    } else if (sel[e] > b2) {
                        b2 = sel[e];
                    }
                }
                float score = per == 1 ? b1 : b1 + b2;
                if (best < 0 || score > bestScore) {
                    best = g;
                    bestScore = score;
                }
            }
            taken[best] = 1;
        }
        for (int g = 0; g < groups; g++) {
            if (!taken[g]) {
                for (int e = g * per; e < (g + 1) * per; e++) sel[e] = -INFINITY;
            }
        }
        for (int g = 0; g < groups; g++) taken[g] = 0;
    }
    int* out_ids = ids + (size_t) t * k;
    float* out_w = weights + (size_t) t * k;
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < experts; e++) {
            if (!taken[e] && sel[e] != -INFINITY && (best < 0 || sel[e] > sel[best])) best = e;
        }
        taken[best] = 1;
        out_ids[j] = best;
    }
    if (gating == GATING_SOFTMAX_AFTER_TOPK) {
        float mx = -INFINITY;
        for (int j = 0; j < k; j++) mx = fmaxf(mx, p[out_ids[j]]);
        float sum = 0.f;
        for (int j = 0; j < k; j++) {
            out_w[j] = expf(p[out_ids[j]] - mx);
            sum += out_w[j];
        }
        for (int j = 0; j < k; j++) out_w[j] /= sum;
    } else {
        for (int j = 0; j < k; j++) out_w[j] = p[out_ids[j]];
    }
    if (normalize) {
        float sum = 0.f;
        for (int j = 0; j < k; j++) sum += out_w[j];
        sum = fmaxf(sum, 6.103515625e-5f);
        for (int j = 0; j < k; j++) out_w[j] /= sum;
    }
    if (scale != 0.f && scale != 1.f) {
        for (int j = 0; j < k; j++) out_w[j] *= scale;
    }
}

// out[t] = sum_j weights[t][j] * expert_out[t * k + j], j in order. One block per token.
extern "C" __global__ void combine(const float* __restrict__ expert_out, const float* __restrict__ weights,
                                   float* __restrict__ out, int dim, int k) {
    int t = blockIdx.x;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float acc = 0.f;
        for (int j = 0; j < k; j++) acc += weights[(size_t) t * k + j] * expert_out[((size_t) t * k + j) * dim + i];
        out[(size_t) t * dim + i] = acc;
    }
}
