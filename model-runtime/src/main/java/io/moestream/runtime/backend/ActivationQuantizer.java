package io.moestream.runtime.backend;

import io.moestream.runtime.gguf.Float16;

/**
 * How an activation row is rounded before a product with low-precision weights, exactly as
 * llama.cpp's CPU path does (its {@code vec_dot_type}); the CUDA kernels implement the same
 * per-element rules. Q8_0: per 32 values {@code d = amax / 127} rounded to F16, {@code q = rint(x * 127 / amax)}
 * (ties to even, as ggml's SIMD quantizer).
 */
public final class ActivationQuantizer {

    private ActivationQuantizer() {}

    /** {@code x} rounded to the nearest F16 value. */
    public static float roundF16(float x) {
        return Float16.toFloat(Float16.fromFloat(x));
    }

    /** {@code x} rounded to the nearest BF16 value (ties to even; NaN stays NaN). */
    public static float roundBf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return x;
        }
        return Float.intBitsToFloat(((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16) << 16);
    }

    /**
     * Quantizes {@code x[off .. off+n)} (n a multiple of 32) to Q8_0: {@code q[qOff + i]} and one scale
     * per block in {@code d[dOff + i / 32]} (already rounded to F16).
     */
    public static void quantizeQ8_0(float[] x, int off, int n, byte[] q, int qOff, float[] d, int dOff) {
        for (int b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(x[off + b * 32 + j]));
            }
            float id = amax != 0 ? 127f / amax : 0f;
            d[dOff + b] = roundF16(amax / 127f);
            for (int j = 0; j < 32; j++) {
                q[qOff + b * 32 + j] = (byte) Math.rint(x[off + b * 32 + j] * id);
            }
        }
    }
}
