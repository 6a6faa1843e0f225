package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.backend.Backend;
import io.moestream.runtime.backend.BackendForward;
import io.moestream.runtime.backend.KvLayout;
import io.moestream.runtime.backend.KvPool;
import io.moestream.runtime.backend.Tensor;
import io.moestream.runtime.backend.WeightHandle;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.kv.KvShape;
import io.moestream.runtime.kv.PagedKvCache;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.Sampler;
import io.moestream.runtime.model.WeightMatrix;
import io.moestream.runtime.moe.Router;
import io.moestream.runtime.moe.RoutingConfig;

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
 * CUDA against the exact CPU path, on a machine with a GPU ({@code -Pgpu}, or device-check.sh): each
 * op on fresh random inputs with poisoned (NaN) outputs against the CPU engine's own pieces
 * ({@link WeightMatrix}, {@link Router}, {@link PagedKvCache}), then whole forward passes on every
 * oracle model against the CPU {@link Engine}: identical greedy tokens, logits within 1e-3 relative
 * (F32 weights) or 1e-2 (others), batched decode equal to single-sequence decode, split-K attention
 * on a long prompt.
 */
@Tag("gpu")
class CudaBackendGpuTest {

    static CudaBackend cuda;
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
                out.add(p.getFileName().toString()); // each loads in its test; one that cannot fails there
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

    /** Each (type, shape, seed) gets its own upload key, so no test reuses another's resident copy. */
    static String key(GgufTensor t, long seed) {
        return "test#" + t.name() + "/" + t.type() + "/" + Arrays.toString(t.ne()) + "/" + seed;
    }

    /** The first rows of x (rows of {@code cols}) as the CPU's row arrays. */
    static float[][] rows(float[] x, int n, int cols) {
        float[][] out = new float[n][];
        for (int i = 0; i < n; i++) {
            out[i] = Arrays.copyOfRange(x, i * cols, (i + 1) * cols);
        }
        return out;
    }

    static float[] flat(float[][] rows) {
        int cols = rows[0].length;
        float[] out = new float[rows.length * cols];
        for (int i = 0; i < rows.length; i++) {
            System.arraycopy(rows[i], 0, out, i * cols, cols);
        }
        return out;
    }

