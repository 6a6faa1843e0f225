// Element-wise ops and row movement: SwiGLU, residual add, bias add, sigmoid-gated add, row gather, and the embedding lookup
// (get_rows) for every weight type, reading the packed device layouts of matmul.cu.
#include "common.cuh"

// out = silu(gate) * up; out may alias gate.
extern "C" __global__ void swiglu(const float* gate, const float* __restrict__ up, float* out, long n) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        float g = gate[i];
        out[i] = g / (1.f + expf(-g)) * up[i];
    }
}

// gpt-oss's clamped SwiGLU (CpuMath.swigluOai): x = min(limit, gate), y = clamp(up, -limit, limit),
// out = x / (1 + exp(alpha * -x)) * (y + 1); out may alias gate.
extern "C" __global__ void swiglu_oai(const float* gate, const float* __restrict__ up, float* out, long n, float alpha, float limit) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        float g = gate[i];
        float u = up[i];
        float x = limit < g ? limit : g;
        float y = u < -limit ? -limit : (limit < u ? limit : u);
        float glu = __fdiv_rn(x, __fadd_rn(1.f, expf(__fmul_rn(alpha, -x))));
        out[i] = __fmul_rn(glu, __fadd_rn(y, 1.f));
    }
}

// x[a][c] += bias[ids[a]][c] over n = assignments * cols elements (expert biases).
extern "C" __global__ void add_expert_bias(float* x, const float* __restrict__ bias, const int* __restrict__ ids, int cols, long n) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        x[i] += bias[(size_t) ids[i / cols] * cols + i % cols];
    }
}

extern "C" __global__ void add(float* acc, const float* __restrict__ d, long n) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) acc[i] += d[i];
}

// x *= s (granite's embedding, residual and logit multipliers).
extern "C" __global__ void scale(float* x, float s, long n) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) x[i] *= s;
}

// x[r][c] += bias[c] over n = rows * cols elements.
extern "C" __global__ void add_bias(float* x, const float* __restrict__ bias, int cols, long n) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) x[i] += bias[i % cols];
}

// acc[r][c] += sigmoid(gate[r]) * d[r][c] over n = rows * cols elements (the gated shared expert).
extern "C" __global__ void add_gated(float* acc, const float* __restrict__ d, const float* __restrict__ gate, int cols, long n) {
    for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        float s = 1.f / (1.f + expf(-gate[i / cols]));
        acc[i] += s * d[i];
    }
}

// out[i] = src[rows[i]]; one block per output row.
extern "C" __global__ void gather(const float* __restrict__ src, const int* __restrict__ rows, float* __restrict__ out, int cols) {
    const float* s = src + (size_t) rows[blockIdx.x] * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[(size_t) blockIdx.x * cols + c] = s[c];
}

// out[r] = table[tokens[r]] as floats; one block per token.
extern "C" __global__ void embed_f32(const float* __restrict__ w, const int* __restrict__ tokens, float* __restrict__ out, int cols) {
    const float* s = w + (size_t) tokens[blockIdx.x] * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[(size_t) blockIdx.x * cols + c] = s[c];
}

extern "C" __global__ void embed_f16(const uint16_t* __restrict__ w, const int* __restrict__ tokens, float* __restrict__ out, int cols) {
    const uint16_t* s = w + (size_t) tokens[blockIdx.x] * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[(size_t) blockIdx.x * cols + c] = f16_bits_to_float(s[c]);
}

extern "C" __global__ void embed_bf16(const uint16_t* __restrict__ w, const int* __restrict__ tokens, float* __restrict__ out, int cols) {
    const uint16_t* s = w + (size_t) tokens[blockIdx.x] * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[(size_t) blockIdx.x * cols + c] = bf16_bits_to_float(s[c]);
}

extern "C" __global__ void embed_q8_0(const int8_t* __restrict__ wq, const uint16_t* __restrict__ ws, const int* __restrict__ tokens,
                                      float* __restrict__ out, int cols) {
    size_t row = tokens[blockIdx.x];
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float d = f16_bits_to_float(ws[row * (cols / 32) + c / 32]);
        out[(size_t) blockIdx.x * cols + c] = d * (float) wq[row * cols + c];
    }
}

extern "C" __global__ void embed_q4_0(const uint8_t* __restrict__ wq, const uint16_t* __restrict__ ws, const int* __restrict__ tokens,
                                      float* __restrict__ out, int cols) {
    size_t row = tokens[blockIdx.x];
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        int blk = c / 32;
        int j = c % 32;
        uint8_t byte = wq[row * (cols / 2) + blk * 16 + (j & 15)];
        int q = (j < 16 ? (byte & 0xf) : (byte >> 4)) - 8;
        float d = f16_bits_to_float(ws[row * (cols / 32) + blk]);
        out[(size_t) blockIdx.x * cols + c] = d * (float) q;
    }
}
