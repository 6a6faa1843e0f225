// MoE routing and combine, the steps of io.moestream.runtime.moe.Router under its RoutingConfig.
// route: one block per token; thread 0 runs the same serial steps as the CPU router (the work is
// tiny next to the products): gating (softmax with the sum in double and one multiply by its
// inverse, or sigmoid), bias for selection only, group limit by top-2 sums (in double), top-k
// (ties and NaN to the lower id, as the CPU's strict >), weights, renormalisation (sum in double,
// at least 2^-14), scale.
#include "common.cuh"

#define GATING_SOFTMAX 0
#define GATING_SIGMOID 1
#define GATING_SOFTMAX_WEIGHT 2 // the logits select; the weights are the softmax of the chosen k (gpt-oss)

// softmax of v[0..n) in place: the sum in double, one multiply by its inverse (CpuMath.softmax)
__device__ void softmax_serial(float* v, int n) {
    float mx = -INFINITY;
    for (int e = 0; e < n; e++) mx = fmaxf(mx, v[e]);
    double sum = 0.0;
    for (int e = 0; e < n; e++) {
        v[e] = expf(__fsub_rn(v[e], mx));
        sum += v[e];
    }
    float inv = (float) (1.0 / sum);
    for (int e = 0; e < n; e++) v[e] = __fmul_rn(v[e], inv);
}

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
        softmax_serial(p, experts);
    } else if (gating == GATING_SIGMOID) {
        for (int e = 0; e < experts; e++) p[e] = __fdiv_rn(1.f, __fadd_rn(1.f, expf(-p[e])));
    }
    for (int e = 0; e < experts; e++) sel[e] = bias ? __fadd_rn(p[e], bias[e]) : p[e];
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
                float score = (float) ((double) b1 + (double) b2);
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
        // k <= experts, so some expert is always free: best is never -1
        int best = -1;
        for (int e = 0; e < experts; e++) {
            if (!taken[e] && (best < 0 || sel[e] > sel[best])) best = e;
        }
        taken[best] = 1;
        out_ids[j] = best;
        out_w[j] = p[best];
    }
    if (gating == GATING_SOFTMAX_WEIGHT) softmax_serial(out_w, k);
    if (normalize) {
        double total = 0.0;
        for (int j = 0; j < k; j++) total += out_w[j];
        float sum = fmaxf((float) total, 6.103515625e-5f);
        for (int j = 0; j < k; j++) out_w[j] = __fdiv_rn(out_w[j], sum);
    }
    if (scale != 1.f) {
        for (int j = 0; j < k; j++) out_w[j] = __fmul_rn(out_w[j], scale);
    }
}

// out[t] = sum_j weights[t][j] * expert_out[t * k + j], j in order, each product rounded before
// its add (no fma), as the CPU's weighted rows and chain of adds. One block per token.
extern "C" __global__ void combine(const float* __restrict__ expert_out, const float* __restrict__ weights,
                                   float* __restrict__ out, int dim, int k) {
    int t = blockIdx.x;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float acc = __fmul_rn(expert_out[(size_t) t * k * dim + i], weights[(size_t) t * k]);
        for (int j = 1; j < k; j++) {
            acc = __fadd_rn(acc, __fmul_rn(expert_out[((size_t) t * k + j) * dim + i], weights[(size_t) t * k + j]));
        }
        out[(size_t) t * dim + i] = acc;
    }
}
