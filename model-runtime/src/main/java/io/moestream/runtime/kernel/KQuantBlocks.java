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

    /** Q6_K unsigned quant (0..63, offset 32 not removed) of value {@code v} (0..255) of the block at {@code o}. */
    static int q6(byte[] r, int o, int v) {
        int h = v >> 7;
        int qq = (v >> 5) & 3;
        int l = v & 31;
        int ql = r[o + 64 * h + l + (qq & 1) * 32] & 0xFF;
        int nib = qq < 2 ? ql & 0xF : ql >> 4;
        int hb = ((r[o + 128 + 32 * h + l] & 0xFF) >> (2 * qq)) & 3;
        return nib | hb << 4;
    }

    /** Q5_K unsigned quant (0..31) of value {@code v} of the block at {@code o}. */
    static int q5k(byte[] r, int o, int v) {
        int c = v >> 5;
        int l = v & 31;
        int b = r[o + 48 + 32 * (c >> 1) + l] & 0xFF;
        int nib = (c & 1) == 0 ? b & 0xF : b >> 4;
        return nib + 16 * (((r[o + 16 + l] & 0xFF) >> c) & 1);
    }

    /** Q4_K unsigned quant (0..15) of value {@code v} of the block at {@code o}. */
    static int q4k(byte[] r, int o, int v) {
        int c = v >> 5;
        int b = r[o + 16 + 32 * (c >> 1) + (v & 31)] & 0xFF;
        return (c & 1) == 0 ? b & 0xF : b >> 4;
    }

    /** Q3_K signed quant (-4..3) of value {@code v} of the block at {@code o}. */
    static int q3k(byte[] r, int o, int v) {
        int n = v >> 7;
        int j = (v >> 5) & 3;
        int l = v & 31;
        int low = ((r[o + 32 + 32 * n + l] & 0xFF) >> (2 * j)) & 3;
        boolean high = (((r[o + l] & 0xFF) >> (4 * n + j)) & 1) != 0;
        return low - (high ? 0 : 4);
    }

    /** Q2_K unsigned quant (0..3) of value {@code v} of the block at {@code o}. */
    static int q2k(byte[] r, int o, int v) {
        int n = v >> 7;
        int j = (v >> 5) & 3;
        return ((r[o + 16 + 32 * n + (v & 31)] & 0xFF) >> (2 * j)) & 3;
    }

    /** Q5_0 signed quant (-16..15) of value {@code j} (0..31) of the block at {@code o}. */
    static int q50(byte[] r, int o, int j) {
        int h = (r[o + 2] & 0xFF) | (r[o + 3] & 0xFF) << 8 | (r[o + 4] & 0xFF) << 16 | (r[o + 5] & 0xFF) << 24;
        int b = r[o + 6 + (j & 15)] & 0xFF;
        int nib = j < 16 ? b & 0xF : b >> 4;
        return (nib | ((h >>> j) & 1) << 4) - 16;
    }

    /** IQ4_NL / MXFP4 code of value {@code j} (0..31) of a block whose 16 quant bytes start at {@code qs}. */
    static int nibble(byte[] r, int qs, int j) {
        int b = r[qs + (j & 15)] & 0xFF;
        return j < 16 ? b & 0xF : b >> 4;
    }

    /** Writes the {@code cols} values of the row in {@code r} (type {@code type}) as floats, as ggml's {@code dequantize_row_*}. */
    public static void dequantize(GgmlType type, byte[] r, int cols, float[] out, int outOff) {
        int bs = type.blockSize();
        int bb = type.blockBytes();
        for (int b = 0; b < cols / bs; b++) {
            int o = b * bb;
            int y = outOff + b * bs;
            switch (type) {
                case Q6_K -> {
                    float d = half(r, o + 208);
                    for (int v = 0; v < 256; v++) {
                        float dsc = d * r[o + 192 + v / 16];
                        out[y + v] = dsc * (q6(r, o, v) - 32);
                    }
                }
                case Q5_K, Q4_K -> {
                    float d = half(r, o);
                    float min = half(r, o + 2);
                    for (int j = 0; j < 8; j++) {
                        float dl = d * scaleMinK4(r, o + 4, j, 0);
                        float ml = min * scaleMinK4(r, o + 4, j, 1);
                        for (int l = 0; l < 32; l++) {
                            int v = 32 * j + l;
                            int q = type == GgmlType.Q5_K ? q5k(r, o, v) : q4k(r, o, v);
                            out[y + v] = dl * q - ml;
                        }
                    }
                }
                case Q3_K -> {
                    float d = half(r, o + 108);
                    for (int i = 0; i < 16; i++) {
                        float dl = d * scaleQ3K(r, o + 96, i);
                        for (int l = 0; l < 16; l++) {
                            out[y + 16 * i + l] = dl * q3k(r, o, 16 * i + l);
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
                        for (int l = 0; l < 16; l++) {
                            out[y + 16 * i + l] = dl * q2k(r, o, 16 * i + l) - ml;
                        }
                    }
                }
                case Q5_0 -> {
                    float d = half(r, o);
                    for (int j = 0; j < 32; j++) {
                        out[y + j] = q50(r, o, j) * d;
                    }
                }
                case IQ4_NL -> {
                    float d = half(r, o);
                    for (int j = 0; j < 32; j++) {
                        out[y + j] = d * IQ4_NL_VALUES[nibble(r, o + 2, j)];
                    }
                }
                case MXFP4 -> {
                    float d = e8m0Half(r[o] & 0xFF);
                    for (int j = 0; j < 32; j++) {
                        out[y + j] = MXFP4_VALUES[nibble(r, o + 1, j)] * d;
                    }
                }
                default -> throw new IllegalArgumentException("not a K-quant family type: " + type);
            }
        }
    }
}
