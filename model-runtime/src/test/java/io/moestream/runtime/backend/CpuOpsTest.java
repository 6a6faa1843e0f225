package io.moestream.runtime.backend;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.backend.cpu.CpuBackend;
import io.moestream.runtime.gguf.BlockQuantizer;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/** Op-level checks of the reference backend (the CUDA GPU tests reuse the same inputs). */
class CpuOpsTest {

    /** A random (experts, rows, cols) tensor of {@code type} and its dequantized values. */
    static GgufTensor tensor(String name, GgmlType type, int experts, int rows, int cols, long seed) {
        Random r = new Random(seed);
        ByteBuffer b = ByteBuffer.allocate((int) type.bytesFor((long) experts * rows * cols)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < experts * rows; i++) {
            float[] row = new float[cols];
            for (int j = 0; j < cols; j++) {
                row[j] = (float) r.nextGaussian() * 0.1f;
            }
            BlockQuantizer.encode(type, row, b);
        }
        b.flip();
        long[] ne = experts > 1 ? new long[] {cols, rows, experts} : new long[] {cols, rows};
        return new GgufTensor(name, type, ne, b);
    }

    static float[] random(int n, long seed) {
        Random r = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16", "Q8_0", "Q4_0"})
    void expertProductsEqualPlainProductsPerExpert(GgmlType type) {
        CpuBackend be = new CpuBackend();
        int experts = 4, rows = 40, cols = 96, n = 3, k = 2;
        GgufTensor stack = tensor("exps", type, experts, rows, cols, 1);
        WeightHandle h = be.upload("t#exps", stack);
        Tensor x = be.allocate(Tensor.DType.F32, n, cols);
        be.write(x, random(n * cols, 2));
        Tensor ids = be.allocate(Tensor.DType.I32, n, k);
        int[] hostIds = {3, 0, 1, 3, 2, 2};
        be.write(ids, hostIds);
        Tensor out = be.allocate(Tensor.DType.F32, n * k, rows);
        be.expertMatmul(h, x, ids, out);
        float[] got = new float[n * k * rows];
        be.read(out, got);
        float[] xs = random(n * cols, 2);
        for (int a = 0; a < n * k; a++) {
            int e = hostIds[a];
            ByteBuffer slab = stack.bytes();
            long slabBytes = type.bytesFor((long) rows * cols);
            slab.position((int) (e * slabBytes)).limit((int) ((e + 1) * slabBytes));
            WeightHandle single = be.upload("t#e" + e, new GgufTensor("e", type, new long[] {cols, rows}, slab.slice().order(ByteOrder.LITTLE_ENDIAN)));
            Tensor x1 = be.allocate(Tensor.DType.F32, 1, cols);
            float[] row = new float[cols];
            System.arraycopy(xs, (a / k) * cols, row, 0, cols);
            be.write(x1, row);
            Tensor o1 = be.allocate(Tensor.DType.F32, 1, rows);
            be.matmul(single, x1, o1);
            float[] want = new float[rows];
            be.read(o1, want);
            for (int r = 0; r < rows; r++) {
                assertThat(got[a * rows + r]).isEqualTo(want[r]);
            }
        }
    }

    @Test
    void q8_0ActivationQuantizationFollowsGgml() {
        float[] x = new float[32];
        x[0] = 1.27f;
        x[1] = -0.005f; // exactly half a step: rint rounds to even (0)
        x[2] = 0.015f;
        byte[] q = new byte[32];
        float[] d = new float[1];
        ActivationQuantizer.quantizeQ8_0(x, 0, 32, q, 0, d, 0);
        assertThat(q[0]).isEqualTo((byte) 127);
        assertThat(q[1]).isEqualTo((byte) 0);
        assertThat(q[2]).isEqualTo((byte) 2);
        assertThat(d[0]).isEqualTo(ActivationQuantizer.roundF16(0.01f));
        assertThat(ActivationQuantizer.roundBf16(1.00390625f)).isEqualTo(1.0f); // tie to even
        assertThat(ActivationQuantizer.roundBf16(1.01171875f)).isEqualTo(1.015625f);
    }

    @Test
    void groupLimitedSigmoidRoutingWithBias() {
        CpuBackend be = new CpuBackend();
        // 8 experts in 4 groups of 2; keep 2 groups, then top-2 inside them
        float[] logits = {2.0f, -1.0f, 0.5f, 0.4f, 3.0f, -3.0f, 0.0f, 0.1f};
        float[] bias = {0, 0, 0, 0, 0, 0, 0.3f, 0.3f};
        // sigmoid: .881 .269 | .622 .599 | .953 .047 | .5 .525 ; +bias group 3: .8 .825
        // group scores (top-2 sums): 1.150, 1.221, 1.000, 1.625 -> keep groups 3 and 1
        Tensor lg = be.allocate(Tensor.DType.F32, 1, 8);
        be.write(lg, logits);
        WeightHandle b = be.upload("bias", new GgufTensor("bias", GgmlType.F32, new long[] {8}, f32Bytes(bias)));
        Tensor ids = be.allocate(Tensor.DType.I32, 1, 2);
        Tensor w = be.allocate(Tensor.DType.F32, 1, 2);
        RouterSpec spec = new RouterSpec(8, 2, RouterSpec.Gating.SIGMOID, true, 2.5f, 4, 2);
        be.route(lg, b, spec, ids, w);
        int[] got = new int[2];
        float[] wt = new float[2];
        be.read(ids, got);
        be.read(w, wt);
        // eligible: experts 2 (.622), 3 (.599), 6 (.8), 7 (.825) -> 7, 6; weights from unbiased sigmoid
        assertThat(got).containsExactly(7, 6);
        float s7 = (float) (1 / (1 + Math.exp(-0.1)));
        float s6 = 0.5f;
        assertThat(wt[0]).isCloseTo(2.5f * s7 / (s7 + s6), org.assertj.core.data.Offset.offset(1e-6f));
        assertThat(wt[1]).isCloseTo(2.5f * s6 / (s7 + s6), org.assertj.core.data.Offset.offset(1e-6f));
    }

    static ByteBuffer f32Bytes(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putFloat(f);
        }
        return b.flip();
    }
}
