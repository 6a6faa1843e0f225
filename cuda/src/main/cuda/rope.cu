// Rotary position embedding in place on x (rows, heads * head_dim); the first rope_dims dims of each
// head rotate (partial rotary when rope_dims < head_dim). neox = 0: llama.cpp NORM, pairs
// (2i, 2i+1); neox = 1: pairs (i, i + rope_dims/2). Pair i's angle is pos * theta_scale^i, computed
// by repeated float multiplication exactly as the CPU engine does. YaRN (ggml's rope_yarn, the CPU's
// YarnRope): theta = freq_scale * theta, mixed with the unscaled angle by the ramp between the
// correction dims low..high when ext_factor != 0, and cos/sin times mscale; without YaRN freq_scale
// and mscale are 1 and ext_factor 0, which leave the angle and the rotation exact.
#include "common.cuh"

extern "C" __global__ void rope(float* __restrict__ x, const int* __restrict__ positions, int heads, int head_dim,
                                int rope_dims, int neox, float theta_scale, float freq_scale, float ext_factor, float low,
                                float high, float mscale) {
    int row = blockIdx.x;
    int half = rope_dims / 2;
    float pos = (float) positions[row];
    float* xr = x + (size_t) row * heads * head_dim;
    for (int p = threadIdx.x; p < heads * half; p += blockDim.x) {
        int h = p / half;
        int i = p % half;
        float theta = pos;
        for (int s = 0; s < i; s++) theta *= theta_scale;
        float interp = __fmul_rn(freq_scale, theta);
        if (ext_factor != 0.f) {
            float y = __fdiv_rn(__fsub_rn((float) i, low), fmaxf(0.001f, __fsub_rn(high, low)));
            float mix = __fmul_rn(__fsub_rn(1.f, fminf(1.f, fmaxf(0.f, y))), ext_factor);
            interp = __fmaf_rn(interp, __fsub_rn(1.f, mix), __fmul_rn(theta, mix));
        }
        theta = interp;
        float c = __fmul_rn(cosf(theta), mscale);
        float sn = __fmul_rn(sinf(theta), mscale);
        int a = neox ? h * head_dim + i : h * head_dim + 2 * i;
        int b = neox ? a + half : a + 1;
        float x0 = xr[a];
        float x1 = xr[b];
        xr[a] = x0 * c - x1 * sn;
        xr[b] = x0 * sn + x1 * c;
    }
}
