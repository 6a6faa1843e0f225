package io.moestream.runtime.kernel;

/**
 * glibc's single-precision {@code expf}, {@code powf} and {@code sincosf} (the ARM
 * optimized-routines algorithms glibc has used since 2.28, in its x86-64 FMA build), bit for bit:
 * llama.cpp calls them for RoPE angles and the scalar tails of softmax, SiLU and sigmoid, and
 * Java's {@code (float) Math.exp/pow/cos/sin} round differently for about 1 in 2,000 (exp, pow)
 * and 1 in 60 (cos/sin) arguments. Checked against glibc 2.36 on 3-4 million arguments each (see
 * docs/runtime.md).
 *
 * <p>Both work in double: {@code expf} splits {@code x / ln2} into a multiple of 1/32 (a table of
 * 2^(i/32)) and a remainder for a cubic; {@code sincosf} reduces the argument by pi/2 (by one
 * multiply below 120, with a 192-bit 4/pi integer product above) and evaluates the sine and cosine
 * polynomials. Stateless.
 */
public final class Libm {

    /** {@code bits(2^(i/32)) - (i << 47)}: 2^(k/32) is {@code double(TAB[k % 32] + (k << 47))}. */
    private static final long[] EXP2_TAB = {
        0x3ff0000000000000L, 0x3fefd9b0d3158574L, 0x3fefb5586cf9890fL, 0x3fef9301d0125b51L,
        0x3fef72b83c7d517bL, 0x3fef54873168b9aaL, 0x3fef387a6e756238L, 0x3fef1e9df51fdee1L,
        0x3fef06fe0a31b715L, 0x3feef1a7373aa9cbL, 0x3feedea64c123422L, 0x3feece086061892dL,
        0x3feebfdad5362a27L, 0x3feeb42b569d4f82L, 0x3feeab07dd485429L, 0x3feea47eb03a5585L,
        0x3feea09e667f3bcdL, 0x3fee9f75e8ec5f74L, 0x3feea11473eb0187L, 0x3feea589994cce13L,
        0x3feeace5422aa0dbL, 0x3feeb737b0cdc5e5L, 0x3feec49182a3f090L, 0x3feed503b23e255dL,
        0x3feee89f995ad3adL, 0x3feeff76f2fb5e47L, 0x3fef199bdd85529cL, 0x3fef3720dcef9069L,
        0x3fef5818dcfba487L, 0x3fef7c97337b9b5fL, 0x3fefa4afa2a490daL, 0x3fefd0765b6e4540L,
    };
    private static final double EXP_SHIFT = 0x1.8p+52;
    private static final double INV_LN2_32 = 0x1.71547652b82fep+0 * 32;
    private static final double EXP_C0 = 0x1.c6af84b912394p-5 / 32 / 32 / 32;
    private static final double EXP_C1 = 0x1.ebfce50fac4f3p-3 / 32 / 32;
    private static final double EXP_C2 = 0x1.62e42ff0c52d6p-1 / 32;

    /** powf's log2: per interval of the mantissa 1/c and log2(c), and log1p(r)/ln2 ~ poly(r). */
    private static final double[] LOG2_INVC = {
        0x1.661ec79f8f3bep+0, 0x1.571ed4aaf883dp+0, 0x1.49539f0f010bp+0, 0x1.3c995b0b80385p+0,
        0x1.30d190c8864a5p+0, 0x1.25e227b0b8eap+0, 0x1.1bb4a4a1a343fp+0, 0x1.12358f08ae5bap+0,
        0x1.0953f419900a7p+0, 0x1p+0, 0x1.e608cfd9a47acp-1, 0x1.ca4b31f026aap-1,
        0x1.b2036576afce6p-1, 0x1.9c2d163a1aa2dp-1, 0x1.886e6037841edp-1, 0x1.767dcf5534862p-1,
    };
    private static final double[] LOG2_LOGC = {
        -0x1.efec65b963019p-2, -0x1.b0b6832d4fca4p-2, -0x1.7418b0a1fb77bp-2, -0x1.39de91a6dcf7bp-2,
        -0x1.01d9bf3f2b631p-2, -0x1.97c1d1b3b7afp-3, -0x1.2f9e393af3c9fp-3, -0x1.960cbbf788d5cp-4,
        -0x1.a6f9db6475fcep-5, 0x0p+0, 0x1.338ca9f24f53dp-4, 0x1.476a9543891bap-3,
        0x1.e840b4ac4e4d2p-3, 0x1.40645f0c6651cp-2, 0x1.88e9c2c1b9ff8p-2, 0x1.ce0a44eb17bccp-2,
    };
    private static final double[] LOG2_POLY = {
        0x1.27616c9496e0bp-2, -0x1.71969a075c67ap-2, 0x1.ec70a6ca7baddp-2, -0x1.7154748bef6c8p-1, 0x1.71547652ab82bp0,
    };

