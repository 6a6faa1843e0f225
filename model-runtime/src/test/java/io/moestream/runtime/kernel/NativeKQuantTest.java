package io.moestream.runtime.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The native K-quant, Q5_0, IQ4_NL and MXFP4 rows ({@code kquant.h}) bit for bit against {@link KQuantKernels}' Java rows,
 * in gemv and gemm order, over random blocks (every quant, scale and min value) and activations with
 * outliers. Skipped where the native library is not built or the CPU lacks AVX2.
 */
class NativeKQuantTest {

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q5_0", "IQ4_NL", "MXFP4"})
    void nativeRowsEqualJavaRowsBitForBit(GgmlType type) {
        assumeTrue(NativeKernels.loadedLevel() > 0, "native kernels unavailable: " + NativeKernels.unavailableReason());
        Random rnd = new Random(31 + type.ordinal());
        int cols = 1536;
        int rows = 19;
        byte[] bytes = KQuantKernelsTest.randomRows(type, rows, cols, rnd);
        ByteBuffer w = ByteBuffer.allocateDirect(bytes.length + 64).order(ByteOrder.LITTLE_ENDIAN);
        w.position(64);
        w.put(bytes);
        int rowBytes = (int) type.bytesFor(cols);
        for (int trial = 0; trial < 6; trial++) {
            float[] x = new float[cols];
            for (int i = 0; i < cols; i++) {
                x[i] = (float) rnd.nextGaussian() * (i % 61 == trial ? 30 : 1);
            }
            for (boolean gemm : new boolean[] {false, true}) {
                Activation a = new Activation().prepare(x, 0, cols, type).gemmOrder(gemm);
                float[] nat = new float[rows + 3];
                float[] java = new float[rows + 3];
                NativeKQuant.rows(type, w, 64, rowBytes, rows, cols, a, nat, 3);
                KQuantKernels.javaRows(type, w, 64, rowBytes, rows, cols, a, java, 3);
                for (int r = 3; r < rows + 3; r++) {
                    assertThat(Float.floatToRawIntBits(nat[r])).as("%s row %d gemm %s: %s vs %s", type, r, gemm, nat[r], java[r])
                            .isEqualTo(Float.floatToRawIntBits(java[r]));
                }
            }
        }
    }