    static double tolerance(GgmlType t) {
        return t == GgmlType.F32 ? 1e-5 : 1e-3;
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "MXFP4"})
    void matmulMatchesCpuForOddShapes(GgmlType type) throws GgufFormatException {
        for (int[] shape : new int[][] {{1, 37, 64}, {3, 130, 96}, {9, 64, 256}, {17, 5, 32}, {64, 200, 128}}) {
            int n = shape[0], rows = shape[1];
            int cols = type.blockSize() == 256 ? 256 * (1 + shape[2] / 64) : shape[2]; // K-quants: whole super-blocks
            long seed = n * 31L + rows;
            GgufTensor w = TestWeights.tensor("m", type, 1, rows, cols, seed);
            float[] x = random(n * cols, seed);
            float[] gpu = new float[n * rows];
            WeightHandle wh = cuda.upload(key(w, seed), w);
            try (Tensor xt = cuda.allocate(Tensor.DType.F32, n, cols); Tensor out = cuda.allocate(Tensor.DType.F32, n, rows)) {
                cuda.write(xt, x);
                cuda.write(out, nan(n * rows));
                cuda.matmul(wh, xt, out);
                cuda.read(out, gpu);
            }
            float[][] cpu = new float[n][rows];
            WeightMatrix.of(w).matmul(rows(x, n, cols), cpu, n);
            assertThat(relDiff(gpu, flat(cpu))).as("%s n=%d rows=%d cols=%d", type, n, rows, cols).isLessThan(tolerance(type));
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "MXFP4"})
    void expertProductsMatchCpu(GgmlType type) throws GgufFormatException {
        int experts = 8, rows = 70, k = 2;
        int cols = type.blockSize() == 256 ? 512 : 96;
        for (int n : new int[] {1, 5, 33}) {
            Random r = new Random(n);
            int[] ids = new int[n * k];
            for (int t = 0; t < n; t++) {
                ids[t * k] = r.nextInt(experts);
                ids[t * k + 1] = (ids[t * k] + 1 + r.nextInt(experts - 1)) % experts;
            }
            GgufTensor w = TestWeights.tensor("e", type, experts, rows, cols, n);
            WeightMatrix[] cpuExperts = WeightMatrix.experts(w);
            WeightHandle wh = cuda.upload(key(w, n), w);
            for (boolean perAssignment : new boolean[] {false, true}) {
                int xRows = perAssignment ? n * k : n;
                float[] x = random(xRows * cols, perAssignment ? 6 : 5);
                float[] gpu = new float[n * k * rows];
                try (Tensor xt = cuda.allocate(Tensor.DType.F32, xRows, cols);
                     Tensor idT = cuda.allocate(Tensor.DType.I32, n, k);
                     Tensor out = cuda.allocate(Tensor.DType.F32, n * k, rows)) {
                    cuda.write(xt, x);
                    cuda.write(idT, ids);
                    cuda.write(out, nan(n * k * rows));
                    cuda.expertMatmul(wh, xt, idT, out);
                    cuda.read(out, gpu);
                }
                float[][] xs = rows(x, xRows, cols);
                float[][] cpu = new float[n * k][rows];
                for (int a = 0; a < n * k; a++) {
                    cpuExperts[ids[a]].matmul(xs[perAssignment ? a : a / k], cpu[a]);
                }
                assertThat(relDiff(gpu, flat(cpu))).as("%s n=%d per assignment %s", type, n, perAssignment).isLessThan(tolerance(type));
            }
        }
    }

    @Test
    void routingMatchesTheCpuRouter() {
        int n = 37, experts = 16;
        RoutingConfig[] configs = {
            RoutingConfig.softmaxTopK(experts, 2, true),
            RoutingConfig.softmaxTopK(experts, 4, false),
            new RoutingConfig(RoutingConfig.Gating.SIGMOID, experts, 4, true, 2.5f, 4, 2),
            new RoutingConfig(RoutingConfig.Gating.SOFTMAX_WEIGHT, experts, 4, false, 1f, 1, 1), // gpt-oss
        };
        float[] logits = random(n * experts, 3);
        for (RoutingConfig config : configs) {
            int k = config.topK();
            int[] gpuIds = new int[n * k];
            float[] gpuWeights = new float[n * k];
            try (Tensor lg = cuda.allocate(Tensor.DType.F32, n, experts);
                 Tensor id = cuda.allocate(Tensor.DType.I32, n, k);
                 Tensor w = cuda.allocate(Tensor.DType.F32, n, k)) {
                cuda.write(lg, logits);
                cuda.route(lg, null, config, id, w);
                cuda.read(id, gpuIds);
                cuda.read(w, gpuWeights);
            }
            Router router = new Router(config);
            int[] cpuIds = new int[n * k];
            float[] cpuWeights = new float[n * k];
            int[] ids = new int[k];
            float[] weights = new float[k];
            for (int t = 0; t < n; t++) {
                router.route(Arrays.copyOfRange(logits, t * experts, (t + 1) * experts), null, ids, weights);
                System.arraycopy(ids, 0, cpuIds, t * k, k);
                System.arraycopy(weights, 0, cpuWeights, t * k, k);
            }
            assertThat(gpuIds).as(config.toString()).containsExactly(cpuIds);
            assertThat(relDiff(gpuWeights, cpuWeights)).as(config.toString()).isLessThan(1e-5);
        }
    }

    // ---- whole model -------------------------------------------------------------------------

    @ParameterizedTest
    @MethodSource("models")
    void greedyTokensAndLogitsMatchTheCpuEngine(String file) throws IOException {
        try (Model model = Model.load(oracleDir().resolve(file))) {
            boolean f32 = model.gguf().tensor("blk.0.attn_output.weight").type() == GgmlType.F32;
            double tol = f32 ? 1e-3 : 1e-2;
            String[] prompts = {"Once upon a time, there was a little robot", "The quick brown fox"};
            BackendForward.Options o = BackendForward.Options.forSequences(model.config(), 1);
            double worst = 0;
            Engine engine = new Engine(model);
            try (BackendForward g = new BackendForward(model, cuda, o)) {
                for (String prompt : prompts) {
                    int[] ids = model.tokenizer().encodePrompt(prompt);
                    BackendForward.Sequence sg = g.newSequence();
                    KvCache sc = model.newCache();
                    float[] lg = g.forward(sg, ids);
                    float[] lc = engine.forward(sc, ids);
                    for (int step = 0; step < GREEDY_STEPS; step++) {
                        double d = relDiff(lg, lc);
                        worst = Math.max(worst, d);
                        assertThat(d).as("%s '%s' step %d", file, prompt, step).isLessThan(tol);
                        int tok = Sampler.argmax(lc);
                        assertThat(Sampler.argmax(lg)).as("%s '%s' greedy token %d", file, prompt, step).isEqualTo(tok);
                        lg = g.forward(sg, new int[] {tok});
                        lc = engine.forward(sc, new int[] {tok});
                    }
                    g.release(sg);
                }
            }
            System.out.printf("%s: max relative logit diff CUDA vs the CPU engine %.2e (tolerance %.0e)%n", file, worst, tol);
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
                together = BackendForwardGpuTest.greedy(g, ps, 12);
            }
            for (int i = 0; i < ps.size(); i++) {
                try (BackendForward g = new BackendForward(model, cuda, o)) {
                    assertThat(together.get(i)).as("%s sequence %d", file, i).containsExactly(BackendForwardGpuTest.greedy(g, List.of(ps.get(i)), 12).get(0));
                }
            }
        }
    }

    @Test
    void biasAndGatedAddMatchCpu() {
        int n = 7, cols = 96;
        GgufTensor b = TestWeights.tensor("b", GgmlType.F32, 1, 1, cols, 3);
        GgufTensor bias = new GgufTensor("b", GgmlType.F32, new long[] {cols}, b.data());
        float[] x = random(n * cols, 1);
        float[] d = random(n * cols, 2);
        float[] g = random(n, 3);
        float[] gpu = new float[n * cols];
        WeightHandle w = cuda.upload(key(bias, 3), bias);
        try (Tensor xt = cuda.allocate(Tensor.DType.F32, n, cols);
             Tensor dt = cuda.allocate(Tensor.DType.F32, n, cols);
             Tensor gt = cuda.allocate(Tensor.DType.F32, n, 1)) {
            cuda.write(xt, x);
            cuda.write(dt, d);
            cuda.write(gt, g);
            cuda.addBias(xt, w);
            cuda.addGated(xt, dt, gt);
            cuda.read(xt, gpu);
        }
        java.nio.FloatBuffer bv = bias.bytes().order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        float[] cpu = new float[n * cols];
        for (int t = 0; t < n; t++) {
            float s = (float) (1 / (1 + Math.exp(-g[t])));
            for (int i = 0; i < cols; i++) {
                cpu[t * cols + i] = (x[t * cols + i] + bv.get(i)) + s * d[t * cols + i];
            }
        }
        assertThat(relDiff(gpu, cpu)).isLessThan(1e-6);
    }

    /** Embedding rows of every weight type are the CPU's dequantized rows, bit for bit; the scale op is x * s. */
    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "MXFP4"})
    void embeddingsAndScaleMatchCpu(GgmlType type) throws GgufFormatException {
        int vocab = 50, cols = type.blockSize() == 256 ? 512 : 96;
        GgufTensor table = TestWeights.tensor("emb", type, 1, vocab, cols, 9);
        int[] tokens = {0, 49, 7, 7, 23};
        int n = tokens.length;
        float[] gpu = new float[n * cols];
        WeightHandle w = cuda.upload(key(table, 9), table);
        try (Tensor ids = cuda.allocate(Tensor.DType.I32, n, 1); Tensor out = cuda.allocate(Tensor.DType.F32, n, cols)) {
            cuda.write(ids, tokens);
            cuda.write(out, nan(n * cols));
            cuda.embed(w, ids, out);
            cuda.read(out, gpu);
            WeightMatrix cpu = WeightMatrix.of(table);
            float[] row = new float[cols];
            for (int t = 0; t < n; t++) {
                cpu.dequantizeRow(tokens[t], row, 0);
                assertThat(Arrays.copyOfRange(gpu, t * cols, (t + 1) * cols)).as("%s token %d", type, tokens[t]).containsExactly(row);
            }
            cuda.scale(out, 0.22f);
            float[] scaled = new float[n * cols];
            cuda.read(out, scaled);
            for (int i = 0; i < n * cols; i++) {
                assertThat(scaled[i]).isEqualTo(gpu[i] * 0.22f);
            }
        }
    }

    /** RoPE with YaRN (gpt-oss's parameters from the oracle file) against the CPU's {@code YarnRope} angles and rotation. */
    @Test
    void yarnRopeMatchesTheCpuAngles() throws IOException {
        Path file = Path.of(System.getProperty("moestream.oracle.types.dir", "../../shared/oracle/models"), "tiny-gpt-oss-mxfp4.gguf");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(file), "no " + file);
        try (Model model = Model.load(file)) {
            io.moestream.runtime.backend.RopeSpec spec = io.moestream.runtime.backend.RopeSpec.of(model.config());
            assertThat(spec.yarn()).isNotNull();
            int heads = model.config().heads(), hd = spec.headDim(), half = spec.ropeDims() / 2;
            int[] positions = {0, 1, 5, 100, 1000, 4000};
            int n = positions.length, cols = heads * hd;
            float[] x = random(n * cols, 31);
            float[] gpu = new float[n * cols];
            try (Tensor xt = cuda.allocate(Tensor.DType.F32, n, cols); Tensor pt = cuda.allocate(Tensor.DType.I32, n, 1)) {
                cuda.write(xt, x);
                cuda.write(pt, positions);
                cuda.rope(xt, pt, spec);
                cuda.read(xt, gpu);
            }
            float[] cpu = x.clone();
            float[] cos = new float[half];
            float[] sin = new float[half];
            boolean neox = spec.type() == io.moestream.runtime.model.ModelConfig.RopeType.NEOX;
            for (int r = 0; r < n; r++) {
                float theta = positions[r];
                for (int i = 0; i < half; i++) {
                    spec.yarn().angle(theta, i, cos, sin);
                    theta *= spec.thetaScale();
                }
                for (int h = 0; h < heads; h++) {
                    for (int i = 0; i < half; i++) {
                        int a = r * cols + h * hd + (neox ? i : 2 * i);
                        int b = neox ? a + half : a + 1;
                        float x0 = x[a], x1 = x[b];
                        cpu[a] = x0 * cos[i] - x1 * sin[i];
                        cpu[b] = x0 * sin[i] + x1 * cos[i];
                    }
                }
            }
            assertThat(relDiff(gpu, cpu)).isLessThan(1e-5);
        }
    }

    /** gpt-oss's clamped SwiGLU and expert biases against the CPU's {@code CpuMath.swigluOai} and row adds. */
    @Test
    void clampedSwigluAndExpertBiasesMatchCpu() {
        int n = 5, k = 2, experts = 4, cols = 96;
        float[] gate = random(n * k * cols, 21);
        float[] up = random(n * k * cols, 22);
        for (int i = 0; i < gate.length; i++) { // reach the clamp at +-7
            gate[i] *= 5;
            up[i] *= 5;
        }
        int[] ids = {0, 3, 2, 1, 3, 0, 1, 1, 2, 2};
        GgufTensor bias = TestWeights.tensor("eb", GgmlType.F32, 1, experts, cols, 23);
        float[] gpu = new float[n * k * cols];
        WeightHandle b = cuda.upload(key(bias, 23), bias);
        try (Tensor g = cuda.allocate(Tensor.DType.F32, n * k, cols); Tensor u = cuda.allocate(Tensor.DType.F32, n * k, cols);
             Tensor id = cuda.allocate(Tensor.DType.I32, n, k)) {
            cuda.write(g, gate);
            cuda.write(u, up);
            cuda.write(id, ids);
            cuda.addExpertBias(g, b, id);
            cuda.swigluOai(g, u, 1.702f, 7f, g);
            cuda.read(g, gpu);
        }
        java.nio.FloatBuffer bv = bias.bytes().order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        float[] cpu = new float[n * k * cols];
        for (int a = 0; a < n * k; a++) {
            float[] g = Arrays.copyOfRange(gate, a * cols, (a + 1) * cols);
            float[] u = Arrays.copyOfRange(up, a * cols, (a + 1) * cols);
            for (int i = 0; i < cols; i++) {
                g[i] += bv.get(ids[a] * cols + i);
            }
            io.moestream.runtime.kernel.CpuMath.swigluOai(g, u, cols, 1.702f, 7f);
            System.arraycopy(g, 0, cpu, a * cols, cols);
        }
        assertThat(relDiff(gpu, cpu)).isLessThan(1e-5);
    }

    /** The same float32 block sealed on the GPU and by the CPU engine's cache ({@link PagedKvCache}) gives the same bytes. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"f32", "f16", "int8/16", "int4/16", "int8/32"})
    void sealedBlocksAreTheCpusBytes(String codecName) {
        KvLayout layout = new KvLayout(3, 2, 32, 32, KvCodec.parse(codecName));
        java.nio.ByteBuffer open = java.nio.ByteBuffer.allocate(Math.toIntExact(layout.openBlockBytes())).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        float[] values = random(Math.toIntExact(layout.openBlockFloats()), 17);
        for (int i = 0; i < values.length; i++) {
            values[i] = values[i] * (i % 7 == 3 ? 8 : 1) + (i % 5); // channel offsets and outliers, as keys have
            open.putFloat(values[i]);
        }
        byte[] gpu;
        try (KvPool pool = cuda.allocateKv(layout, 3, 2); Tensor seals = cuda.allocate(Tensor.DType.I32, 1, 2)) {
            cuda.writeOpenKvBlock(pool, 0, open.array());
            cuda.write(seals, new int[] {0, 2});
            for (int l = 0; l < layout.layers(); l++) {
                cuda.kvSeal(pool, l, seals);
            }
            gpu = cuda.readKvBlock(pool, 2);
            assertThat(cuda.readOpenKvBlock(pool, 0)).isEqualTo(open.array());
        }
        PagedKvCache cpu = new PagedKvCache(new KvShape(layout.layers(), layout.kvHeads(), layout.headDim(), 0), layout.codec(),
                layout.blockTokens());
        int kvDim = layout.kvDim();
        for (int pos = 0; pos < layout.blockTokens(); pos++) {
            for (int l = 0; l < layout.layers(); l++) {
                float[] k = new float[kvDim];
                float[] v = new float[kvDim];
                for (int h = 0; h < layout.kvHeads(); h++) {
                    for (int i = 0; i < layout.headDim(); i++) {
                        k[h * layout.headDim() + i] = values[(int) layout.openIndex(pos, l, h, 0, i)];
                        v[h * layout.headDim() + i] = values[(int) layout.openIndex(pos, l, h, 1, i)];
                    }
                }
                cpu.write(l, pos, k, 0, v, 0);
            }
        }
        cpu.commit(layout.blockTokens());
        assertThat(gpu).as(codecName).isEqualTo(cpu.backendBlock(0));
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"f32", "f16", "int8/16", "int4/16"})
    void longContextSplitKAttentionOverEveryKvCodecMatchesTheCpuEngine(String codecName) throws IOException {
        KvCodec codec = KvCodec.parse(codecName);
        try (Model model = Model.load(oracleDir().resolve("tiny-mixtral-q8_0.gguf"))) {
            Random r = new Random(11);
            int[] prompt = new int[1500];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = r.nextInt(model.config().vocabSize() - 2);
            }
            BackendForward.Options o = new BackendForward.Options(64, 200, 16, codec);
            try (BackendForward g = new BackendForward(model, cuda, o)) {
                BackendForward.Sequence sg = g.newSequence();
                KvCache sc = model.newCache(codec, 16);
                float[] lg = g.forward(sg, prompt);
                float[] lc = new Engine(model).forward(sc, prompt);
                double tol = 1e-2; // Q8_0 weights, as in greedyTokensAndLogitsMatchTheCpuEngine
                assertThat(relDiff(lg, lc)).as(codec + " after 1500 positions").isLessThan(tol);
                // the blocks the GPU wrote read back as the engine's (keyed-state write-back); an int4
                // code one step apart is a whole group scale, so int4 blocks are checked by
                // sealedBlocksAreTheCpusBytes instead
                KvKernelArgs a = KvKernelArgs.of(g.pool().layout());
                byte[] gb = g.sealedBlock(sg, 7);
                byte[] cb = sc.paged().backendBlock(7);
                assertThat(gb).hasSameSizeAs(cb);
                if (codec.bits() != 4) {
                    float[] gf = new float[16 * 32];
                    float[] cf = new float[16 * 32];
                    for (int t = 0; t < 16; t++) {
                        for (int i = 0; i < 32; i++) {
                            gf[t * 32 + i] = a.sealedLoad(gb, 0, 1, 1, 1, t, i);
                            cf[t * 32 + i] = a.sealedLoad(cb, 0, 1, 1, 1, t, i);
                        }
                    }
                    assertThat(relDiff(gf, cf)).as(codec + " block 7, layer 1, head 1, values").isLessThan(tol);
                }
                assertThat(relDiff(floats(g.tailBlock(sg)), floats(sc.paged().backendTail()))).as(codec + " open tail").isLessThan(tol);
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