    /** 2/pi scaled by 2^24 (the quadrant lands in bits 24..31), pi/2, 2pi * 2^-64, pi/4. */
    private static final double HALF_PI_INV = 0x1.45F306DC9C883p+23;
    private static final double HALF_PI = 0x1.921FB54442D18p0;
    private static final double PI63 = 0x1.921FB54442D18p-62;
    private static final float PI_OVER_4 = (float) 0x1.921FB54442D18p-1;
    /** Cosine (c0..c4) and sine (s1..s3) polynomials; the second set computes -cos. */
    private static final double[] POLY = {
        0x1p0, -0x1.ffffffd0c621cp-2, 0x1.55553e1068f19p-5, -0x1.6c087e89a359dp-10, 0x1.99343027bf8c3p-16,
        -0x1.555545995a603p-3, 0x1.1107605230bc4p-7, -0x1.994eb3774cf24p-13,
    };
    private static final double[] POLY_NEG_COS = {
        -0x1p0, 0x1.ffffffd0c621cp-2, -0x1.55553e1068f19p-5, 0x1.6c087e89a359dp-10, -0x1.99343027bf8c3p-16,
        -0x1.555545995a603p-3, 0x1.1107605230bc4p-7, -0x1.994eb3774cf24p-13,
    };
    /** 4/pi to 192 bits; entry i holds the 32 bits ending 8 (i + 1) bits after the binary point. */
    private static final int[] INV_PIO4 = invPio4();

    private Libm() {}

    /**
     * glibc's {@code logf}: the double logarithm rounded to float, which is glibc's result wherever
     * that is correctly rounded (checked on the constants the runtime takes logarithms of: YaRN's
     * factors and correction dimensions).
     */
    public static float logf(float x) {
        return (float) StrictMath.log(x);
    }

    /** glibc's {@code expf}. */
    public static float expf(float x) {
        int abstop = (Float.floatToRawIntBits(x) >>> 20) & 0x7ff;
        if (abstop >= (Float.floatToRawIntBits(88.0f) >>> 20)) {
            if (x == Float.NEGATIVE_INFINITY) {
                return 0f;
            }
            if (abstop >= 0x7f8) {
                return x + x;
            }
            if (x > 0x1.62e42ep6f) {
                return Float.POSITIVE_INFINITY;
            }
            if (x < -0x1.9fe368p6f) {
                return 0f;
            }
        }
        double z = INV_LN2_32 * x;
        double kd = z + EXP_SHIFT;
        long ki = Double.doubleToRawLongBits(kd);
        kd -= EXP_SHIFT;
        double r = z - kd;
        double s = Double.longBitsToDouble(EXP2_TAB[(int) (ki & 31)] + (ki << 47));
        double p = Math.fma(EXP_C0, r, EXP_C1);
        double y = Math.fma(EXP_C2, r, 1);
        y = Math.fma(p, r * r, y);
        return (float) (y * s);
    }

    /**
     * glibc's {@code powf} for a positive finite {@code x} and finite {@code y} (what RoPE's
     * {@code powf(freq_base, -2/n_dims)} needs): {@code 2^(y log2 x)} with log2 from a 16-interval
     * table and a quintic, exp2 as in {@link #expf}. Other arguments fall back to {@link Math#pow}.
     */
    public static float powf(float x, float y) {
        int ix = Float.floatToRawIntBits(x);
        if (!(x > 0f) || Float.isInfinite(x) || !Float.isFinite(y)) {
            return (float) Math.pow(x, y);
        }
        if (y == 0f || x == 1f) {
            return 1f;
        }
        if (ix < 0x00800000) {
            // subnormal: normalise so that the biased exponent becomes negative
            ix = (Float.floatToRawIntBits(x * 0x1p23f) & 0x7fffffff) - (23 << 23);
        }
        double ylogx = y * log2(ix);
        if (ylogx > 0x1.fffffffd1d571p+6) {
            return Float.POSITIVE_INFINITY;
        }
        if (ylogx <= -150.0) {
            return 0f;
        }
        double kd = ylogx + EXP_SHIFT / 32;
        long ki = Double.doubleToRawLongBits(kd);
        kd -= EXP_SHIFT / 32;
        double r = ylogx - kd;
        double s = Double.longBitsToDouble(EXP2_TAB[(int) (ki & 31)] + (ki << 47));
        double p = Math.fma(EXP_C0 * 32 * 32 * 32, r, EXP_C1 * 32 * 32);
        double q = Math.fma(EXP_C2 * 32, r, 1);
        q = Math.fma(p, r * r, q);
        return (float) (q * s);
    }

