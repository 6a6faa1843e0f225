// RMSNorm over groups of `group` values (a whole row, or one head for QK norm):
// out = x / sqrt(mean(x^2) + eps) * w. One block per group; out may alias x.
#include "common.cuh"

extern "C" __global__ void rmsnorm(const float* x, const float* __restrict__ w, float* out,
                                   int group, float eps) {
    __shared__ float partial[32];
    const float* xg = x + (size_t) blockIdx.x * group;
    float ss = 0.f;
    for (int i = threadIdx.x; i < group; i += blockDim.x) ss += xg[i] * xg[i];
    ss = warp_sum(ss);
    if (threadIdx.x % WARP == 0) partial[threadIdx.x / WARP] = ss;
    __syncthreads();
    if (threadIdx.x < WARP) {
        float v = threadIdx.x < blockDim.x / WARP ? partial[threadIdx.x] : 0.f;
        v = warp_sum(v);
        if (threadIdx.x == 0) partial[0] = v;
    }
    __syncthreads();
    float inv = 1.0f / sqrtf(partial[0] / group + eps);
    float* og = out + (size_t) blockIdx.x * group;
    for (int i = threadIdx.x; i < group; i += blockDim.x) og[i] = xg[i] * inv * w[i];
}
