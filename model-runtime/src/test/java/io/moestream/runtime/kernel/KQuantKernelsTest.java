package io.moestream.runtime.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Each block kernel of {@link KQuantKernels} against a scalar reference: the row decoded by this
 * test's own decoder (written from the block layouts in the oracle README, in double) dotted in
 * double with the activation's dequantized values. Rows are random bytes (every bit pattern is a
 * valid block) with finite scales, so every quant value, scale and min occurs.
 */
class KQuantKernelsTest {

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q5_0", "IQ4_NL", "MXFP4", "BF16"})
    void kernelEqualsDequantizeThenDot(GgmlType type) {
        Random rnd = new Random(type.ordinal());
        int cols = 1024;
        int rows = 12;
        byte[] w = randomRows(type, rows, cols, rnd);
        ByteBuffer buf = ByteBuffer.wrap(w).order(ByteOrder.LITTLE_ENDIAN);
        int rowBytes = (int) type.bytesFor(cols);
        for (int trial = 0; trial < 4; trial++) {
            float[] x = new float[cols];
            for (int i = 0; i < cols; i++) {
                x[i] = (float) (rnd.nextGaussian() * (trial + 1)) * (i % 97 == 0 ? 20 : 1);
            }
            for (boolean gemm : new boolean[] {false, true}) {
                for (DotOrder order : DotOrder.values()) {
                    Activation a = new Activation().prepare(x, 0, cols, type, order).gemmOrder(gemm);
                    float[] out = new float[rows];
                    KQuantKernels.dotRows(type, buf, 0, rowBytes, rows, cols, a, out, 0);
                    for (int r = 0; r < rows; r++) {
                        double[] ref = decode(type, w, r * rowBytes, cols);
                        double dot = 0;
                        double mag = 0;
                        for (int i = 0; i < cols; i++) {
                            dot += ref[i] * a.value(i);
                            mag += Math.abs(ref[i] * a.value(i));
                        }
                        assertThat((double) out[r]).as("%s row %d gemm %s %s", type, r, gemm, order)
                                .isCloseTo(dot, org.assertj.core.data.Offset.offset(2e-6 * mag + 1e-30));
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q5_0", "IQ4_NL", "MXFP4"})
    void dequantizeFollowsTheBlockLayout(GgmlType type) {
        Random rnd = new Random(100 + type.ordinal());
        int cols = 512;
        byte[] w = randomRows(type, 1, cols, rnd);
        float[] out = new float[cols];
        KQuantBlocks.dequantize(type, w, cols, out, 0);
        double[] ref = decode(type, w, 0, cols);
        for (int i = 0; i < cols; i++) {
            assertThat((double) out[i]).as("%s value %d", type, i).isCloseTo(ref[i], org.assertj.core.data.Offset.offset(Math.abs(ref[i]) * 1e-6 + 1e-30));
        }
    }

    /** The float steps, not only the integer sums, are llama.cpp's: a Q4_K gemm row groups them per 64 values. */
    @Test
    void gemmAndGemvOrderGiveTheSameSumRoundedDifferently() {
        Random rnd = new Random(7);
        int cols = 4096;
        byte[] w = randomRows(GgmlType.Q4_K, 1, cols, rnd);
        int differ = 0;
        for (int trial = 0; trial < 50; trial++) {
            float[] x = new float[cols];
            for (int i = 0; i < cols; i++) {
                x[i] = (float) rnd.nextGaussian();
            }
            Activation a = new Activation().prepare(x, 0, cols, GgmlType.Q4_K);
            float gemv = KQuantKernels.dot(GgmlType.Q4_K, w, cols, a);
            float gemm = KQuantKernels.dot(GgmlType.Q4_K, w, cols, a.gemmOrder(true));
            assertThat((double) gemm).isCloseTo(gemv, org.assertj.core.data.Offset.offset(1e-3 * Math.abs(gemv) + 1e-3));
            differ += gemm == gemv ? 0 : 1;
        }
        assertThat(differ).isPositive();
    }

    @Test
    void q8KQuantizationIsGgmls() {
        float[] x = new float[512];
        Random rnd = new Random(3);
        for (int i = 0; i < 256; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        x[10] = 5f;
        x[20] = -5f; // same magnitude later: the first one sets the sign
        short[] q = new short[512];
        float[] d = new float[2];
        int[] bsums = new int[32];
        Q8K.quantize(x, 0, 512, q, d, bsums);
        float iscale = -127f / 5f;
        assertThat(d[0]).isEqualTo(1 / iscale);
        assertThat(q[10]).isEqualTo((short) -127);
        assertThat(q[20]).isEqualTo((short) 127);
        for (int i = 0; i < 256; i++) {
            assertThat(q[i]).isEqualTo((short) Math.rint(iscale * x[i]));
        }
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) {
                s += q[16 * g + j];
            }
            assertThat(bsums[g]).isEqualTo(s);
        }
        // an all-zero block: scale 0, quants 0
        assertThat(d[1]).isZero();
        for (int i = 256; i < 512; i++) {
            assertThat(q[i]).isZero();
        }
    }

    @Test
    void activationOfTheWrongTypeIsRefused() {
        Activation a = new Activation().prepare(new float[256], 0, 256, GgmlType.Q8_0);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> KQuantKernels.dot(GgmlType.Q4_K, new byte[144], 256, a))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("Q4_K");
    }

    /** Random block bytes with finite F16 scales of moderate size (E8M0 exponents near 1 for MXFP4). */
    static byte[] randomRows(GgmlType type, int rows, int cols, Random rnd) {
        int bytes = (int) type.bytesFor(cols) * rows;
        byte[] w = new byte[bytes];
        rnd.nextBytes(w);
        int bb = type.blockBytes();
        for (int o = 0; o < bytes; o += bb) {
            switch (type) {
                case Q2_K -> { putHalf(w, o + 80, rnd); putHalf(w, o + 82, rnd); }
                case Q3_K -> putHalf(w, o + 108, rnd);
                case Q4_K, Q5_K -> { putHalf(w, o, rnd); putHalf(w, o + 2, rnd); }
                case Q6_K -> putHalf(w, o + 208, rnd);
                case Q5_0, IQ4_NL -> putHalf(w, o, rnd);
                case MXFP4 -> w[o] = (byte) (120 + rnd.nextInt(10));
                case BF16 -> { w[o] = (byte) rnd.nextInt(256); w[o + 1] = (byte) (0x3c + rnd.nextInt(8) | (rnd.nextBoolean() ? 0x80 : 0)); }
                default -> throw new IllegalArgumentException(type.toString());
            }
        }
        return w;
    }

    private static void putHalf(byte[] w, int o, Random rnd) {
        short h = Float16.fromFloat((float) (0.001 + rnd.nextDouble() * 0.05));
        w[o] = (byte) h;
        w[o + 1] = (byte) (h >> 8);
    }

    private static int u(byte[] w, int i) {
        return w[i] & 0xFF;
    }

    private static double half(byte[] w, int o) {
        return Float16.toFloat((short) (u(w, o) | u(w, o + 1) << 8));
    }

    /** This test's own decoder, straight from the layouts in the oracle README ("Block formats"). */
    static double[] decode(GgmlType type, byte[] w, int off, int cols) {
        double[] x = new double[cols];
        if (type == GgmlType.BF16) {
            for (int i = 0; i < cols; i++) {
                x[i] = Float16.bf16ToFloat((short) (u(w, off + 2 * i) | u(w, off + 2 * i + 1) << 8));
            }
            return x;
        }
        int bs = type.blockSize();
        for (int b = 0; b < cols / bs; b++) {
            int o = off + b * type.blockBytes();
            int y = b * bs;
            switch (type) {
                case Q4_K, Q5_K -> {
                    double d = half(w, o);
                    double dmin = half(w, o + 2);
                    int sc = o + 4;
                    boolean five = type == GgmlType.Q5_K;
                    int qs = o + (five ? 48 : 16);
                    for (int c = 0; c < 4; c++) {
                        for (int l = 0; l < 32; l++) {
                            int lo = u(w, qs + 32 * c + l) & 0xF;
                            int hi = u(w, qs + 32 * c + l) >> 4;
                            if (five) {
                                lo += 16 * ((u(w, o + 16 + l) >> (2 * c)) & 1);
                                hi += 16 * ((u(w, o + 16 + l) >> (2 * c + 1)) & 1);
                            }
                            x[y + 64 * c + l] = d * k4(w, sc, 2 * c, true) * lo - dmin * k4(w, sc, 2 * c, false);
                            x[y + 64 * c + 32 + l] = d * k4(w, sc, 2 * c + 1, true) * hi - dmin * k4(w, sc, 2 * c + 1, false);
                        }
                    }
                }
                case Q6_K -> {
                    double d = half(w, o + 208);
                    for (int h = 0; h < 2; h++) {
                        int ql = o + 64 * h;
                        int qh = o + 128 + 32 * h;
                        int sc = o + 192 + 8 * h;
                        for (int l = 0; l < 32; l++) {
                            int s = l / 16;
                            int yy = y + 128 * h;
                            x[yy + l] = d * w[sc + s] * (((u(w, ql + l) & 0xF) | ((u(w, qh + l) & 3) << 4)) - 32);
                            x[yy + l + 32] = d * w[sc + s + 2] * (((u(w, ql + l + 32) & 0xF) | (((u(w, qh + l) >> 2) & 3) << 4)) - 32);
                            x[yy + l + 64] = d * w[sc + s + 4] * (((u(w, ql + l) >> 4) | (((u(w, qh + l) >> 4) & 3) << 4)) - 32);
                            x[yy + l + 96] = d * w[sc + s + 6] * (((u(w, ql + l + 32) >> 4) | (((u(w, qh + l) >> 6) & 3) << 4)) - 32);
                        }
                    }
                }
                case Q3_K -> {
                    double d = half(w, o + 108);
                    for (int n = 0; n < 2; n++) {
                        for (int j = 0; j < 4; j++) {
                            for (int l = 0; l < 32; l++) {
                                int i = 8 * n + 2 * j + (l >= 16 ? 1 : 0);
                                int lo = i < 8 ? u(w, o + 96 + i) & 0xF : u(w, o + 96 + i - 8) >> 4;
                                int hi = (u(w, o + 96 + 8 + i % 4) >> (2 * (i / 4))) & 3;
                                int s = (lo | hi << 4) - 32;
                                int q = (u(w, o + 32 + 32 * n + l) >> (2 * j)) & 3;
                                boolean set = ((u(w, o + l) >> (4 * n + j)) & 1) == 1;
                                x[y + 128 * n + 32 * j + l] = d * s * (q - (set ? 0 : 4));
                            }
                        }
                    }
                }
                case Q2_K -> {
                    double d = half(w, o + 80);
                    double dmin = half(w, o + 82);
                    for (int n = 0; n < 2; n++) {
                        for (int j = 0; j < 4; j++) {
                            for (int l = 0; l < 32; l++) {
                                int k = 8 * n + 2 * j + (l >= 16 ? 1 : 0);
                                int q = (u(w, o + 16 + 32 * n + l) >> (2 * j)) & 3;
                                x[y + 128 * n + 32 * j + l] = d * (u(w, o + k) & 0xF) * q - dmin * (u(w, o + k) >> 4);
                            }
                        }
                    }
                }
                case IQ4_NL -> {
                    int[] t = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
                    double d = half(w, o);
                    for (int j = 0; j < 16; j++) {
                        x[y + j] = d * t[u(w, o + 2 + j) & 0xF];
                        x[y + j + 16] = d * t[u(w, o + 2 + j) >> 4];
                    }
                }
                case MXFP4 -> {
                    double[] f = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
                    double d = Math.pow(2, u(w, o) - 128);
                    for (int j = 0; j < 16; j++) {
                        x[y + j] = d * f[u(w, o + 1 + j) & 0xF];
                        x[y + j + 16] = d * f[u(w, o + 1 + j) >> 4];
                    }
                }
                case Q5_0 -> {
                    double d = half(w, o);
                    long h = u(w, o + 2) | u(w, o + 3) << 8 | u(w, o + 4) << 16 | (long) u(w, o + 5) << 24;
                    for (int j = 0; j < 16; j++) {
                        x[y + j] = d * (((u(w, o + 6 + j) & 0xF) | ((h >> j) & 1) << 4) - 16);
                        x[y + j + 16] = d * (((u(w, o + 6 + j) >> 4) | ((h >> (j + 16)) & 1) << 4) - 16);
                    }
                }
                default -> throw new IllegalArgumentException(type.toString());
            }
        }
        return x;
    }

    /** Q4_K/Q5_K 6-bit scale (or min) j as the README gives it. */
    private static int k4(byte[] w, int s, int j, boolean scale) {
        if (j < 4) {
            return u(w, s + j + (scale ? 0 : 4)) & 63;
        }
        return scale ? (u(w, s + j + 4) & 0xF) | ((u(w, s + j - 4) >> 6) << 4)
                : (u(w, s + j + 4) >> 4) | ((u(w, s + j) >> 6) << 4);
    }
}