    /** log2 of the float with bits {@code ix} (positive, normal or pre-normalised), for {@link #powf}. */
    private static double log2(int ix) {
        int tmp = ix - 0x3f330000;
        int i = (tmp >>> 19) & 15;
        int top = tmp & 0xff800000;
        double z = Float.intBitsToFloat(ix - top);
        int k = top >> 23;
        double r = Math.fma(z, LOG2_INVC[i], -1.0);
        double y0 = LOG2_LOGC[i] + k;
        double r2 = r * r;
        double y = Math.fma(LOG2_POLY[0], r, LOG2_POLY[1]);
        double p = Math.fma(LOG2_POLY[2], r, LOG2_POLY[3]);
        double r4 = r2 * r2;
        double q = Math.fma(LOG2_POLY[4], r, y0);
        q = Math.fma(p, r2, q);
        return Math.fma(y, r4, q);
    }

    /** glibc's {@code sinf}. */
    public static float sinf(float x) {
        return sincosf(x, true);
    }

    /** glibc's {@code cosf}. */
    public static float cosf(float x) {
        return sincosf(x, false);
    }

    private static float sincosf(float y, boolean sine) {
        double x = y;
        int abstop = (Float.floatToRawIntBits(y) >>> 20) & 0x7ff;
        if (abstop < ((Float.floatToRawIntBits(PI_OVER_4) >>> 20) & 0x7ff)) {
            if (abstop < ((Float.floatToRawIntBits(0x1p-12f) >>> 20) & 0x7ff)) {
                return sine ? y : 1f;
            }
            return poly(x, x * x, POLY, 0, sine);
        }
        if (abstop < ((Float.floatToRawIntBits(120.0f) >>> 20) & 0x7ff)) {
            int n = (((int) (x * HALF_PI_INV)) + 0x800000) >> 24;
            x = Math.fma(-(double) n, HALF_PI, x);
            double s = (n & 2) == 0 ? ((n & 1) == 0 ? 1.0 : -1.0) : ((n & 1) == 0 ? -1.0 : 1.0);
            return poly(x * s, x * x, (n & 2) != 0 ? POLY_NEG_COS : POLY, n, sine);
        }
        if (abstop < 0x7f8) {
            int xi = Float.floatToRawIntBits(y);
            int sign = xi >>> 31;
            int idx = (xi >>> 26) & 15;
            long m = (((long) (xi & 0xffffff) | 0x800000L) << ((xi >>> 23) & 7)) & 0xffffffffL;
            long res0 = (m * (INV_PIO4[idx] & 0xffffffffL)) & 0xffffffffL;
            long res1 = m * (INV_PIO4[idx + 4] & 0xffffffffL);
            long res2 = m * (INV_PIO4[idx + 8] & 0xffffffffL);
            res0 = ((res2 >>> 32) | (res0 << 32)) + res1;
            long n = (res0 + (1L << 61)) >>> 62;
            res0 -= n << 62;
            x = (double) res0 * PI63;
            int q = (int) n + sign;
            double s = (q & 2) == 0 ? ((q & 1) == 0 ? 1.0 : -1.0) : ((q & 1) == 0 ? -1.0 : 1.0);
            return poly(x * s, x * x, (q & 2) != 0 ? POLY_NEG_COS : POLY, (int) n, sine);
        }
        return y - y;
    }

    /** The sine and cosine polynomials on the reduced argument; an odd quadrant swaps them. */
    private static float poly(double x, double x2, double[] p, int n, boolean sine) {
        double x3 = x2 * x;
        double x4 = x2 * x2;
        if (sine == ((n & 1) == 0)) {
            double s1 = Math.fma(x2, p[7], p[6]);
            double s = Math.fma(x3, p[5], x);
            return (float) Math.fma(x3 * x2, s1, s);
        }
        double c2 = Math.fma(x2, p[4], p[3]);
        double c1 = Math.fma(x2, p[1], p[0]);
        double c = Math.fma(x4, p[2], c1);
        return (float) Math.fma(x4 * x2, c2, c);
    }

    private static int[] invPio4() {
        String hex = "a2f9836e4e441529fc2757d1f534ddc0db6295993c439041";
        int[] t = new int[24];
        for (int i = 0; i < 24; i++) {
            int from = Math.max(0, 2 * (i - 3));
            t[i] = (int) Long.parseLong(hex.substring(from, 2 * (i + 1)), 16);
        }
        return t;
    }
}
