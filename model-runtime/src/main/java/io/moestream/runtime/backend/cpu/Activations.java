package io.moestream.runtime.backend.cpu;

import io.moestream.runtime.backend.ActivationQuantizer;
import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;

/**
 * The input rows of one product, rounded once as the weight type requires
 * ({@link ActivationQuantizer}), and the row dot product for each weight type.
 */
final class Activations {

    private final GgmlType type;
    private final int cols;
    private final float[] x;   // F32 / F16 / BF16: the (rounded) rows
    private final byte[] q;    // Q8_0 / Q4_0: quantized rows
    private final float[] d;   // Q8_0 / Q4_0: one scale per 32 values

    private Activations(GgmlType type, int cols, float[] x, byte[] q, float[] d) {
        this.type = type;
        this.cols = cols;
        this.x = x;
        this.q = q;
        this.d = d;
    }

    static Activations of(GgmlType type, CpuTensor in, int rows) {
        int n = rows * in.cols;
        switch (type) {
            case F32:
                return new Activations(type, in.cols, in.f, null, null);
            case F16:
            case BF16: {
                float[] r = new float[n];
                for (int i = 0; i < n; i++) {
                    r[i] = type == GgmlType.F16 ? ActivationQuantizer.roundF16(in.f[i]) : ActivationQuantizer.roundBf16(in.f[i]);
                }
                return new Activations(type, in.cols, r, null, null);
            }
            case Q8_0:
            case Q4_0: {
                if (in.cols % 32 != 0) {
                    throw new IllegalArgumentException("quantized product needs a multiple of 32 columns, got " + in.cols);
                }
                byte[] qs = new byte[n];
                float[] ds = new float[n / 32];
                for (int r = 0; r < rows; r++) {
                    ActivationQuantizer.quantizeQ8_0(in.f, r * in.cols, in.cols, qs, r * in.cols, ds, r * in.cols / 32);
                }
                return new Activations(type, in.cols, null, qs, ds);
            }
            default:
                throw new IllegalArgumentException("unsupported weight type " + type);
        }
    }

    /** Row {@code row} of expert {@code expert} of {@code w} dotted with input row {@code b}. */
    float dot(CpuWeight w, int expert, int row, int b) {
        return switch (type) {
            case F32, F16, BF16 -> w.mats[expert].dot(row, x, b * cols);
            case Q8_0 -> dotQ8_0(w, w.rowOffset(expert, row), b);
            case Q4_0 -> dotQ4_0(w, w.rowOffset(expert, row), b);
            default -> throw new IllegalStateException("unsupported weight type " + type);
        };
    }

    /** ggml_vec_dot_q8_0_q8_0: integer dot per block, scaled by both block scales. */
    private float dotQ8_0(CpuWeight w, int off, int b) {
        float sum = 0;
        int qi = b * cols;
        int di = b * cols / 32;
        for (int blk = 0; blk < cols / 32; blk++, off += 34) {
            float dw = Float16.toFloat(w.bytes.getShort(off));
            int sumi = 0;
            for (int j = 0; j < 32; j++) {
                sumi += w.bytes.get(off + 2 + j) * q[qi + blk * 32 + j];
            }
            sum += sumi * (dw * d[di + blk]);
        }
        return sum;
    }

    /** ggml_vec_dot_q4_0_q8_0: nibbles minus 8 against the Q8_0 activation. */
    private float dotQ4_0(CpuWeight w, int off, int b) {
        float sum = 0;
        int qi = b * cols;
        int di = b * cols / 32;
        for (int blk = 0; blk < cols / 32; blk++, off += 18) {
            float dw = Float16.toFloat(w.bytes.getShort(off));
            int base = qi + blk * 32;
            int sumi = 0;
            for (int j = 0; j < 16; j++) {
                int v = w.bytes.get(off + 2 + j) & 0xFF;
                sumi += ((v & 0xF) - 8) * q[base + j] + ((v >>> 4) - 8) * q[base + j + 16];
            }
            sum += sumi * (dw * d[di + blk]);
        }
        return sum;
    }
}
