package io.moestream.runtime.kernel;

/**
 * The row operations outside the matmuls (RMSNorm, SwiGLU, softmax, sigmoid) with the float
 * operations of llama.cpp's CPU backend on an AVX-512 machine, so that the activations fed to the
 * next Q8_0/F16 quantization are the same bits: a one-ulp difference can move a quant across a
 * rounding boundary and the logits by 0.1 or more.
 *
 * <p>Row lengths that are a multiple of 16 run through ggml's 16-lane code ({@link #vexp}, an
 * {@code expf} approximation accurate to ~1.5 ulp that is <em>not</em> libm's); the remaining
 * {@code n % 16} values take ggml's scalar tail (glibc's {@code expf}, {@link Libm}).
 * Stateless; every method writes only its output arguments.
 */
public final class CpuMath {

    private CpuMath() {}

    /**
     * One lane of ggml's AVX-512 {@code ggml_v_expf} (ARM optimized-routines' expf): {@code 2^n * p(b)}
     * with {@code n = round(x / ln2)}, {@code b = x - n ln2} in two fma steps and a degree-5
     * polynomial; beyond |n| > 192 it saturates to 0 or infinity.
     */
    public static float vexp(float x) {
        float r = 0x1.8p23f;
        float z = Math.fma(x, 0x1.715476p+0f, r);
        float n = z - r;
        float b = Math.fma(-n, 0x1.7f7d1cp-20f, Math.fma(-n, 0x1.62e4p-1f, x));
        if (!(Math.abs(n) <= 192)) {
            return n <= 0 ? 0f : Float.POSITIVE_INFINITY;
        }
        float u = b * b;
        float j = Math.fma(
                Math.fma(Math.fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, Math.fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                u,
                Math.fma(0x1.ffffecp-1f, b, 1.0f));
        return Math.scalb(j, (int) n);
    }

    /** libm's {@code expf}, which ggml's scalar tails call ({@link Libm#expf}). */
    public static float expf(float x) {
        return Libm.expf(x);
    }

    /**
     * ggml's {@code swiglu_oai} (gpt-oss), scalar as ggml runs it: {@code x = min(g, limit)},
     * {@code y = clamp(u, -limit, limit)}, {@code g = x / (1 + expf(alpha * -x)) * (y + 1)} with libm's
     * expf, for the first n values, in place.
     */
    public static void swigluOai(float[] g, float[] u, int n, float alpha, float limit) {
        for (int i = 0; i < n; i++) {
            float x = limit < g[i] ? limit : g[i];
            float y = u[i] < -limit ? -limit : (limit < u[i] ? limit : u[i]);
            float glu = x / (1f + expf(alpha * (-x)));
            g[i] = glu * (y + 1f);
        }
    }

    /** {@code ggml_vec_swiglu_f32}: {@code g[i] = silu(g[i]) * u[i]} for the first n values, in place. */
    public static void swiglu(float[] g, float[] u, int n) {
        int vectorPart = n & ~15;
        for (int i = 0; i < vectorPart; i++) {
            float x = g[i];
            g[i] = x / (1f + vexp(0f - x)) * u[i];
        }
        for (int i = vectorPart; i < n; i++) {
            g[i] = silu(g[i]) * u[i];
        }
    }

    /** {@code ggml_silu_f32}: {@code x / (1 + expf(-x))} with libm's expf. */
    public static float silu(float x) {
        return x / (1f + expf(-x));
    }

    /**
     * {@code ggml_vec_dot_f32} on AVX-512: 4 x 16 fma lanes over steps of 64 values, reduced as
     * {@link #reduce64}, then the {@code n % 64} tail added one by one in float, as GCC compiles
     * that loop ({@link #addTail}).
     */
    public static float dotF32(float[] x, int xOff, float[] y, int yOff, int n) {
        return dotF32(x, xOff, y, yOff, n, n >= 64 ? new float[64] : null);
    }

    /** {@link #dotF32(float[], int, float[], int, int)} with the 64 lanes in {@code scratch} (needed when n >= 64). */
    public static float dotF32(float[] x, int xOff, float[] y, int yOff, int n, float[] scratch) {
        int np = n & ~63;
        float sum = 0f;
        if (np > 0) {
            java.util.Arrays.fill(scratch, 0, 64, 0f);
            for (int i = 0; i < np; i += 64) {
                for (int e = 0; e < 64; e++) {
                    scratch[e] = Math.fma(x[xOff + i + e], y[yOff + i + e], scratch[e]);
                }
            }
            sum = reduce64(scratch, 0);
        }
        int plain = np + ((n - np) & ~7);
        for (int i = np; i < n; i++) {
            sum = addTail(sum, x[xOff + i], y[yOff + i], i < plain);
        }
        return sum;
    }

    /**
     * One step of ggml's scalar {@code sumf += x[i]*y[i]} tail as GCC 12 ({@code -O3 -march=native},
     * which contracts by default) compiles it: the vectorised part of the loop (whole groups of 8)
     * rounds each product and adds in order; the last {@code count % 8} steps are fused
     * multiply-adds.
     */
    public static float addTail(float sum, float x, float y, boolean vectorised) {
        return vectorised ? sum + x * y : Math.fma(x, y, sum);
    }

    /**
     * ggml's {@code GGML_F32_VEC_REDUCE} of its 4 x 16 accumulators {@code a[off + 16 j + lane]}:
     * {@code (a0 + a2) + (a1 + a3)} lane-wise, then {@link #reduce16}. Overwrites
     * {@code a[off .. off+16)}.
     */
    public static float reduce64(float[] a, int off) {
        for (int k = 0; k < 16; k++) {
            a[off + k] = (a[off + k] + a[off + 32 + k]) + (a[off + 16 + k] + a[off + 48 + k]);
        }
        return reduce16(a, off);
    }

    /** GCC's {@code _mm512_reduce_add_ps} of {@code a[off .. off+16)}: halves, quarters, then lanes two apart, then neighbours. */
    public static float reduce16(float[] a, int off) {
        float t0 = a[off + 8] + a[off];
        float t1 = a[off + 9] + a[off + 1];
        float t2 = a[off + 10] + a[off + 2];
        float t3 = a[off + 11] + a[off + 3];
        float t4 = a[off + 12] + a[off + 4];
        float t5 = a[off + 13] + a[off + 5];
        float t6 = a[off + 14] + a[off + 6];
        float t7 = a[off + 15] + a[off + 7];
        float u0 = t4 + t0;
        float u1 = t5 + t1;
        float u2 = t6 + t2;
        float u3 = t7 + t3;
        return (u0 + u2) + (u1 + u3);
    }

    /**
     * {@code ggml_vec_soft_max_f32} followed by ggml's normalisation: {@code e = exp(x - max)} with
     * {@link #vexp} for the first {@code n & ~15} values (each 16 summed by {@link #reduce16} and
     * added to a double) and libm's expf for the rest (added to the double one by one), then
     * {@code out = e * (float) (1 / sum)}. {@code out} may be {@code in}.
     */
    public static void softmax(float[] in, float[] out, int n, float max) {
        int vectorPart = n & ~15;
        double sum = 0;
        for (int c = 0; c < vectorPart; c += 16) {
            for (int i = c; i < c + 16; i++) {
                out[i] = vexp(in[i] - max);
            }
            sum += reduce16(out, c);
        }
        for (int i = vectorPart; i < n; i++) {
            out[i] = expf(in[i] - max);
            sum += out[i];
        }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < n; i++) {
            out[i] *= inv;
        }
    }

    /**
     * {@code out[outOff + i]} = the lanes {@code acc[lane * hd + i]} (64 or 16 rows of {@code hd})
     * added up as {@link #reduce64} (64 lanes) or {@link #reduce16} (16) do, for all i at once
     * (float addition commutes, so only the grouping matters): attention's value sums in ggml's
     * order. Destroys {@code acc}.
     */
    public static void reduceLanes(float[] acc, int lanes, int hd, float[] out, int outOff) {
        if (lanes == 64) {
            for (int k = 0; k < 16; k++) {
                for (int i = 0; i < hd; i++) {
                    acc[k * hd + i] = (acc[k * hd + i] + acc[(32 + k) * hd + i]) + (acc[(16 + k) * hd + i] + acc[(48 + k) * hd + i]);
                }
            }
        }
        for (int width = 8; width >= 2; width /= 2) {
            for (int k = 0; k < width; k++) {
                for (int i = 0; i < hd; i++) {
                    acc[k * hd + i] += acc[(k + width) * hd + i];
                }
            }
        }
        for (int i = 0; i < hd; i++) {
            out[outOff + i] = acc[i] + acc[hd + i];
        }
    }
}
