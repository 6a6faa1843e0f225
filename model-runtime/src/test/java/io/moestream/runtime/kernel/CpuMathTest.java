package io.moestream.runtime.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** {@link CpuMath} against values of ggml's AVX-512 code compiled with GCC 12 on an AVX-512 machine. */
class CpuMathTest {

    /** x, ggml_v_expf(x) lane as float bits, where it differs from the correctly rounded exp. */
    static final int[][] VEXP = {
        {0x41877244, 0x4babf714}, {0xc0a001fd, 0x3bdcbc46}, {0xc1320b7c, 0x37769723},
        {0x41904def, 0x4c82180e}, {0x413a01a8, 0x47da906d},
    };

    @Test
    void vexpIsGgmlsVectorExp() {
        for (int[] c : VEXP) {
            float x = Float.intBitsToFloat(c[0]);
            assertThat(Float.floatToRawIntBits(CpuMath.vexp(x))).as("vexp(%s)", x).isEqualTo(c[1]);
            assertThat((float) Math.exp(x)).isNotEqualTo(Float.intBitsToFloat(c[1]));
        }
        assertThat(CpuMath.vexp(0f)).isEqualTo(1f);
        assertThat(CpuMath.vexp(Float.NEGATIVE_INFINITY)).isEqualTo(0f); // masked attention cells
        assertThat(CpuMath.vexp(-200f)).isEqualTo(0f);
        assertThat(CpuMath.vexp(200f)).isEqualTo(Float.POSITIVE_INFINITY);
    }

    @Test
    void reductionsGroupLikeGgml() {
        float[] a = new float[64];
        for (int i = 0; i < 64; i++) {
            a[i] = (float) Math.scalb(1.0 + i / 64.0, (i * 7) % 23 - 11); // magnitudes that make grouping visible
        }
        float[] copy = a.clone();
        float t0 = a[8] + a[0];
        float expected16 = reduce16ByHand(a);
        assertThat(CpuMath.reduce16(a, 0)).isEqualTo(expected16);
        assertThat(t0).isEqualTo(a[8] + a[0]);
        float[] l = new float[16];
        for (int k = 0; k < 16; k++) {
            l[k] = (copy[k] + copy[32 + k]) + (copy[16 + k] + copy[48 + k]);
        }
        assertThat(CpuMath.reduce64(copy, 0)).isEqualTo(reduce16ByHand(l));
    }

    private static float reduce16ByHand(float[] l) {
        float[] t = new float[8];
        for (int k = 0; k < 8; k++) {
            t[k] = l[k] + l[k + 8];
        }
        float u0 = t[0] + t[4];
        float u1 = t[1] + t[5];
        float u2 = t[2] + t[6];
        float u3 = t[3] + t[7];
        return (u0 + u2) + (u1 + u3);
    }

    @Test
    void theLastStepsOfAFloatTailAreFused() {
        // 1 + x*y with x*y = 2^-24 (1 + 2^-36): rounded first it is a tie that goes to 1, fused it is 1 + 2^-23
        float x = 1f + 0x1p-12f;
        float y = 0x1p-24f * (1f - 0x1p-12f + 0x1p-24f);
        float fused = 1f + 0x1p-23f;
        assertThat(Math.fma(x, y, 1f)).isEqualTo(fused);
        assertThat(1f + x * y).isEqualTo(1f);
        // 2 tail values (< 8, GCC's scalar epilogue): fused multiply-adds
        assertThat(CpuMath.dotF32(new float[] {1f, x}, 0, new float[] {1f, y}, 0, 2)).isEqualTo(fused);
        // 8 tail values (GCC's vectorised part): each product rounded, then added in order
        float[] x8 = {1f, x, 0, 0, 0, 0, 0, 0};
        float[] y8 = {1f, y, 0, 0, 0, 0, 0, 0};
        assertThat(CpuMath.dotF32(x8, 0, y8, 0, 8)).isEqualTo(1f);
    }

    @Test
    void softmaxSumsVectorChunksThenTheScalarTailInDouble() {
        float[] in = new float[20];
        for (int i = 0; i < in.length; i++) {
            in[i] = (float) Math.sin(i) * 3;
        }
        float max = Float.NEGATIVE_INFINITY;
        for (float v : in) {
            max = Math.max(max, v);
        }
        float[] out = new float[20];
        CpuMath.softmax(in, out, 20, max);
        float[] e = new float[20];
        for (int i = 0; i < 16; i++) {
            e[i] = CpuMath.vexp(in[i] - max);
        }
        double sum = CpuMath.reduce16(e.clone(), 0);
        for (int i = 16; i < 20; i++) {
            e[i] = Libm.expf(in[i] - max);
            sum += e[i];
        }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < 20; i++) {
            assertThat(out[i]).isEqualTo(e[i] * inv);
        }
    }
}
