package io.moestream.runtime.gguf;

/**
 * IEEE half precision and bfloat16 conversions (Java 17 has no {@code Float.float16ToFloat}).
 * Half to float goes through a 64 Ki table because weight reads call it per element.
 */
public final class Float16 {

    private static final float[] HALF_TO_FLOAT = new float[1 << 16];

    static {
        for (int h = 0; h < HALF_TO_FLOAT.length; h++) {
            HALF_TO_FLOAT[h] = convert((short) h);
        }
    }

    private Float16() {}

    /** The float value of the half-precision bits {@code h}. */
    public static float toFloat(short h) {
        return HALF_TO_FLOAT[h & 0xFFFF];
    }

    /** The float value of the bfloat16 bits {@code b} (the upper half of a float). */
    public static float bf16ToFloat(short b) {
        return Float.intBitsToFloat((b & 0xFFFF) << 16);
    }

    /** Rounds {@code f} to the nearest half (ties to even), as numpy and ggml do. */
    public static short fromFloat(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int exp = (bits >>> 23) & 0xFF;
        int mant = bits & 0x7FFFFF;
        if (exp == 0xFF) {
            return (short) (sign | 0x7C00 | (mant != 0 ? 0x200 : 0));
        }
        int e = exp - 127 + 15;
        if (e >= 0x1F) {
            return (short) (sign | 0x7C00);
        }
        if (e <= 0) {
            if (e < -10) {
                return (short) sign;
            }
            mant |= 0x800000;
            int shift = 14 - e;
            int half = mant >> shift;
            int rem = mant & ((1 << shift) - 1);
            int mid = 1 << (shift - 1);
            if (rem > mid || (rem == mid && (half & 1) != 0)) {
                half++;
            }
            return (short) (sign | half);
        }
        int half = (e << 10) | (mant >> 13);
        int rem = mant & 0x1FFF;
        if (rem > 0x1000 || (rem == 0x1000 && (half & 1) != 0)) {
            half++; // may carry into the exponent, which is the correct rounding
        }
        return (short) (sign | half);
    }

    /** Rounds {@code f} to the nearest bfloat16 (ties to even; NaN stays a quiet NaN), as ggml does. */
    public static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return (short) ((bits >>> 16) | 0x40);
        }
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    private static float convert(short h) {
        int bits = h & 0xFFFF;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1F;
        int mant = bits & 0x3FF;
        if (exp == 0) {
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        if (exp == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }
}
