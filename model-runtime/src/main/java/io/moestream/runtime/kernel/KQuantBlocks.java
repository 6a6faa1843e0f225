package io.moestream.runtime.kernel;

import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.gguf.GgmlType;

/**
 * Block layouts of the K-quants (Q2_K..Q6_K, 256 values per super-block), Q5_0, IQ4_NL and MXFP4
 * (32 per block): the unpacked integer quants and scales the dot kernels use, and dequantization
 * to float with ggml's {@code dequantize_row_*} float operations (what llama.cpp's {@code get_rows}
 * gives for a token embedding row). All reads are little-endian from a row copied into a byte array.
 */
public final class KQuantBlocks {

    /** IQ4_NL's non-linear 4-bit code book. */
    static final byte[] IQ4_NL_VALUES = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    /** MXFP4's E2M1 values times two (so that they are integers). */
    static final byte[] MXFP4_VALUES = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

    private KQuantBlocks() {}

    /** Whether these classes handle {@code type}. */
    public static boolean handles(GgmlType type) {
        return switch (type) {
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q5_0, IQ4_NL, MXFP4 -> true;
            default -> false;
        };
    }

    static float half(byte[] r, int i) {
        return Float16.toFloat((short) ((r[i] & 0xFF) | (r[i + 1] << 8)));
    }

    /** {@code GGML_E8M0_TO_FP32_HALF}: 2^(e - 128), subnormal for e < 2. */
    static float e8m0Half(int e) {
        int bits = e < 2 ? 0x00200000 << e : (e - 1) << 23;
        return Float.intBitsToFloat(bits);
    }

    /**
     * Q4_K / Q5_K 6-bit scale ({@code which} 0) or min (1) of sub-block {@code j} (0..7) from the 12
     * packed bytes at {@code s} ({@code get_scale_min_k4}).
     */
    static int scaleMinK4(byte[] r, int s, int j, int which) {
        if (j < 4) {
            return (r[s + j + 4 * which] & 0xFF) & 63;
        }
        int hi = r[s + j + 4] & 0xFF;
        int lo = r[s + j - 4 + 4 * which] & 0xFF;
        return which == 0 ? (hi & 0xF) | ((lo >> 6) << 4) : (hi >> 4) | ((lo >> 6) << 4);
    }

    /** Q3_K signed 6-bit scale {@code i} (0..15) of the block whose 12 scale bytes start at {@code s}. */
    static int scaleQ3K(byte[] r, int s, int i) {
        int lo = i < 8 ? r[s + i] & 0xF : (r[s + i - 8] & 0xFF) >> 4;
        int hi = ((r[s + 8 + i % 4] & 0xFF) >> (2 * (i / 4))) & 3;
        return (lo | hi << 4) - 32;
    }

