package io.moestream.runtime.gguf;

import java.nio.ByteBuffer;

/**
 * Encodes float rows into GGUF element types, bit-compatible with ggml's reference quantizers
 * ({@code quantize_row_q8_0_ref}, {@code quantize_row_q4_0_ref}): files we write read back in
 * llama.cpp exactly as files it writes itself.
 */
public final class BlockQuantizer {

    private BlockQuantizer() {}

    /** Writes {@code row} (length a multiple of the type's block size) as {@code type} into {@code out} (little-endian). */
    public static void encode(GgmlType type, float[] row, ByteBuffer out) {
        switch (type) {
            case F32 -> {
                for (float v : row) {
                    out.putFloat(v);
                }
            }
            case F16 -> {
                for (float v : row) {
                    out.putShort(Float16.fromFloat(v));
                }
            }
            case BF16 -> {
                for (float v : row) {
                    out.putShort(Float16.toBf16(v));
                }
            }
            case Q8_0 -> {
                for (int b = 0; b < row.length; b += 32) {
                    float amax = 0;
                    for (int j = 0; j < 32; j++) {
                        amax = Math.max(amax, Math.abs(row[b + j]));
                    }
                    float d = amax / 127f;
                    float id = d != 0 ? 1f / d : 0f;
                    out.putShort(Float16.fromFloat(d));
                    for (int j = 0; j < 32; j++) {
                        out.put((byte) roundHalfAway(row[b + j] * id));
                    }
                }
            }
            case Q4_0 -> {
                for (int b = 0; b < row.length; b += 32) {
                    float amax = 0;
                    float max = 0;
                    for (int j = 0; j < 32; j++) {
                        float v = row[b + j];
                        if (amax < Math.abs(v)) {
                            amax = Math.abs(v);
                            max = v;
                        }
                    }
                    float d = max / -8f;
                    float id = d != 0 ? 1f / d : 0f;
                    out.putShort(Float16.fromFloat(d));
                    for (int j = 0; j < 16; j++) {
                        int lo = Math.min(15, (byte) (row[b + j] * id + 8.5f));
                        int hi = Math.min(15, (byte) (row[b + 16 + j] * id + 8.5f));
                        out.put((byte) (lo | (hi << 4)));
                    }
                }
            }
            default -> throw new IllegalArgumentException("cannot encode " + type + " (supported: F32, F16, BF16, Q8_0, Q4_0)");
        }
    }

    /** C's roundf: halves round away from zero (Java's Math.round rounds them up). */
    private static int roundHalfAway(float v) {
        return v >= 0 ? (int) Math.floor(v + 0.5f) : -(int) Math.floor(-v + 0.5f);
    }
}
