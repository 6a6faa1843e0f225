package io.moestream.runtime.kernel;

import static io.moestream.runtime.kernel.KernelsTest.gaussian;
import static io.moestream.runtime.kernel.KernelsTest.randomRows;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The native Q8_0/Q4_0 kernels against the scalar kernels, bit for bit, on every path the C code
 * has (row groups and their tails, activation tiles and their tails, prefetching near the end of
 * the buffer), and the checks that keep it inside the buffer. The build compiles the kernels
 * wherever gcc exists (CI installs it), so these tests run there; {@code moestream.native.required=false}
 * lets a machine without a compiler skip them.
 */
class NativeKernelsTest {

    private static Kernels kernels;

    @BeforeAll
    static void load() {
        kernels = Kernels.nativeOrNull();
        if (kernels == null && !Boolean.parseBoolean(System.getProperty("moestream.native.required", "true"))) {
            org.junit.jupiter.api.Assumptions.abort("native kernels unavailable: " + NativeKernels.unavailableReason());
        }
        assertThat(kernels).as("native kernels: " + NativeKernels.unavailableReason()).isNotNull();
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0"})
    void rowGroupsAndTailsGiveTheScalarKernelsBits(GgmlType type) {
        SplittableRandom r = new SplittableRandom(31);
        for (int cols : KernelsTest.COLS) {
            for (int rows : new int[] {1, 3, 4, 7, 8, 9, 15, 16, 17, 19}) {
                ByteBuffer w = randomRows(type, rows + 1, cols, r);
                int rowBytes = (int) type.bytesFor(cols);
                Activation x = new Activation().prepare(gaussian(cols, r, 1f), 0, cols, type);
                float[] out = new float[rows + 3];
                kernels.dotRows(type, w, rowBytes, rowBytes, rows, cols, x, out, 2); // from row 1: the last row ends the buffer
                for (int i = 0; i < rows; i++) {
                    assertThat(out[i + 2]).as(type + " cols " + cols + " rows " + rows + " row " + i)
                            .isEqualTo(Kernels.scalar().dot(type, w, (i + 1) * rowBytes, cols, x));
                }
                assertThat(out[0]).isZero();
                assertThat(out[1]).isZero();
                assertThat(out[rows + 2]).isZero();
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0"})
    void batchedTilesAndTailsGiveTheScalarKernelsBits(GgmlType type) {
        SplittableRandom r = new SplittableRandom(37);
        for (int cols : new int[] {32, 160, 1056}) {
            for (int n : new int[] {2, 5, 8, 9, 16, 20}) {
                int rows = 1 + r.nextInt(6);
                ByteBuffer w = randomRows(type, rows, cols, r);
                int rowBytes = (int) type.bytesFor(cols);
                Activation[] xs = new Activation[n];
                for (int k = 0; k < n; k++) {
                    xs[k] = new Activation().prepare(gaussian(cols, r, k % 3 == 0 ? 1e-3f : 1f), 0, cols, type);
                }
                float[][] out = new float[n][rows + 1];
                kernels.dotsRows(type, w, 0, rowBytes, rows, cols, xs, 0, n, out, 1);
                for (int k = 0; k < n; k++) {
                    assertThat(out[k][0]).isZero();
                    for (int i = 0; i < rows; i++) {
                        assertThat(out[k][i + 1]).as(type + " cols " + cols + " n " + n + " x" + k + " row " + i)
                                .isEqualTo(Kernels.scalar().dot(type, w, i * rowBytes, cols, xs[k]));
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0"})
    void extremeQuantsAndAZeroBlockAreExact(GgmlType type) {
        int cols = 64;
        int rowBytes = (int) type.bytesFor(cols);
        int blockBytes = rowBytes / 2;
        ByteBuffer w = ByteBuffer.allocateDirect(4 * rowBytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < w.capacity(); i++) {
            w.put(i, (byte) (i % 2 == 0 ? 0x80 : 0x7F)); // Q8_0: -128 and 127; Q4_0: nibbles 0/8 and 15/7
        }
        for (int row = 0; row < 4; row++) {
            for (int b = 0; b < 2; b++) {
                w.putShort(row * rowBytes + b * blockBytes, (short) 0x3C00); // 1.0
            }
        }
        float[] x = new float[cols];
        for (int i = 0; i < 32; i++) {
            x[i] = i % 2 == 0 ? -1f : 1f; // first block: quants -127 / 127; second block all zero (d = 0)
        }
        Activation a = new Activation().prepare(x, 0, cols, type);
        float[] out = new float[4];
        kernels.dotRows(type, w, 0, rowBytes, 4, cols, a, out, 0);
        for (int row = 0; row < 4; row++) {
            assertThat(out[row]).isEqualTo(Kernels.scalar().dot(type, w, row * rowBytes, cols, a));
        }
        if (type == GgmlType.Q8_0) {
            // 16 pairs of (-128 * -127 + 127 * 127), scale 1 * 1/127 rounded through F16
            assertThat(out[0]).isCloseTo(16 * (128 * 127 + 127 * 127) / 127f, org.assertj.core.data.Offset.offset(2f));
        }
    }

    @Test
    void rowsOutsideTheBufferAreRefusedBeforeTheNativeCall() {
        GgmlType type = GgmlType.Q8_0;
        int cols = 64;
        int rowBytes = (int) type.bytesFor(cols);
        ByteBuffer w = randomRows(type, 3, cols, new SplittableRandom(1));
        Activation x = new Activation().prepare(new float[cols], 0, cols, type);
        float[] out = new float[8];
        assertThatThrownBy(() -> kernels.dotRows(type, w, rowBytes, rowBytes, 3, cols, x, out, 0))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("do not fit a buffer of " + 3 * rowBytes);
        assertThatThrownBy(() -> kernels.dotRows(type, w, -34, rowBytes, 1, cols, x, out, 0))
                .isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> kernels.dotRows(type, w, 0, rowBytes, 3, cols, x, out, 6))
                .isInstanceOf(IndexOutOfBoundsException.class);
        Activation shorter = new Activation().prepare(new float[32], 0, 32, type);
        assertThatThrownBy(() -> kernels.dotRows(type, w, 0, rowBytes, 3, cols, shorter, out, 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("activation of 32 values for rows of 64");
    }

    @Test
    void otherTypesAndHeapBuffersGoToTheJavaKernels() {
        SplittableRandom r = new SplittableRandom(41);
        int cols = 96;
        for (GgmlType type : new GgmlType[] {GgmlType.F16, GgmlType.F32, GgmlType.Q8_0}) {
            ByteBuffer direct = randomRows(type, 2, cols, r);
            ByteBuffer heap = ByteBuffer.allocate(direct.capacity()).order(ByteOrder.LITTLE_ENDIAN);
            heap.put(0, direct, 0, direct.capacity());
            Activation x = new Activation().prepare(gaussian(cols, r, 1f), 0, cols, type);
            int rowBytes = (int) type.bytesFor(cols);
            assertThat(kernels.dot(type, heap, rowBytes, cols, x)).isEqualTo(Kernels.scalar().dot(type, direct, rowBytes, cols, x));
            assertThat(kernels.dot(type, direct, rowBytes, cols, x)).isEqualTo(Kernels.scalar().dot(type, direct, rowBytes, cols, x));
        }
        assertThat(kernels.name()).startsWith("native-");
    }
}
