package io.moestream.runtime.kernel;

/**
 * The order in which llama.cpp's CPU backend adds up a float dot product (F32 and F16 weights,
 * attention), which depends on how many tokens the ubatch has: a matmul over one token goes through
 * ggml's {@code vec_dot}, over two or more through llamafile's tinyBLAS (when its shape allows).
 * The sums differ in the last bits, which decides F16 roundings and Q8_0 quants downstream.
 */
public enum DotOrder {
    /** One token (decode): {@code ggml_vec_dot_f32/_f16}, 4 x 16 fma lanes over steps of 64, reduced (a0 + a2) + (a1 + a3). */
    VEC_DOT,
    /** A chunk of two or more tokens (prefill): tinyBLAS, one 16-lane fma accumulator per output, reduced once. */
    TINYBLAS,
    /**
     * One of the last {@code len % 4} rows of a prefill chunk of {@code len} tokens: tinyBLAS for float
     * weights, but gemv for the repacked K-quants (Q4_K, Q2_K), whose gemm kernel takes only the first
     * {@code m - m % 4} rows of a MUL_MAT. Decided per chunk, so a row's sums do not depend on the other
     * sequences of its step.
     */
    TINYBLAS_TAIL;

    /** Whether float products take tinyBLAS's order (any prefill row). */
    public boolean tiled() {
        return this != VEC_DOT;
    }
}
