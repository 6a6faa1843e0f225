package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.backend.Backend;
import io.moestream.runtime.backend.BackendForward;
import io.moestream.runtime.backend.KvCodec;
import io.moestream.runtime.backend.RouterSpec;
import io.moestream.runtime.backend.Tensor;
import io.moestream.runtime.backend.WeightHandle;
import io.moestream.runtime.backend.cpu.CpuBackend;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;
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
        return Path.of(System.getProperty("moestream.oracle.dir", "../../shared/oracle/models"));
    }

    /** Every oracle model this runtime loads (llama and qwen3moe architectures). */
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
            boolean f32 = model.gguf().tensor("blk.0.attn_q.weight").type() == GgmlType.F32;
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
    void longContextSplitKAttentionAndF16KvMatchCpu() throws IOException {
        try (Model model = Model.load(oracleDir().resolve("tiny-mixtral-f32.gguf"))) {
            Random r = new Random(11);
            int[] prompt = new int[1500];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = r.nextInt(model.config().vocabSize() - 2);
            }
            for (KvCodec codec : new KvCodec[] {KvCodec.F32, KvCodec.F16}) {
                BackendForward.Options o = new BackendForward.Options(64, 200, 16, codec);
                try (BackendForward g = new BackendForward(model, cuda, o); BackendForward c = new BackendForward(model, CPU, o)) {
                    BackendForward.Sequence sg = g.newSequence();
                    BackendForward.Sequence sc = c.newSequence();
                    float[] lg = g.forward(sg, prompt);
                    float[] lc = c.forward(sc, prompt);
                    assertThat(relDiff(lg, lc)).as(codec + " after 1500 positions").isLessThan(1e-3);
                    // the blocks the GPU wrote read back as the CPU's (keyed-state write-back)
                    byte[] gb = g.backend().readKvBlock(g.pool(), sg.blocks().physical(7));
                    byte[] cb = c.backend().readKvBlock(c.pool(), sc.blocks().physical(7));
                    assertThat(gb).hasSameSizeAs(cb);
                    float[] gf = decode(gb, codec);
                    float[] cf = decode(cb, codec);
                    assertThat(relDiff(gf, cf)).as(codec + " block 7").isLessThan(1e-3);
                }
            }
        }
    }

    static float[] decode(byte[] b, KvCodec codec) {
        java.nio.ByteBuffer bb = java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.length / codec.elementBytes()];
        for (int i = 0; i < out.length; i++) {
            out[i] = codec == KvCodec.F32 ? bb.getFloat() : io.moestream.runtime.gguf.Float16.toFloat(bb.getShort());
        }
        return out;
    }
}
