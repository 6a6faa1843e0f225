package io.moestream.runtime.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * {@link Libm} against glibc 2.36 (x86-64, FMA build) on arguments where Java's
 * {@code (float) Math.exp/pow/sin/cos} rounds the other way; the port matched glibc on 4 million
 * arguments each when it was written (docs/runtime.md).
 */
class LibmTest {

    /** x, glibc expf(x) as float bits. */
    static final int[][] EXPF = {
        {0xc1af2510, 0x2faaa7a5}, {0x41b88120, 0x501aa8b4}, {0xbf759280, 0x3ec42f5b},
        {0x4107c1ca, 0x4597457e}, {0xc088f752, 0x3c62c147}, {0x3f9d8ae9, 0x405b2262},
    };
    /** x, glibc sinf(x), cosf(x) as float bits: small, fast-reduced (< 120) and large arguments. */
    static final int[][] SINCOSF = {
        {0x3fb2383c, 0x3f7bef3a, 0x3e35c50e}, {0x3ff3efda, 0x3f71c5b8, 0xbea84f97}, {0x3fb98588, 0x3f7e1d97, 0x3df808e8},
        {0x42762c56, 0xbf75df00, 0x3e8e9893}, {0x43625a6b, 0x3e21a652, 0x3f7cca44}, {0x436bc5d6, 0xbe1c69cb, 0xbf7cfef4},
        {0x439e60d1, 0x3f0499e4, 0xbf5afb49}, {0x4410c777, 0x3f5fc556, 0x3ef8b28d},
    };

    @Test
    void expfIsGlibcs() {
        for (int[] c : EXPF) {
            float x = Float.intBitsToFloat(c[0]);
            assertThat(Float.floatToRawIntBits(Libm.expf(x))).as("expf(%s)", x).isEqualTo(c[1]);
            assertThat((float) Math.exp(x)).as("Java rounds %s differently", x).isNotEqualTo(Float.intBitsToFloat(c[1]));
        }
    }

    @Test
    void powfIsGlibcsForRopeThetaScales() {
        // base, n_dims, glibc powf(base, -2.0f / n_dims) as float bits
        float[][] cases = {{20000f, 4}, {20000f, 216}, {40000f, 118}, {12345f, 44}, {12345f, 68}};
        int[] expected = {0x3be7b46b, 0x3f6991b9, 0x3f55e9f4, 0x3f26d365, 0x3f420b78};
        for (int i = 0; i < cases.length; i++) {
            float y = -2.0f / cases[i][1];
            assertThat(Float.floatToRawIntBits(Libm.powf(cases[i][0], y))).as("powf(%s, %s)", cases[i][0], y).isEqualTo(expected[i]);
            assertThat((float) Math.pow(cases[i][0], y)).isNotEqualTo(Float.intBitsToFloat(expected[i]));
        }
        assertThat(Libm.powf(10000f, -0.0625f)).isEqualTo((float) Math.pow(10000, -0.0625)); // the oracle models agree either way
        assertThat(Libm.powf(2f, 0f)).isEqualTo(1f);
        assertThat(Libm.powf(1f, 7.5f)).isEqualTo(1f);
        assertThat(Libm.powf(2f, 10f)).isEqualTo(1024f);
    }

    @Test
    void sinfAndCosfAreGlibcs() {
        for (int[] c : SINCOSF) {
            float x = Float.intBitsToFloat(c[0]);
            assertThat(Float.floatToRawIntBits(Libm.sinf(x))).as("sinf(%s)", x).isEqualTo(c[1]);
            assertThat(Float.floatToRawIntBits(Libm.cosf(x))).as("cosf(%s)", x).isEqualTo(c[2]);
        }
    }

    @Test
    void specialArguments() {
        assertThat(Libm.expf(0f)).isEqualTo(1f);
        assertThat(Libm.expf(Float.NEGATIVE_INFINITY)).isEqualTo(0f);
        assertThat(Libm.expf(Float.POSITIVE_INFINITY)).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(Libm.expf(89f)).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(Libm.expf(-104f)).isEqualTo(0f);
        assertThat(Libm.expf(Float.NaN)).isNaN();
        assertThat(Libm.sinf(0f)).isEqualTo(0f);
        assertThat(Libm.cosf(0f)).isEqualTo(1f);
        assertThat(Libm.sinf(1e-5f)).isEqualTo(1e-5f);
        assertThat(Libm.sinf(Float.POSITIVE_INFINITY)).isNaN();
        assertThat(Libm.cosf(Float.NaN)).isNaN();
        for (float x = -700f; x < 700f; x += 0.37f) {
            assertThat((double) Libm.sinf(x)).isCloseTo(Math.sin(x), org.assertj.core.data.Offset.offset(1e-7));
            assertThat((double) Libm.cosf(x)).isCloseTo(Math.cos(x), org.assertj.core.data.Offset.offset(1e-7));
            assertThat((double) Libm.expf(x / 8)).isCloseTo(Math.exp(x / 8), org.assertj.core.data.Offset.offset(1e-6 * Math.exp(x / 8)));
        }
    }
}
