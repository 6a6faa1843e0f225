package io.moestream.runtime.kernel;

import static io.moestream.runtime.kernel.KernelsTest.gaussian;
import static io.moestream.runtime.kernel.KernelsTest.randomRows;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.runtime.gguf.GgmlType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The native Q8_0/Q4_0 kernels against the scalar kernels, bit for bit, on every path the C code
 * has (row streams and the rows left over, activation tiles and their tails, prefetching near the
 * end of the buffer), the native float32 attention against the Java steps, and the checks that keep
 * the C code inside its arrays. The build compiles the kernels
 * wherever gcc exists ({@code .ci/run} installs it), so these tests run there; a build without a C
 * compiler (no library in the jar) or on a CPU without AVX2 skips them, any other reason for missing kernels (the library
 * does not load, a self-test fails) fails them. Every instruction set the CPU has is tested: the
 * AVX2 kernels also on an AVX-512 machine.
 */
class NativeKernelsTest {

    private static Kernels kernels;
    /** The kernels of each instruction-set level this CPU runs (AVX2; AVX-512 VNNI where present). */
    private static final List<Kernels> LEVELS = new ArrayList<>();

    @BeforeAll
    static void load() {
        kernels = Kernels.nativeOrNull();
        if (kernels == null && (NativeKernels.unavailableReason().contains("built without gcc")
                || NativeKernels.unavailableReason().contains("CPU lacks"))) {
            org.junit.jupiter.api.Assumptions.abort("native kernels unavailable: " + NativeKernels.unavailableReason());
        }
        assertThat(kernels).as("native kernels: " + NativeKernels.unavailableReason()).isNotNull();
        LEVELS.add(NativeKernels.orNull(Kernels.scalar(), 1));
        NativeKernels top = NativeKernels.orNull(Kernels.scalar(), 2);
        if (!top.name().equals(LEVELS.get(0).name())) {
            LEVELS.add(top);
        }
    }

