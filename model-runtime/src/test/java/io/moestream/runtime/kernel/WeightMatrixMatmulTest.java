package io.moestream.runtime.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.Fixtures;
import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.model.WeightMatrix;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every matrix of the oracle models: {@link WeightMatrix#matmul} (activation rounded as llama.cpp
 * does) against the plain float {@link ScalarReference}; single and batched products agree.
 */
class WeightMatrixMatmulTest {

    @ParameterizedTest
    @ValueSource(strings = {"tiny-mixtral-q8_0", "tiny-mixtral-q4_0", "tiny-mixtral-f16", "tiny-llama-q4_0", "tiny-mixtral-f32"})
    void matmulIsCloseToThePlainFloatPath(String stem) throws IOException {
        GgufFile f = GgufFile.open(Fixtures.model(stem));
        SplittableRandom r = new SplittableRandom(3);
        for (WeightMatrix w : matrices(f)) {
            float[][] xs = new float[5][w.cols()];
            for (float[] x : xs) {
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) r.nextGaussian();
                }
            }
            float[] expected = new float[w.rows()];
            float[] actual = new float[w.rows()];
            ScalarReference.matmul(w, xs[0], expected);
            w.matmul(xs[0], actual);
            double scale = 0;
            double maxDiff = 0;
            for (int i = 0; i < expected.length; i++) {
                scale = Math.max(scale, Math.abs(expected[i]));
                maxDiff = Math.max(maxDiff, Math.abs(expected[i] - actual[i]));
            }
            assertThat(maxDiff).as(w.name() + " " + w.type()).isLessThan(0.05 * scale);

            float[][] outs = new float[xs.length][w.rows()];
            w.matmul(xs, outs, xs.length);
            for (int k = 0; k < xs.length; k++) {
                float[] single = new float[w.rows()];
                w.matmul(xs[k], single);
                for (int i = 0; i < single.length; i++) {
                    assertThat(outs[k][i]).as(w.name() + " batch " + k + " row " + i)
                            .isCloseTo(single[i], org.assertj.core.data.Offset.offset(1e-4f * (1 + Math.abs(single[i]))));
                }
            }
        }
    }

    @org.junit.jupiter.api.Test
    void aMatrixLargeEnoughToSplitOverThreadsGivesTheSameBitsAsOneThread() throws Exception {
        SplittableRandom r = new SplittableRandom(17);
        int rows = 700;
        int cols = 2048; // 1.4 M weights: above the size below which a matmul stays on the calling thread
        for (io.moestream.runtime.gguf.GgmlType type : new io.moestream.runtime.gguf.GgmlType[] {
                io.moestream.runtime.gguf.GgmlType.Q8_0, io.moestream.runtime.gguf.GgmlType.F16}) {
            WeightMatrix w = WeightMatrix.of(new GgufTensor("w", type, new long[] {cols, rows},
                    KernelsTest.randomRows(type, rows, cols, r)));
            float[][] xs = new float[3][];
            for (int i = 0; i < xs.length; i++) {
                xs[i] = KernelsTest.gaussian(cols, r, 1f);
            }
            float[][] one = new float[xs.length][rows];
            float[][] two = new float[xs.length][rows];
            try {
                MatmulPool.setThreads(1);
                w.matmul(xs[0], one[0]);
                w.matmul(xs, one, xs.length);
                MatmulPool.setThreads(2);
                w.matmul(xs[0], two[0]);
                w.matmul(xs, two, xs.length);
            } finally {
                MatmulPool.setThreads(Runtime.getRuntime().availableProcessors());
            }
            for (int i = 0; i < xs.length; i++) {
                assertThat(two[i]).as(type + " activation " + i).containsExactly(one[i]);
            }
        }
    }

    static List<WeightMatrix> matrices(GgufFile f) throws IOException {
        List<WeightMatrix> out = new ArrayList<>();
        for (GgufTensor t : f.tensors().values()) {
            if (t.ne().length == 2) {
                out.add(WeightMatrix.of(t));
            } else if (t.ne().length == 3) {
                out.addAll(List.of(WeightMatrix.experts(t)));
            }
        }
        return out;
    }
}
