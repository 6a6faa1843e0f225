package io.moestream.runtime.kernel;

import io.moestream.runtime.model.WeightMatrix;

/**
 * The plain float path, kept as the reference for tests: each row is dequantized to floats and
 * multiplied with the unquantized activation, one thread, no activation rounding. It differs from
 * llama.cpp (and {@link Kernels}) on quantized and F16 weights by the activation rounding only.
 */
public final class ScalarReference {

    private ScalarReference() {}

    /** {@code out[r] = dequantize(W[r]) . x} for every row. */
    public static void matmul(WeightMatrix w, float[] x, float[] out) {
        float[] row = new float[w.cols()];
        for (int r = 0; r < w.rows(); r++) {
            w.dequantizeRow(r, row, 0);
            float sum = 0;
            for (int i = 0; i < row.length; i++) {
                sum += row[i] * x[i];
            }
            out[r] = sum;
        }
    }
}
