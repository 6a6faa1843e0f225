package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.backend.Backend;
import io.moestream.runtime.backend.BackendForward;
import io.moestream.runtime.backend.KvLayout;
import io.moestream.runtime.backend.KvPool;
import io.moestream.runtime.backend.RouterSpec;
import io.moestream.runtime.backend.Tensor;
import io.moestream.runtime.backend.WeightHandle;
import io.moestream.runtime.backend.cpu.CpuBackend;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.model.Model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * CUDA against the CPU reference, on a machine with a GPU ({@code -Pgpu}, or device-check.sh):
 * each op on fresh random inputs with poisoned (NaN) outputs, then whole forward passes on every
 * oracle model: identical greedy tokens, logits within 1e-3 relative (F32 weights) or 1e-2
 * (others), batched decode equal to single-sequence decode, split-K attention on a long prompt.
 */
@Tag("gpu")
class CudaBackendGpuTest {

    static CudaBackend cuda;
    static final CpuBackend CPU = new CpuBackend();
    static final int GREEDY_STEPS = 24;

    @BeforeAll
    static void open() {
        cuda = (CudaBackend) new CudaBackendProvider().open(Integer.getInteger("moestream.cuda.device", 0));
        System.out.println("GPU tests on " + cuda.name());
    }

    @AfterAll
    static void close() {
        if (cuda != null) {
            cuda.close();
        }
    }

    static Path oracleDir() {
        return Path.of(System.getProperty("moestream.oracle.dir", "../model-runtime/src/test/resources/oracle"));
    }

