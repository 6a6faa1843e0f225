package io.moestream.runtime.kernel;

/**
 * ggml's {@code quantize_row_q8_K} (the activation form of K-quant products): per 256 values the
 * element with the largest magnitude (the first on ties) gives {@code iscale = -127 / max} (so the
 * largest value maps to -127 with max's sign flipped back by the weights' scales), each value is
 * {@code min(127, round-half-even(iscale * x))} with the product in float32, the block scale is
 * {@code 1 / iscale}, and {@code bsums} holds the sum of every 16 quants (the K-quant mins and
 * Q6_K's offset of 32 are applied through them).
 */
public final class Q8K {

    /** Values per block. */
    public static final int BLOCK = 256;

    private Q8K() {}

    /**
     * Quantizes {@code x[off .. off+n)} ({@code n} a multiple of 256) into {@code q[0..n)},
     * {@code d[0..n/256)} and {@code bsums[0..n/16)}.
     */
    public static void quantize(float[] x, int off, int n, short[] q, float[] d, int[] bsums) {
        if (n % BLOCK != 0) {
            throw new IllegalArgumentException("Q8_K activations need a multiple of 256 values, got " + n);
        }
        for (int b = 0; b < n / BLOCK; b++) {
            int base = off + b * BLOCK;
            float max = 0;
            float amax = 0;
            for (int j = 0; j < BLOCK; j++) {
                float ax = Math.abs(x[base + j]);
                if (ax > amax) {
                    amax = ax;
                    max = x[base + j];
                }
            }
            int qb = b * BLOCK;
            if (amax == 0) {
                d[b] = 0;
                java.util.Arrays.fill(q, qb, qb + BLOCK, (short) 0);
                java.util.Arrays.fill(bsums, b * 16, b * 16 + 16, 0);
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < BLOCK; j++) {
                q[qb + j] = (short) Math.min(127, (int) Math.rint(iscale * x[base + j]));
            }
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int j = 0; j < 16; j++) {
                    s += q[qb + g * 16 + j];
                }
                bsums[b * 16 + g] = s;
            }
            d[b] = 1 / iscale;
        }
    }
}
