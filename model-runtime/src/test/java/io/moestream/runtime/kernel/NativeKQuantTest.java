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