    @Test
    void bothInstructionSetsAreTestedWhereTheCpuHasThem() {
        assertThat(LEVELS.get(0).name()).startsWith("native-avx2");
        Kernels java = Kernels.vectorOrNull();
        assertThat(kernels.name()).isEqualTo(LEVELS.get(LEVELS.size() - 1).name()
                .replace("+scalar", "+" + (java == null ? "scalar" : java.name())));
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0"})
    void rowGroupsAndTailsGiveTheScalarKernelsBits(GgmlType type) {
        SplittableRandom r = new SplittableRandom(31);
        for (int cols : KernelsTest.COLS) {
            // rows in streams (4 or 8 lanes, each over its own part of the rows), then the rows left over
            for (int rows : new int[] {1, 3, 4, 7, 8, 9, 15, 16, 17, 19, 35}) {
                ByteBuffer w = randomRows(type, rows + 1, cols, r);
                int rowBytes = (int) type.bytesFor(cols);
                Activation x = new Activation().prepare(gaussian(cols, r, 1f), 0, cols, type);
                float[] out = new float[rows + 3];
                for (Kernels k : LEVELS) {
                    java.util.Arrays.fill(out, 0f);
                    k.dotRows(type, w, rowBytes, rowBytes, rows, cols, x, out, 2); // from row 1: the last row ends the buffer
                    for (int i = 0; i < rows; i++) {
                        assertThat(out[i + 2]).as(k.name() + " " + type + " cols " + cols + " rows " + rows + " row " + i)
                                .isEqualTo(Kernels.scalar().dot(type, w, (i + 1) * rowBytes, cols, x));
                    }
                    assertThat(out[0]).isZero();
                    assertThat(out[1]).isZero();
                    assertThat(out[rows + 2]).isZero();
                }
            }
        }
    }

    @Test
    void repackedQ4RowsGiveTheScalarKernelsBits() {
        SplittableRandom r = new SplittableRandom(41);
        GgmlType type = GgmlType.Q4_0;
        for (int cols : KernelsTest.COLS) {
            for (int rows : new int[] {8, 15, 16, 24, 35}) {
                ByteBuffer w = randomRows(type, rows + 1, cols, r);
                int rowBytes = (int) type.bytesFor(cols);
                Activation x = new Activation().prepare(gaussian(cols, r, 1f), 0, cols, type);
                for (Kernels k : LEVELS) {
                    ByteBuffer repacked = k.repackQ4_0(w, rowBytes, rowBytes, rows, cols); // rows from row 1
                    if (!k.name().startsWith("native-avx512")) {
                        assertThat(repacked).as(k.name() + ": rows in place").isNull();
                        continue;
                    }
                    assertThat(repacked.capacity()).isEqualTo(rows / 8 * (cols / 32) * 144);
                    // every group from every first group, as the pool's row chunks take them
                    for (int first = 0; first < rows / 8 * 8; first += 8) {
                        float[] out = new float[rows + 2];
                        int n = rows / 8 * 8 - first;
                        assertThat(k.dotRowsRepacked(repacked, first, n, cols, x, out, first + 1)).isTrue();
                        for (int i = first; i < first + n; i++) {
                            assertThat(out[i + 1]).as(k.name() + " cols " + cols + " rows " + rows + " first " + first + " row " + i)
                                    .isEqualTo(Kernels.scalar().dot(type, w, (i + 1) * rowBytes, cols, x));
                        }
                        assertThat(out[first]).isZero();
                        assertThat(out[first + n + 1]).isZero();
                    }
                    float[] out = new float[rows];
                    assertThatThrownBy(() -> k.dotRowsRepacked(repacked, 8, rows / 8 * 8, cols, x, out, 0))
                            .isInstanceOf(IndexOutOfBoundsException.class);
                    assertThatThrownBy(() -> k.dotRowsRepacked(repacked, 4, 8, cols, x, out, 0))
                            .isInstanceOf(IndexOutOfBoundsException.class);
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0"})
    void batchedTilesAndTailsGiveTheScalarKernelsBits(GgmlType type) {
        SplittableRandom r = new SplittableRandom(37);
        for (int cols : new int[] {32, 160, 1056}) {
            for (int n : new int[] {1, 2, 4, 5, 8, 9, 16, 20}) {
                // streams of eight or four rows (one, two or more rows each), pairs, and a last odd row
                for (int rows : new int[] {1, 4, 7, 8, 13, 17, 35}) {
                    assertBatchedIsScalar(type, cols, n, rows, r);
                }
            }
        }
    }

    @Test
    void attentionOverFloatBlocksGivesTheJavaStepsBits() {
        SplittableRandom r = new SplittableRandom(43);
        // {len, bt, headDim, heads, a, b}: one position, block edges, several blocks, lane wrap-around
        // (64 lanes: len > 64, 128), a streaming head (sink + window: [a, b) masked, whole blocks and parts)
        int[][] cases = {{1, 32, 64, 1, 1, 1}, {16, 16, 128, 4, 16, 16}, {33, 32, 64, 3, 33, 33}, {80, 32, 128, 4, 80, 80},
            {130, 16, 64, 8, 130, 130}, {200, 32, 128, 4, 4, 136}, {97, 32, 64, 2, 40, 50}, {300, 32, 128, 4, 0, 250}};
        for (int[] c : cases) {
            int len = c[0], bt = c[1], hd = c[2], heads = c[3], a = c[4], b = c[5];
            int blocks = (len + bt - 1) / bt;
            float[][] k = new float[blocks + 1][];
            float[][] v = new float[blocks + 1][];
            for (int i = 0; i < blocks; i++) {
                boolean visible = i * bt < a || Math.min(len, i * bt + bt) > b;
                if (visible) { // blocks nothing visible falls in may be gone (null)
                    k[i] = gaussian(bt * hd, r, 1f);
                    v[i] = gaussian(bt * hd, r, 1f);
                }
            }
            float[] q = gaussian(heads * hd + 3, r, 0.3f);
            for (int lanes : new int[] {64, 16}) {
                for (Kernels kernel : LEVELS) {
                    float[][] att = new float[heads][(len + 15) & ~15];
                    float[][] expectedAtt = new float[heads][(len + 15) & ~15];
                    float[] out = new float[heads * hd + 2];
                    float[] expected = new float[heads * hd + 2];
                    kernel.attendF32(k, v, bt, hd, len, a, b, q, 3, heads, 0.09f, att, lanes, out, 1);
                    Kernels.scalar().attendF32(k, v, bt, hd, len, a, b, q, 3, heads, 0.09f, expectedAtt, lanes, expected, 1);
                    String what = kernel.name() + " len " + len + " bt " + bt + " hd " + hd + " heads " + heads
                            + " visible [0," + a + ") [" + b + "," + len + ") lanes " + lanes;
                    assertThat(out).as(what).containsExactly(expected);
                    for (int g = 0; g < heads; g++) {
                        assertThat(att[g]).as(what + " probabilities of head " + g).containsExactly(expectedAtt[g]);
                    }
                }
            }
        }
    }

    @Test
    void attentionArgumentsTheCCodeCannotTrustTakeTheJavaStepsAndItsChecks() {
        SplittableRandom r = new SplittableRandom(47);
        int bt = 32, hd = 64, len = 40;
        float[][] k = {gaussian(bt * hd, r, 1f), gaussian(7 * hd, r, 1f)}; // block 1 holds 7 of its 8 positions
        float[][] v = {gaussian(bt * hd, r, 1f), gaussian(bt * hd, r, 1f)};
        float[] q = gaussian(2 * hd, r, 1f);
        for (Kernels kernel : LEVELS) {
            assertThatThrownBy(() -> kernel.attendF32(k, v, bt, hd, len, len, len, q, 0, 2, 0.1f,
                    new float[][] {new float[48], new float[48]}, 64, new float[2 * hd], 0))
                    .as(kernel.name()).isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> kernel.attendF32(new float[][] {k[0], null}, v, bt, hd, len, len, len, q, 0, 2, 0.1f,
                    new float[][] {new float[48], new float[48]}, 64, new float[2 * hd], 0))
                    .as(kernel.name()).isInstanceOf(NullPointerException.class);
        }
    }

    private static void assertBatchedIsScalar(GgmlType type, int cols, int n, int rows, SplittableRandom r) {
        ByteBuffer w = randomRows(type, rows, cols, r);
        int rowBytes = (int) type.bytesFor(cols);
        Activation[] xs = new Activation[n + 1];
        for (int k = 0; k <= n; k++) {
            xs[k] = new Activation().prepare(gaussian(cols, r, k % 3 == 0 ? 1e-3f : 1f), 0, cols, type);
        }
        for (Kernels kernel : LEVELS) {
            float[][] out = new float[n + 1][rows + 1];
            kernel.dotsRows(type, w, 0, rowBytes, rows, cols, xs, 1, n, out, 1); // activations 1..n
            assertThat(out[0]).containsOnly(0f);
            for (int k = 1; k <= n; k++) {
                assertThat(out[k][0]).isZero();
                for (int i = 0; i < rows; i++) {
                    assertThat(out[k][i + 1]).as(kernel.name() + " " + type + " cols " + cols + " n " + n + " x" + k + " row " + i)
                            .isEqualTo(Kernels.scalar().dot(type, w, i * rowBytes, cols, xs[k]));
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
        for (Kernels k : LEVELS) {
            k.dotRows(type, w, 0, rowBytes, 4, cols, a, out, 0);
            for (int row = 0; row < 4; row++) {
                assertThat(out[row]).as(k.name()).isEqualTo(Kernels.scalar().dot(type, w, row * rowBytes, cols, a));
            }
            float[][] batched = new float[2][4];
            k.dotsRows(type, w, 0, rowBytes, 4, cols, new Activation[] {a, a}, 0, 2, batched, 0);
            assertThat(batched[1]).as(k.name()).containsExactly(out);
        }
        if (type == GgmlType.Q8_0) {
            // 16 pairs of (-128 * -127 + 127 * 127), scale 1 * 1/127 rounded through F16
            assertThat(out[0]).isCloseTo(16 * (128 * 127 + 127 * 127) / 127f, org.assertj.core.data.Offset.offset(2f));
        }
    }

    @Test
    void nativeQuantizationIsTheJavaQuantization() {
        SplittableRandom r = new SplittableRandom(43);
        int n = 32 * 12;
        float[] x = new float[n + 5];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian() * (i < 64 ? 1e-6f : i < 128 ? 3e4f : 1f); // subnormal and large F16 scales
        }
        for (int i = 0; i < 32; i++) {
            x[5 + 128 + i] = i - 16; // a block of exact integers: ties at x * 127 / 16 land on .5 often
            x[5 + 160 + i] = 0f;     // a zero block
        }
        x[5 + 192] = Float.NaN;                  // Java's max propagates NaN: the whole block quantizes to 0
        x[5 + 224] = Float.POSITIVE_INFINITY;    // amax = inf, id = 0
        x[5 + 256] = -0f;
        for (boolean q4 : new boolean[] {false, true}) {
            GgmlType type = q4 ? GgmlType.Q4_0 : GgmlType.Q8_0;
            Activation a = new Activation().prepare(x, 5, n, type);
            Activation ref = new Activation().prepare(x, 5, n, GgmlType.F32); // sized arrays, then the Java path
            ref.q = new short[n];
            ref.qi = new short[n];
            ref.d = new float[n / 32];
            ref.quantizeJava(x, 5, n, q4);
            assertThat(a.q).as(type + " quants").containsExactly(ref.q);
            assertThat(a.d).as(type + " scales").usingElementComparator((u, v) -> Float.compare(u, v)).containsExactly(ref.d);
            if (q4) {
                assertThat(a.qi).as("interleaved").containsExactly(ref.qi);
            }
            assertThat(a.nativeReady).isTrue();
            for (int i = 0; i < n; i++) {
                assertThat(a.nativeByte(i)).as("native quant " + i).isEqualTo((byte) ref.q[i]);
            }
            ByteBuffer form = ByteBuffer.allocate(8 * (n / 32)).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < form.capacity(); i++) {
                form.put(i, a.nativeByte(n + i));
            }
            for (int b = 0; b < n / 32; b++) {
                int sum = 0;
                for (int j = 0; j < 32; j++) {
                    sum += ref.q[32 * b + j];
                }
                assertThat(Float.floatToRawIntBits(form.getFloat(4 * b))).isEqualTo(Float.floatToRawIntBits(ref.d[b]));
                assertThat(form.getInt(4 * (n / 32 + b))).as("block sum " + b).isEqualTo(sum);
            }
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