    /**
     * The AVX-512 kernels (one activation, and up to {@link NativeKQuant#MAX_ACTS} sharing each weight
     * pass, over more than one call's worth; Q4_K in gemv and gemm order) against the Java rows, and the native Q8_K quantization
     * against {@link Q8K#quantize}, including blocks of zeros, NaN, infinities, a tied maximum and a
     * subnormal maximum. Skipped without AVX-512 VNNI.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_K", "Q5_K", "Q6_K"})
    void avx512RowsAndBatchesEqualJavaRowsBitForBit(GgmlType type) {
        assumeTrue(NativeKQuant.zmm(), "AVX-512 K-quant kernels unavailable: " + NativeKernels.unavailableReason());
        Random rnd = new Random(77 + type.ordinal());
        int cols = 1536;
        int rows = 21;
        byte[] bytes = KQuantKernelsTest.randomRows(type, rows, cols, rnd);
        ByteBuffer w = ByteBuffer.allocateDirect(bytes.length + 64).order(ByteOrder.LITTLE_ENDIAN);
        w.position(64);
        w.put(bytes);
        int rowBytes = (int) type.bytesFor(cols);
        int n = 70;
        Activation[] xs = new Activation[n + 2];
        float[][] nat = new float[n + 2][rows + 5];
        for (int k = 0; k < n + 2; k++) {
            float[] x = new float[cols];
            for (int i = 0; i < cols; i++) {
                x[i] = (float) rnd.nextGaussian() * (i % 53 == k % 53 ? 40 : 1);
            }
            xs[k] = new Activation().prepare(x, 0, cols, type);
            assertThat(xs[k].nativeReady).isTrue();
        }
        for (int m : new int[] {1, 2, 3, 5, 9, n}) {
            for (int k = 0; k < n + 2; k++) { // Q4_K: gemm-order runs (1-3 at a time) between gemv ones
                xs[k].gemmOrder(type == GgmlType.Q4_K && m > 1 && k % 7 < 3);
            }
            KQuantKernels.dotsRows(type, w, 64, rowBytes, rows, cols, xs, 2, m, nat, 5);
            for (int k = 2; k < 2 + m; k++) {
                float[] java = new float[rows + 5];
                KQuantKernels.javaRows(type, w, 64, rowBytes, rows, cols, xs[k], java, 5);
                float[] one = new float[rows + 5];
                NativeKQuant.rows(type, w, 64, rowBytes, rows, cols, xs[k], one, 5);
                for (int r = 5; r < rows + 5; r++) {
                    assertThat(Float.floatToRawIntBits(nat[k][r])).as("%s batch of %d, activation %d row %d: %s vs %s",
                            type, m, k, r, nat[k][r], java[r]).isEqualTo(Float.floatToRawIntBits(java[r]));
                    assertThat(Float.floatToRawIntBits(one[r])).as("%s activation %d row %d", type, k, r)
                            .isEqualTo(Float.floatToRawIntBits(java[r]));
                }
            }
        }
    }

    /**
     * Q4_K and Q5_K rows repacked sixteen at a time ({@link KQuantKernels#repack}) against the Java
     * rows over random blocks, blocks at the extremes (every nibble and fifth bit set, every scale and
     * min 63) and rows after the last group; a gemm-order activation is declined and rows outside the
     * copy are refused. Skipped without AVX-512 VNNI.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q4_K", "Q5_K"})
    void repackedRowsEqualJavaRowsBitForBit(GgmlType type) {
        assumeTrue(NativeKQuant.zmm(), "AVX-512 K-quant kernels unavailable: " + NativeKernels.unavailableReason());
        Random rnd = new Random(2024 + type.ordinal());
        int cols = 1536;
        int rows = 3 * 16 + 5;
        int rowBytes = (int) type.bytesFor(cols);
        int blockBytes = type.blockBytes();
        byte[] bytes = KQuantKernelsTest.randomRows(type, rows, cols, rnd);
        for (int r = 16; r < 32; r++) { // group 1: the largest quants, scales and mins
            for (int b = 0; b < cols / 256; b++) {
                java.util.Arrays.fill(bytes, r * rowBytes + blockBytes * b + 4, r * rowBytes + blockBytes * (b + 1), (byte) 0xFF);
            }
        }
        ByteBuffer w = ByteBuffer.allocateDirect(bytes.length + 64).order(ByteOrder.LITTLE_ENDIAN);
        w.position(64);
        w.put(bytes);
        ByteBuffer repacked = KQuantKernels.repack(type, w, 64, rowBytes, rows, cols);
        assertThat(repacked).isNotNull();
        assertThat(KQuantKernels.repack(GgmlType.Q6_K, w, 64, (int) GgmlType.Q6_K.bytesFor(cols), 3, cols)).isNull();
        for (int trial = 0; trial < 6; trial++) {
            float[] x = new float[cols];
            for (int i = 0; i < cols; i++) {
                x[i] = trial == 0 ? (i % 2 == 0 ? -1 : 1) * 100f : (float) rnd.nextGaussian() * (i % 47 == trial ? 30 : 1);
            }
            Activation a = new Activation().prepare(x, 0, cols, type);
            float[] java = new float[rows + 7];
            KQuantKernels.javaRows(type, w, 64, rowBytes, rows, cols, a, java, 7);
            float[] all = new float[rows + 7];
            assertThat(KQuantKernels.dotRowsRepacked(type, repacked, 0, 48, cols, a, all, 7)).isTrue();
            float[] part = new float[rows + 7];
            assertThat(KQuantKernels.dotRowsRepacked(type, repacked, 16, 32, cols, a, part, 7 + 16)).isTrue();
            for (int r = 0; r < 48; r++) {
                assertThat(Float.floatToRawIntBits(all[7 + r])).as("%s trial %d row %d: %s vs %s", type, trial, r, all[7 + r],
                        java[7 + r]).isEqualTo(Float.floatToRawIntBits(java[7 + r]));
                if (r >= 16) {
                    assertThat(Float.floatToRawIntBits(part[7 + r])).as("%s trial %d row %d from group 1", type, trial, r)
                            .isEqualTo(Float.floatToRawIntBits(java[7 + r]));
                }
            }
            Activation gemm = new Activation().prepare(x, 0, cols, type).gemmOrder(true);
            assertThat(KQuantKernels.dotRowsRepacked(type, repacked, 0, 16, cols, gemm, all, 7)).isFalse();
        }
        Activation a = new Activation().prepare(new float[cols], 0, cols, type);
        assertThatThrownBy(() -> KQuantKernels.dotRowsRepacked(type, repacked, 16, 48, cols, a, new float[64], 0))
                .isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> KQuantKernels.dotRowsRepacked(type, repacked, 8, 16, cols, a, new float[64], 0))
                .isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> KQuantKernels.dotRowsRepacked(type, repacked, 0, 16, cols, a, new float[15], 0))
                .isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void nativeQ8KQuantizationEqualsJava() {
        assumeTrue(NativeKQuant.usable(), "native kernels unavailable: " + NativeKernels.unavailableReason());
        Random rnd = new Random(5);
        int n = 256 * 9;
        float[] x = new float[n + 3];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian() * 3;
        }
        java.util.Arrays.fill(x, 3, 3 + 256, 0f);                                 // block 0: zeros
        x[3 + 256 + 7] = Float.NaN;                                                // block 1: a NaN
        x[3 + 512 + 9] = Float.POSITIVE_INFINITY;                                  // block 2: an infinity
        x[3 + 768 + 4] = 50f;                                                      // block 3: tied maximum, sign differs
        x[3 + 768 + 200] = -50f;
        java.util.Arrays.fill(x, 3 + 1024, 3 + 1280, Float.MIN_VALUE);             // block 4: subnormal maximum
        x[3 + 1024 + 11] = -2 * Float.MIN_VALUE;
        java.util.Arrays.fill(x, 3 + 1280, 3 + 1536, Float.NaN);                   // block 5: NaN only
        x[3 + 1536 + 1] = Float.NEGATIVE_INFINITY;                                 // block 6: infinities
        x[3 + 1536 + 2] = Float.POSITIVE_INFINITY;
        short[] q = new short[n];
        float[] d = new float[n / 256];
        int[] bsums = new int[n / 16];
        Q8K.quantize(x, 3, n, q, d, bsums);
        Activation a = new Activation().prepare(x, 3, n, GgmlType.Q6_K);
        assertThat(a.nativeReady).isTrue();
        for (int i = 0; i < n; i++) {
            assertThat(a.q[i]).as("quant %d", i).isEqualTo(q[i]);
        }
        for (int b = 0; b < n / 256; b++) {
            assertThat(Float.floatToRawIntBits(a.kd[b])).as("scale %d: %s vs %s", b, a.kd[b], d[b]).isEqualTo(Float.floatToRawIntBits(d[b]));
        }
        assertThat(java.util.Arrays.copyOf(a.kbsums, n / 16)).isEqualTo(bsums);
    }

    @Test
    void rowsOutsideTheBufferAreRefusedBeforeTheCall() {
        assumeTrue(NativeKernels.loadedLevel() > 0, "native kernels unavailable");
        ByteBuffer w = ByteBuffer.allocateDirect(144 * 3).order(ByteOrder.LITTLE_ENDIAN);
        Activation a = new Activation().prepare(new float[256], 0, 256, GgmlType.Q4_K);
        assertThatThrownBy(() -> NativeKQuant.rows(GgmlType.Q4_K, w, 144, 144, 3, 256, a, new float[3], 0))
                .isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> NativeKQuant.rows(GgmlType.Q4_K, w, 0, 144, 3, 256, a, new float[2], 0))
                .isInstanceOf(IndexOutOfBoundsException.class);
    }
}
