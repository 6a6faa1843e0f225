package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.moestream.runtime.backend.ActivationQuantizer;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kernel.Activation;
import io.moestream.runtime.kernel.KQuantBlocks;
import io.moestream.runtime.kernel.KQuantKernels;
import io.moestream.runtime.kernel.Q8K;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The kernels' block decoding and products ({@link BlockDecoding}, the twin of {@code blocks.cuh} and
 * {@code matmul_blocks.cu}) against the CPU engine without a GPU: every value of every block type as
 * the CPU dequantizes it (bit for bit: the embedding lookup), the Q8_K activation quantizer bit for
 * bit, and the products within float summation order of the CPU's.
 */
class BlockDecodingTest {

    static final String[] TYPES = {"Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "MXFP4"};

    static byte[] bytes(ByteBuffer b, int off, int len) {
        byte[] r = new byte[len];
        b.get(off, r, 0, len);
        return r;
    }

    @ParameterizedTest
    @EnumSource(names = {"Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "MXFP4"})
    void everyValueIsTheCpusDequantization(GgmlType type) {
        int rows = 7, cols = 768;
        GgufTensor t = TestWeights.blocks("w", type, 1, rows, cols, type.ordinal(), false);
        int rowBytes = (int) type.bytesFor(cols);
        float[] cpu = new float[cols];
        for (int r = 0; r < rows; r++) {
            KQuantBlocks.dequantize(type, bytes(t.bytes(), r * rowBytes, rowBytes), cols, cpu, 0);
            for (int i = 0; i < cols; i++) {
                assertThat(BlockDecoding.value(type, t.bytes(), r * rowBytes, i)).as("%s row %d value %d", type, r, i).isEqualTo(cpu[i]);
            }
        }
    }

    @Test
    void q8kQuantizationIsTheCpusBitForBit() {
        Random rnd = new Random(11);
        int n = 256 * 6;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian() * (1 + i / 256);
        }
        java.util.Arrays.fill(x, 256, 512, 0f);                 // an all-zero block
        x[600] = 9f;                                            // ties: the first index of the largest |x| wins,
        x[700] = -9f;                                           // whose sign flips the scale
        x[800] = -9.5f;
        x[900] = 9.5f;
        for (int i = 1024; i < 1280; i++) {
            x[i] = (i % 7) * 0.5f - 1.5f;                       // many exact ties and .5 products
        }
        byte[] q = new byte[n];
        float[] d = new float[n / 256];
        BlockDecoding.quantizeQ8K(x, 0, n, q, d);
        short[] cq = new short[n];
        float[] cd = new float[n / 256];
        Q8K.quantize(x, 0, n, cq, cd, new int[n / 16]);
        for (int i = 0; i < n; i++) {
            assertThat((int) q[i]).as("q %d", i).isEqualTo((int) cq[i]);
        }
        assertThat(d).containsExactly(cd);
    }

    /** The twin's product against the CPU's KQuantKernels.dot: only float summation order differs. */
    @ParameterizedTest
    @EnumSource(names = {"Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "MXFP4"})
    void productsMatchTheCpuKernels(GgmlType type) {
        int rows = 24, cols = 1024;
        GgufTensor t = TestWeights.blocks("w", type, 1, rows, cols, 100 + type.ordinal(), false);
        int rowBytes = (int) type.bytesFor(cols);
        Random rnd = new Random(type.ordinal());
        for (int trial = 0; trial < 3; trial++) {
            float[] x = new float[cols];
            for (int i = 0; i < cols; i++) {
                x[i] = (float) rnd.nextGaussian();
            }
            byte[] xq = new byte[cols];
            float[] xd;
            if (BlockDecoding.q8k(type)) {
                xd = new float[cols / 256];
                BlockDecoding.quantizeQ8K(x, 0, cols, xq, xd);
            } else {
                xd = new float[cols / 32];
                ActivationQuantizer.quantizeQ8_0(x, 0, cols, xq, 0, xd, 0);
            }
            Activation a = new Activation().prepare(x, 0, cols, type);
            double scale = 0, diff = 0;
            for (int r = 0; r < rows; r++) {
                float cpu = KQuantKernels.dot(type, bytes(t.bytes(), r * rowBytes, rowBytes), cols, a);
                float dev = BlockDecoding.dot(type, t.bytes(), r * rowBytes, cols, xq, xd);
                scale = Math.max(scale, Math.abs(cpu));
                diff = Math.max(diff, Math.abs(cpu - dev));
            }
            assertThat(scale).isGreaterThan(0);
            assertThat(diff / scale).as("%s trial %d", type, trial).isLessThan(1e-5);
        }
    }

    /** The oracle's real files (llama-quantize's bytes), when ../shared is present: every value of the first rows. */
    @ParameterizedTest
    @CsvSource({"tiny-kmoe-q2_k, blk.0.ffn_gate_exps.weight", "tiny-kmoe-q3_k, blk.0.attn_q.weight", "tiny-kmoe-q4_k, output.weight",
        "tiny-kmoe-q5_k, blk.1.ffn_down_exps.weight", "tiny-kmoe-q6_k, token_embd.weight", "tiny-kmoe-iq4_nl, blk.0.attn_k.weight",
        "tiny-gpt-oss-mxfp4, blk.0.ffn_up_exps.weight", "tiny-granitemoe-q4_k_m, blk.0.ffn_down_exps.weight"})
    void oracleTensorsDecodeAsOnTheCpu(String stem, String tensor) throws IOException {
        Path p = Path.of("../../shared/oracle/models", stem + ".gguf");
        if (!Files.exists(p)) {
            p = Path.of("../shared/oracle/models", stem + ".gguf");
        }
        assumeTrue(Files.exists(p), "no oracle file " + stem);
        GgufTensor t = GgufFile.open(p).tensor(tensor);
        assumeTrue(BlockDecoding.handles(t.type()), tensor + " is " + t.type());
        int cols = (int) t.ne()[0];
        int rowBytes = (int) t.type().bytesFor(cols);
        float[] cpu = new float[cols];
        for (int r = 0; r < 16; r++) {
            KQuantBlocks.dequantize(t.type(), bytes(t.bytes(), r * rowBytes, rowBytes), cols, cpu, 0);
            for (int i = 0; i < cols; i++) {
                assertThat(BlockDecoding.value(t.type(), t.bytes(), r * rowBytes, i)).as("%s %s row %d value %d", stem, tensor, r, i)
                        .isEqualTo(cpu[i]);
            }
        }
    }
}