    /**
     * Unpacks the quants of the block at byte {@code o} of {@code r} into {@code qw} (256 values for
     * the K-quants, 32 otherwise): Q6_K 0..63 (offset 32 not removed), Q5_K 0..31, Q4_K 0..15,
     * Q3_K -4..3, Q2_K 0..3, Q5_0 -16..15, IQ4_NL and MXFP4 their code book values.
     */
    static void unpack(GgmlType type, byte[] r, int o, byte[] qw) {
        switch (type) {
            case Q6_K -> {
                for (int h = 0; h < 2; h++) {
                    for (int l = 0; l < 32; l++) {
                        int a = r[o + 64 * h + l] & 0xFF;
                        int b = r[o + 64 * h + l + 32] & 0xFF;
                        int hb = r[o + 128 + 32 * h + l] & 0xFF;
                        int y = 128 * h + l;
                        qw[y] = (byte) ((a & 0xF) | (hb & 3) << 4);
                        qw[y + 32] = (byte) ((b & 0xF) | ((hb >> 2) & 3) << 4);
                        qw[y + 64] = (byte) ((a >> 4) | ((hb >> 4) & 3) << 4);
                        qw[y + 96] = (byte) ((b >> 4) | ((hb >> 6) & 3) << 4);
                    }
                }
            }
            case Q5_K, Q4_K -> {
                boolean five = type == GgmlType.Q5_K;
                int qs = o + (five ? 48 : 16);
                for (int j = 0; j < 4; j++) {
                    for (int l = 0; l < 32; l++) {
                        int b = r[qs + 32 * j + l] & 0xFF;
                        int hb = five ? r[o + 16 + l] & 0xFF : 0;
                        qw[64 * j + l] = (byte) ((b & 0xF) + (((hb >> (2 * j)) & 1) << 4));
                        qw[64 * j + 32 + l] = (byte) ((b >> 4) + (((hb >> (2 * j + 1)) & 1) << 4));
                    }
                }
            }
            case Q3_K -> {
                for (int n = 0; n < 2; n++) {
                    for (int j = 0; j < 4; j++) {
                        for (int l = 0; l < 32; l++) {
                            int low = ((r[o + 32 + 32 * n + l] & 0xFF) >> (2 * j)) & 3;
                            boolean high = (((r[o + l] & 0xFF) >> (4 * n + j)) & 1) != 0;
                            qw[128 * n + 32 * j + l] = (byte) (low - (high ? 0 : 4));
                        }
                    }
                }
            }
            case Q2_K -> {
                for (int n = 0; n < 2; n++) {
                    for (int j = 0; j < 4; j++) {
                        for (int l = 0; l < 32; l++) {
                            qw[128 * n + 32 * j + l] = (byte) (((r[o + 16 + 32 * n + l] & 0xFF) >> (2 * j)) & 3);
                        }
                    }
                }
            }
            case Q5_0 -> {
                int h = (r[o + 2] & 0xFF) | (r[o + 3] & 0xFF) << 8 | (r[o + 4] & 0xFF) << 16 | (r[o + 5] & 0xFF) << 24;
                for (int j = 0; j < 16; j++) {
                    int b = r[o + 6 + j] & 0xFF;
                    qw[j] = (byte) (((b & 0xF) | ((h >>> j) & 1) << 4) - 16);
                    qw[j + 16] = (byte) (((b >> 4) | ((h >>> (j + 16)) & 1) << 4) - 16);
                }
            }
            case IQ4_NL, MXFP4 -> {
                byte[] lut = type == GgmlType.MXFP4 ? MXFP4_VALUES : IQ4_NL_VALUES;
                int qs = o + (type == GgmlType.MXFP4 ? 1 : 2);
                for (int j = 0; j < 16; j++) {
                    int b = r[qs + j] & 0xFF;
                    qw[j] = lut[b & 0xF];
                    qw[j + 16] = lut[b >> 4];
                }
            }
            default -> throw new IllegalArgumentException("not a K-quant family type: " + type);
        }
    }

    /** Writes the {@code cols} values of the row in {@code r} (type {@code type}) as floats, as ggml's {@code dequantize_row_*}. */
    public static void dequantize(GgmlType type, byte[] r, int cols, float[] out, int outOff) {
        int bs = type.blockSize();
        int bb = type.blockBytes();
        byte[] qw = new byte[bs];
        for (int b = 0; b < cols / bs; b++) {
            int o = b * bb;
            int y = outOff + b * bs;
            unpack(type, r, o, qw);
            switch (type) {
                case Q6_K -> {
                    float d = half(r, o + 208);
                    for (int v = 0; v < 256; v++) {
                        float dsc = d * r[o + 192 + v / 16];
                        out[y + v] = dsc * (qw[v] - 32);
                    }
                }
                case Q5_K, Q4_K -> {
                    float d = half(r, o);
                    float min = half(r, o + 2);
                    for (int j = 0; j < 8; j++) {
                        float dl = d * scaleMinK4(r, o + 4, j, 0);
                        float ml = min * scaleMinK4(r, o + 4, j, 1);
                        for (int v = 32 * j; v < 32 * j + 32; v++) {
                            out[y + v] = dl * qw[v] - ml;
                        }
                    }
                }
                case Q3_K -> {
                    float d = half(r, o + 108);
                    for (int i = 0; i < 16; i++) {
                        float dl = d * scaleQ3K(r, o + 96, i);
                        for (int v = 16 * i; v < 16 * i + 16; v++) {
                            out[y + v] = dl * qw[v];
                        }
                    }
                }
                case Q2_K -> {
                    float d = half(r, o + 80);
                    float min = half(r, o + 82);
                    for (int i = 0; i < 16; i++) {
                        int sc = r[o + i] & 0xFF;
                        float dl = d * (sc & 0xF);
                        float ml = min * (sc >> 4);
                        for (int v = 16 * i; v < 16 * i + 16; v++) {
                            out[y + v] = dl * qw[v] - ml;
                        }
                    }
                }
                case Q5_0, MXFP4 -> {
                    float d = type == GgmlType.Q5_0 ? half(r, o) : e8m0Half(r[o] & 0xFF);
                    for (int j = 0; j < 32; j++) {
                        out[y + j] = qw[j] * d;
                    }
                }
                case IQ4_NL -> {
                    float d = half(r, o);
                    for (int j = 0; j < 32; j++) {
                        out[y + j] = d * qw[j];
                    }
                }
                default -> throw new IllegalArgumentException("not a K-quant family type: " + type);
            }
        }
    }
}
