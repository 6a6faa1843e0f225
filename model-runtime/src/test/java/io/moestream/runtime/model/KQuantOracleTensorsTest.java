package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.SharedOracle;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kernel.Activation;
import io.moestream.runtime.kernel.DotOrder;
import io.moestream.runtime.kernel.KQuantKernels;

import java.io.IOException;
import java.util.EnumSet;
import java.util.Random;
import java.util.Set;

import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The new weight types on real tensors of the oracle files (llama-quantize's own blocks, including
 * the Q5_0 fallbacks and gpt-oss's MXFP4 experts, whose architectures this runtime does not run
 * yet): {@link WeightMatrix#matmul} equals the dequantized row dotted in double with the
 * activation's quantized values, for every tensor of those types. Skipped when the oracle is absent.
 */
class KQuantOracleTensorsTest {

    static final Set<GgmlType> NEW_TYPES = EnumSet.of(GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K,
            GgmlType.Q6_K, GgmlType.Q5_0, GgmlType.IQ4_NL, GgmlType.MXFP4, GgmlType.BF16);

    @ParameterizedTest
    @ValueSource(strings = {"tiny-kmoe-q2_k", "tiny-kmoe-q3_k", "tiny-kmoe-q5_k_m", "tiny-kmoe-iq4_nl", "tiny-kmoe-bf16",
        "tiny-olmoe-q4_k_m", "tiny-gpt-oss-mxfp4", "tiny-deepseek2-q4_k_m"})
    void everyTensorOfTheNewTypesMultipliesLikeItsDequantizedRows(String stem) throws IOException {
        Random rnd = new Random(stem.hashCode());
        int checked = 0;
        GgufFile f = GgufFile.open(SharedOracle.model(stem));
        for (GgufTensor t : f.tensors().values()) {
            if (!NEW_TYPES.contains(t.type()) || t.ne().length < 2 || t.name().equals("token_embd.weight")) {
                continue;
            }
            WeightMatrix[] mats = t.ne().length == 3 ? WeightMatrix.experts(t) : new WeightMatrix[] {WeightMatrix.of(t)};
            WeightMatrix w = mats[mats.length - 1];
            float[] x = new float[w.cols()];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) rnd.nextGaussian();
            }
            float[] out = new float[w.rows()];
            w.matmul(x, out);
            Activation a = new Activation().prepare(x, 0, w.cols(), w.type());
            float[] row = new float[w.cols()];
            for (int r = 0; r < w.rows(); r++) {
                w.dequantizeRow(r, row, 0);
                double dot = 0;
                double mag = 0;
                for (int i = 0; i < row.length; i++) {
                    dot += (double) row[i] * a.value(i);
                    mag += Math.abs((double) row[i] * a.value(i));
                }
                assertThat((double) out[r]).as("%s %s row %d", stem, t.name(), r).isCloseTo(dot, Offset.offset(2e-6 * mag + 1e-30));
            }
            checked++;
        }
        System.out.printf("%s: %d tensors of the new types checked%n", stem, checked);
        assertThat(checked).isPositive();
    }

    /**
     * A prefill of 6 rows through a repacked type (Q4_K): llama.cpp's gemm takes the first 4, gemv
     * the last 2, and each row is bit for bit the kernel in that order.
     */
    @Test
    void prefillRowsTakeGemmThenGemvOrder() throws IOException {
        GgufFile f = GgufFile.open(SharedOracle.model("tiny-kmoe-q4_k"));
        WeightMatrix w = WeightMatrix.of(f.tensor("blk.0.attn_q.weight"));
        Random rnd = new Random(11);
        int n = 6;
        float[][] xs = new float[n][w.cols()];
        float[][] outs = new float[n][w.rows()];
        DotOrder[] orders = new DotOrder[n];
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < w.cols(); i++) {
                xs[t][i] = (float) rnd.nextGaussian();
            }
            orders[t] = t < n - n % 4 ? DotOrder.TINYBLAS : DotOrder.TINYBLAS_TAIL; // one 6-token chunk, as CpuStep marks it
        }
        w.matmul(xs, outs, n, orders);
        java.nio.ByteBuffer bytes = f.tensor("blk.0.attn_q.weight").bytes();
        int rowBytes = (int) GgmlType.Q4_K.bytesFor(w.cols());
        int gemmDiffers = 0;
        for (int t = 0; t < n; t++) {
            Activation a = new Activation().prepare(xs[t], 0, w.cols(), GgmlType.Q4_K);
            for (int r = 0; r < w.rows(); r++) {
                float gemv = KQuantKernels.dot(GgmlType.Q4_K, bytes, r * rowBytes, w.cols(), a.gemmOrder(false));
                float gemm = KQuantKernels.dot(GgmlType.Q4_K, bytes, r * rowBytes, w.cols(), a.gemmOrder(true));
                assertThat(outs[t][r]).as("token %d row %d", t, r).isEqualTo(t < 4 ? gemm : gemv);
                gemmDiffers += gemm == gemv ? 0 : 1;
            }
        }
        assertThat(gemmDiffers).as("the two orders differ somewhere, so the check means something").isPositive();
    }
}