    /** Every oracle model in the directory (llama/Mixtral, qwen3moe, qwen2moe, bailingmoe2; F32, F16, Q8_0, Q4_0). */
    static Stream<String> models() throws IOException {
        List<String> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(oracleDir())) {
            for (Path p : files.filter(f -> f.toString().endsWith(".gguf")).sorted().toList()) {
                try (Model m = Model.load(p)) {
                    out.add(p.getFileName().toString());
                } catch (IOException | RuntimeException e) {
                    System.out.println("skipping " + p.getFileName() + ": " + e.getMessage());
                }
            }
        }
        assertThat(out).as("oracle models in " + oracleDir().toAbsolutePath()).isNotEmpty();
        return out.stream();
    }

    static double relDiff(float[] a, float[] b) {
        double scale = 0;
        double diff = 0;
        for (int i = 0; i < a.length; i++) {
            if (Float.isNaN(a[i])) {
                return Double.POSITIVE_INFINITY;
            }
            scale = Math.max(scale, Math.abs(b[i]));
            diff = Math.max(diff, Math.abs(a[i] - b[i]));
        }
        return diff / Math.max(scale, 1e-12);
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    static float[] random(int n, long seed) {
        Random r = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    static float[] nan(int n) {
        float[] v = new float[n];
        Arrays.fill(v, Float.NaN);
        return v;
    }

    // ---- ops ---------------------------------------------------------------------------------

    /** Runs {@code op} on both backends with the same inputs and returns (cuda, cpu) outputs. */
    interface ProductOp {
        void run(Backend b, WeightHandle w, Tensor x, Tensor ids, Tensor out);
    }

    static float[][] both(GgufTensor weights, int xRows, int outRows, int outCols, int[] ids, int k, ProductOp op, long seed) {
        float[][] results = new float[2][];
        Backend[] backends = {cuda, CPU};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            WeightHandle w = b.upload("test#" + weights.name() + seed, weights);
            try (Tensor x = b.allocate(Tensor.DType.F32, xRows, (int) weights.ne()[0]);
                 Tensor idT = b.allocate(Tensor.DType.I32, Math.max(1, ids.length / k), k);
                 Tensor out = b.allocate(Tensor.DType.F32, outRows, outCols)) {
                b.write(x, random(xRows * (int) weights.ne()[0], seed));
                b.write(idT, ids.length == 0 ? new int[k] : ids);
                b.write(out, nan(outRows * outCols));
                op.run(b, w, x, idT, out);
                results[i] = new float[outRows * outCols];
                b.read(out, results[i]);
            }
        }
        return results;
    }

    static double tolerance(GgmlType t) {
        return t == GgmlType.F32 ? 1e-5 : 1e-3;
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16", "Q8_0", "Q4_0"})
    void matmulMatchesCpuForOddShapes(GgmlType type) {
        for (int[] shape : new int[][] {{1, 37, 64}, {3, 130, 96}, {9, 64, 256}, {17, 5, 32}, {64, 200, 128}}) {
            int n = shape[0], rows = shape[1], cols = shape[2];
            GgufTensor w = TestWeights.tensor("m", type, 1, rows, cols, n * 31L + rows);
            float[][] r = both(w, n, n, rows, new int[0], 1, (b, wh, x, ids, out) -> b.matmul(wh, x, out), rows);
            assertThat(relDiff(r[0], r[1])).as("%s n=%d rows=%d cols=%d", type, n, rows, cols).isLessThan(tolerance(type));
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16", "Q8_0", "Q4_0"})
    void expertProductsMatchCpu(GgmlType type) {
        int experts = 8, rows = 70, cols = 96, k = 2;
        for (int n : new int[] {1, 5, 33}) {
            Random r = new Random(n);
            int[] ids = new int[n * k];
            for (int t = 0; t < n; t++) {
                ids[t * k] = r.nextInt(experts);
                ids[t * k + 1] = (ids[t * k] + 1 + r.nextInt(experts - 1)) % experts;
            }
            GgufTensor w = TestWeights.tensor("e", type, experts, rows, cols, n);
            float[][] perToken = both(w, n, n * k, rows, ids, k, (b, wh, x, idT, out) -> b.expertMatmul(wh, x, idT, out), 5);
            assertThat(relDiff(perToken[0], perToken[1])).as("%s per token n=%d", type, n).isLessThan(tolerance(type));
            float[][] perAssignment = both(w, n * k, n * k, rows, ids, k, (b, wh, x, idT, out) -> b.expertMatmul(wh, x, idT, out), 6);
            assertThat(relDiff(perAssignment[0], perAssignment[1])).as("%s per assignment n=%d", type, n).isLessThan(tolerance(type));
        }
    }

    @Test
    void groupLimitedRoutingMatchesCpu() {
        int n = 37, experts = 16;
        RouterSpec[] specs = {
            RouterSpec.mixtral(experts, 2),
            new RouterSpec(experts, 4, RouterSpec.Gating.SIGMOID, true, 2.5f, 4, 2),
            new RouterSpec(experts, 4, RouterSpec.Gating.SOFTMAX_AFTER_TOPK, false, 1f, 1, 1),
        };
        for (RouterSpec spec : specs) {
            int[][] ids = new int[2][n * spec.k()];
            float[][] weights = new float[2][n * spec.k()];
            Backend[] backends = {cuda, CPU};
            for (int i = 0; i < 2; i++) {
                Backend b = backends[i];
                try (Tensor lg = b.allocate(Tensor.DType.F32, n, experts);
                     Tensor id = b.allocate(Tensor.DType.I32, n, spec.k());
                     Tensor w = b.allocate(Tensor.DType.F32, n, spec.k())) {
                    b.write(lg, random(n * experts, 3));
                    b.route(lg, null, spec, id, w);
                    b.read(id, ids[i]);
                    b.read(w, weights[i]);
                }
            }
            assertThat(ids[0]).as(spec.toString()).containsExactly(ids[1]);
            assertThat(relDiff(weights[0], weights[1])).as(spec.toString()).isLessThan(1e-5);
        }
    }

    // ---- whole model -------------------------------------------------------------------------

    @ParameterizedTest
    @MethodSource("models")
    void greedyTokensAndLogitsMatchCpu(String file) throws IOException {
        try (Model model = Model.load(oracleDir().resolve(file))) {
            boolean f32 = model.gguf().tensor("blk.0.attn_output.weight").type() == GgmlType.F32;
            double tol = f32 ? 1e-3 : 1e-2;
            String[] prompts = {"Once upon a time, there was a little robot", "The quick brown fox"};
            BackendForward.Options o = BackendForward.Options.forSequences(model.config(), 1);
            double worst = 0;
            try (BackendForward g = new BackendForward(model, cuda, o); BackendForward c = new BackendForward(model, CPU, o)) {
                for (String prompt : prompts) {
                    int[] ids = model.tokenizer().encodePrompt(prompt);
                    BackendForward.Sequence sg = g.newSequence();
                    BackendForward.Sequence sc = c.newSequence();
                    float[] lg = g.forward(sg, ids);
                    float[] lc = c.forward(sc, ids);
                    for (int step = 0; step < GREEDY_STEPS; step++) {
                        double d = relDiff(lg, lc);
                        worst = Math.max(worst, d);
                        assertThat(d).as("%s '%s' step %d", file, prompt, step).isLessThan(tol);
                        int tok = argmax(lc);
                        assertThat(argmax(lg)).as("%s '%s' greedy token %d", file, prompt, step).isEqualTo(tok);
                        lg = g.forward(sg, new int[] {tok});
                        lc = c.forward(sc, new int[] {tok});
                    }
                    g.release(sg);
                    c.release(sc);
                }
            }
            System.out.printf("%s: max relative logit diff CUDA vs CPU %.2e (tolerance %.0e)%n", file, worst, tol);
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void batchedDecodeEqualsSingleSequenceDecode(String file) throws IOException {
        try (Model model = Model.load(oracleDir().resolve(file))) {
            String[] prompts = {"Hello", "Permission is hereby granted", "The quick brown fox jumps", "Once upon a time"};
            List<int[]> ps = new ArrayList<>();
            for (String p : prompts) {
                ps.add(model.tokenizer().encodePrompt(p));
            }
            BackendForward.Options o = BackendForward.Options.forSequences(model.config(), prompts.length);
            List<int[]> together;
            try (BackendForward g = new BackendForward(model, cuda, o)) {
                together = greedy(g, ps, 12);
            }
            for (int i = 0; i < ps.size(); i++) {
                try (BackendForward g = new BackendForward(model, cuda, o)) {
                    assertThat(together.get(i)).as("%s sequence %d", file, i).containsExactly(greedy(g, List.of(ps.get(i)), 12).get(0));
                }
            }
        }
    }

    static List<int[]> greedy(BackendForward f, List<int[]> prompts, int tokens) {
        List<BackendForward.Sequence> seqs = new ArrayList<>();
        List<BackendForward.Chunk> chunks = new ArrayList<>();
        for (int[] p : prompts) {
            BackendForward.Sequence s = f.newSequence();
            seqs.add(s);
            chunks.add(new BackendForward.Chunk(s, p));
        }
        float[][] logits = f.step(chunks);
        int[][] out = new int[prompts.size()][tokens];
        for (int t = 0; t < tokens; t++) {
            chunks.clear();
            for (int i = 0; i < seqs.size(); i++) {
                out[i][t] = argmax(logits[i]);
                chunks.add(new BackendForward.Chunk(seqs.get(i), new int[] {out[i][t]}));
            }
            logits = f.step(chunks);
        }
        return List.of(out);
    }

    @Test
    void biasAndGatedAddMatchCpu() {
        int n = 7, cols = 96;
        GgufTensor bias = TestWeights.tensor("b", GgmlType.F32, 1, 1, cols, 3);
        float[][] out = new float[2][n * cols];
        Backend[] backends = {cuda, CPU};
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            WeightHandle w = b.upload("test#bias", new GgufTensor("b", GgmlType.F32, new long[] {cols}, bias.data()));
            try (Tensor x = b.allocate(Tensor.DType.F32, n, cols);
                 Tensor d = b.allocate(Tensor.DType.F32, n, cols);
                 Tensor g = b.allocate(Tensor.DType.F32, n, 1)) {
                b.write(x, random(n * cols, 1));
                b.write(d, random(n * cols, 2));
                b.write(g, random(n, 3));
                b.addBias(x, w);
                b.addGated(x, d, g);
                b.read(x, out[i]);
            }
        }
        assertThat(relDiff(out[0], out[1])).isLessThan(1e-6);
    }

    /** The same float32 blocks sealed on the GPU and by the CPU (the engine's HeadSlab.seal) give the same bytes. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"f32", "f16", "int8/16", "int4/16", "int8/32"})
    void sealedBlocksAreTheCpusBytes(String codecName) {
        KvLayout layout = new KvLayout(3, 2, 32, 32, KvCodec.parse(codecName));
        Backend[] backends = {cuda, CPU};
        byte[][] sealed = new byte[2][];
        java.nio.ByteBuffer open = java.nio.ByteBuffer.allocate(Math.toIntExact(layout.openBlockBytes())).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        float[] values = random(Math.toIntExact(layout.openBlockFloats()), 17);
        for (int i = 0; i < values.length; i++) {
            open.putFloat(values[i] * (i % 7 == 3 ? 8 : 1) + (i % 5)); // channel offsets and outliers, as keys have
        }
        for (int i = 0; i < 2; i++) {
            Backend b = backends[i];
            try (KvPool pool = b.allocateKv(layout, 3, 2); Tensor seals = b.allocate(Tensor.DType.I32, 1, 2)) {
                b.writeOpenKvBlock(pool, 1, open.array());
                b.write(seals, new int[] {1, 2});
                for (int l = 0; l < layout.layers(); l++) {
                    b.kvSeal(pool, l, seals);
                }
                sealed[i] = b.readKvBlock(pool, 2);
                assertThat(b.readOpenKvBlock(pool, 1)).isEqualTo(open.array());
            }
        }
        assertThat(sealed[0]).as(codecName).isEqualTo(sealed[1]);
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"f32", "f16", "int8/16", "int4/16"})
    void longContextSplitKAttentionOverEveryKvCodecMatchesCpu(String codecName) throws IOException {
        KvCodec codec = KvCodec.parse(codecName);
        try (Model model = Model.load(oracleDir().resolve("tiny-mixtral-q8_0.gguf"))) {
            Random r = new Random(11);
            int[] prompt = new int[1500];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = r.nextInt(model.config().vocabSize() - 2);
            }
            BackendForward.Options o = new BackendForward.Options(64, 200, 16, codec);
            try (BackendForward g = new BackendForward(model, cuda, o); BackendForward c = new BackendForward(model, CPU, o)) {
                BackendForward.Sequence sg = g.newSequence();
                BackendForward.Sequence sc = c.newSequence();
                float[] lg = g.forward(sg, prompt);
                float[] lc = c.forward(sc, prompt);
                double tol = 1e-2; // Q8_0 weights, as in greedyTokensAndLogitsMatchCpu
                assertThat(relDiff(lg, lc)).as(codec + " after 1500 positions").isLessThan(tol);
                // the blocks the GPU wrote read back as the CPU's (keyed-state write-back)
                KvKernelArgs a = KvKernelArgs.of(g.pool().layout());
                byte[] gb = g.sealedBlock(sg, 7);
                byte[] cb = c.sealedBlock(sc, 7);
                assertThat(gb).hasSameSizeAs(cb);
                float[] gf = new float[16 * 32];
                float[] cf = new float[16 * 32];
                for (int t = 0; t < 16; t++) {
                    for (int i = 0; i < 32; i++) {
                        gf[t * 32 + i] = a.sealedLoad(gb, 0, 1, 1, 1, t, i);
                        cf[t * 32 + i] = a.sealedLoad(cb, 0, 1, 1, 1, t, i);
                    }
                }
                assertThat(relDiff(gf, cf)).as(codec + " block 7, layer 1, head 1, values").isLessThan(tol);
                assertThat(relDiff(floats(g.tailBlock(sg)), floats(c.tailBlock(sc)))).as(codec + " open tail").isLessThan(tol);
            }
        }
    }

    static float[] floats(byte[] b) {
        java.nio.ByteBuffer bb = java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.length / 4];
        for (int i = 0; i < out.length; i++) {
            out[i] = bb.getFloat();
        }
        return out;
    }
}
