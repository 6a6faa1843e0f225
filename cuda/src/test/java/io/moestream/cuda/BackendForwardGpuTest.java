package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.runtime.backend.BackendForward;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.Sampler;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The forward pass on the CUDA backend ({@link BackendForward}) against the CPU engine, on a machine
 * with a GPU: every architecture, every KV codec, blocks moved between the engine's cache and the
 * device pool, batched steps against single sequences.
 */
@Tag("gpu")
class BackendForwardGpuTest {

    static final String TINY_LLAMA = "tiny-llama-q8_0";
    static final String TINY_MIXTRAL = "tiny-mixtral-q8_0";
    static final String TINY_QWEN3MOE = "tiny-qwen3moe-q8_0";
    static final String TINY_QWEN2MOE = "tiny-qwen2moe-q8_0";
    static final String TINY_GROUPMOE = "tiny-groupmoe-q8_0";
    static final String[] PROMPTS = {
        "Once upon a time, there was a little robot who", "Permission is hereby granted, free of charge", "The quick brown fox"};

    static CudaBackend cuda;

    @BeforeAll
    static void open() {
        cuda = (CudaBackend) new CudaBackendProvider().open(Integer.getInteger("moestream.cuda.device", 0));
    }

    @AfterAll
    static void close() {
        if (cuda != null) {
            cuda.close();
        }
    }

    static Model load(String stem) throws IOException {
        return Model.load(CudaBackendGpuTest.oracleDir().resolve(stem + ".gguf"));
    }

    static int[] prompt(Model model, int i) {
        return model.tokenizer().encodePrompt(PROMPTS[i]);
    }

    /** A forward pass on the shared CUDA backend (closing it leaves the backend open). */
    static BackendForward onGpu(Model model, BackendForward.Options o) throws IOException {
        return new BackendForward(model, cuda, o);
    }

    static void assertClose(float[] actual, float[] expected, String what) {
        assertClose(actual, expected, 1e-2, what);
    }

    /** Every logit within {@code tolerance} (relative to its size, at least 1) and the same greedy token. */
    static void assertClose(float[] actual, float[] expected, double tolerance, String what) {
        for (int i = 0; i < expected.length; i++) {
            assertThat((double) actual[i]).as("%s logit %d", what, i)
                    .isCloseTo(expected[i], org.assertj.core.data.Offset.offset(tolerance * Math.max(1, Math.abs(expected[i]))));
        }
        assertThat(Sampler.argmax(actual)).as(what + " greedy token").isEqualTo(Sampler.argmax(expected));
    }

    /** Greedy decoding on the engine and the backend side by side, logits compared at every step. */
    static void decodeAlongside(Engine engine, KvCache cache, BackendForward f, BackendForward.Sequence s, float[] expected,
            float[] actual, int steps, String what) {
        decodeAlongside(engine, cache, f, s, expected, actual, steps, 1e-2, what);
    }

    static void decodeAlongside(Engine engine, KvCache cache, BackendForward f, BackendForward.Sequence s, float[] expected,
            float[] actual, int steps, double tolerance, String what) {
        for (int step = 0; step < steps; step++) {
            assertClose(actual, expected, tolerance, what + " step " + step);
            int token = Sampler.argmax(expected);
            expected = engine.forward(cache, new int[] {token});
            actual = f.forward(s, new int[] {token});
        }
        assertThat(s.length()).isEqualTo(cache.length());
    }

    /**
     * Logits within {@code tolerance} of the largest one and the same greedy token, for quantized KV:
     * the backend's and the engine's keys differ by float rounding (~1e-6), and a value on a
     * rounding boundary of F16 or of an int code then lands one step apart, so equal codecs agree to
     * a little more than the F32 tolerance (measured: f16 9e-5, int8 2e-4, int4 1.5e-3).
     */
    static void decodeAlongsideQuantized(Engine engine, KvCache cache, BackendForward f, BackendForward.Sequence s,
            float[] expected, float[] actual, int steps, double tolerance, String what) {
        for (int step = 0; step < steps; step++) {
            assertThat(CudaBackendGpuTest.relDiff(actual, expected)).as(what + " step " + step).isLessThan(tolerance);
            assertThat(Sampler.argmax(actual)).as(what + " greedy token " + step).isEqualTo(Sampler.argmax(expected));
            int token = Sampler.argmax(expected);
            expected = engine.forward(cache, new int[] {token});
            actual = f.forward(s, new int[] {token});
        }
        assertThat(s.length()).isEqualTo(cache.length());
    }

    @ParameterizedTest
    @ValueSource(strings = {TINY_MIXTRAL, TINY_LLAMA, TINY_QWEN3MOE, TINY_QWEN2MOE,
        TINY_GROUPMOE})
    void reproducesTheEngineLogitsAndGreedyTokensOfEveryArchitecture(String stem) throws IOException {
        Model model = load(stem);
        int[] prompt = prompt(model, 0);
        Engine engine = new Engine(model);
        KvCache cache = model.newCache();
        try (BackendForward f = onGpu(model, new BackendForward.Options(16, 64, 16, KvCodec.F32))) {
            BackendForward.Sequence s = f.newSequence();
            decodeAlongside(engine, cache, f, s, engine.forward(cache, prompt), f.forward(s, prompt), 12, stem);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"f16", "int8/16", "int4/16"})
    void compressedBlocksAttendAsTheEnginesCache(String codecName) throws IOException {
        KvCodec codec = KvCodec.parse(codecName);
        double tolerance = codec.kind() == KvCodec.Kind.INT4 ? 5e-3 : 1e-3;
        for (String stem : new String[] {TINY_MIXTRAL, TINY_QWEN3MOE, TINY_GROUPMOE}) {
            Model model = load(stem);
            // a 39-token prompt over blocks of 16: two blocks sealed within the prefill, more while decoding
            int[] prompt = prompt(model, 0);
            Engine engine = new Engine(model);
            KvCache cache = model.newCache(codec, 16);
            try (BackendForward f = onGpu(model, new BackendForward.Options(16, 64, 16, codec))) {
                BackendForward.Sequence s = f.newSequence();
                decodeAlongsideQuantized(engine, cache, f, s, engine.forward(cache, prompt), f.forward(s, prompt), 12, tolerance,
                        stem + " " + codec);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"f32", "int8/16", "int4/16"})
    void engineCacheBlocksLoadIntoThePoolAndComeBackIdentical(String codecName) throws IOException {
        KvCodec codec = KvCodec.parse(codecName);
        Model model = load(TINY_MIXTRAL);
        int[] prompt = prompt(model, 1);
        Engine engine = new Engine(model);
        KvCache cache = model.newCache(codec, 16);
        engine.forward(cache, prompt);
        assertThat(cache.length() % 16).isNotZero();
        try (BackendForward f = onGpu(model, new BackendForward.Options(16, 64, 16, codec))) {
            f.newSequence();
            BackendForward.Sequence s = f.load(cache.length(), i -> cache.paged().backendBlock(i), cache.paged().backendTail());
            for (int i = 0; i < cache.length() / 16; i++) {
                assertThat(f.sealedBlock(s, i)).as("sealed block %d", i).isEqualTo(cache.paged().backendBlock(i));
            }
            assertThat(f.tailBlock(s)).isEqualTo(cache.paged().backendTail());
            // the restored sequence continues as the engine's cache does
            decodeAlongside(engine, cache, f, s, engine.forward(cache, new int[] {42}), f.forward(s, new int[] {42}), 8, codecName);

            // and the backend's new blocks, written back into a copy of the engine's cache, continue identically
            KvCache written = model.newCache(codec, 16);
            written.appendFromBackend(cache.tokens(), i -> f.sealedBlock(s, i), f.tailBlock(s));
            assertThat(written.paged().dirtyBlocks()).hasSize((cache.length() + 15) / 16);
            KvCache restored = KvCache.restore(model, written.tokens(), written.paged().encodeMeta(), written.paged()::encodeBlock);
            float[] fromWritten = engine.forward(restored, new int[] {7});
            float[] fromBackend = f.forward(s, new int[] {7});
            assertClose(fromBackend, fromWritten, codecName + " after write-back");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"f32:3", "int8/8:8"})
    void batchedMixedStepsEqualSingleSequences(String codecAndBlock) throws IOException {
        KvCodec codec = KvCodec.parse(codecAndBlock.split(":")[0]);
        int blockTokens = Integer.parseInt(codecAndBlock.split(":")[1]);
        Model model = load(TINY_MIXTRAL);
        int seqs = 3;
        List<int[]> greedyAlone = new ArrayList<>();
        for (int i = 0; i < seqs; i++) {
            try (BackendForward f = onGpu(model, new BackendForward.Options(64, 64, blockTokens, codec))) {
                greedyAlone.add(greedy(f, List.of(prompt(model, i)), 6).get(0));
            }
        }
        // a small pass size: prefill chunks are split across passes and blocks
        try (BackendForward f = onGpu(model, new BackendForward.Options(7, 64, blockTokens, codec))) {
            List<int[]> ps = new ArrayList<>();
            for (int i = 0; i < seqs; i++) {
                ps.add(prompt(model, i));
            }
            List<int[]> together = greedy(f, ps, 6);
            for (int i = 0; i < seqs; i++) {
                assertThat(together.get(i)).as("sequence " + i).containsExactly(greedyAlone.get(i));
            }
        }
    }

    /** Prefills every prompt in one step, then decodes all in lockstep. */
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
                out[i][t] = Sampler.argmax(logits[i]);
                chunks.add(new BackendForward.Chunk(seqs.get(i), new int[] {out[i][t]}));
            }
            logits = f.step(chunks);
        }
        return List.of(out);
    }

    @Test
    void restoredBlocksContinueIdentically() throws IOException {
        Model model = load(TINY_MIXTRAL);
        int[] prompt = prompt(model, 1);
        for (KvCodec codec : new KvCodec[] {KvCodec.F32, KvCodec.F16, KvCodec.int8(8), KvCodec.int4(8)}) {
            BackendForward.Options o = new BackendForward.Options(16, 32, 8, codec);
            try (BackendForward a = onGpu(model, o);
                 BackendForward b = onGpu(model, o)) {
                BackendForward.Sequence sa = a.newSequence();
                a.forward(sa, prompt);
                // move the sequence's blocks to another pool (as keyed state would), at other physical ids
                b.forward(b.newSequence(), new int[20]);
                BackendForward.Sequence sb = b.load(sa.length(), i -> a.sealedBlock(sa, i), a.tailBlock(sa));
                assertThat(sb.blocks().sealedBlocks()).isNotEqualTo(sa.blocks().sealedBlocks());
                float[] la = a.forward(sa, new int[] {42});
                float[] lb = b.forward(sb, new int[] {42});
                assertThat(lb).as(codec.toString()).containsExactly(la);
            }
        }
    }

    @Test
    void f16KvStaysCloseToF32() throws IOException {
        Model model = load(TINY_MIXTRAL);
        int[] prompt = prompt(model, 2);
        float[] f32;
        float[] f16;
        try (BackendForward f = onGpu(model, new BackendForward.Options(64, 16, 16, KvCodec.F32))) {
            f32 = f.forward(f.newSequence(), prompt);
        }
        try (BackendForward f = onGpu(model, new BackendForward.Options(64, 16, 16, KvCodec.F16))) {
            f16 = f.forward(f.newSequence(), prompt);
        }
        assertThat(CudaBackendGpuTest.relDiff(f16, f32)).isLessThan(1e-2).isGreaterThan(0);
        assertThat(Sampler.argmax(f16)).isEqualTo(Sampler.argmax(f32));
    }

    @Test
    void rejectsOverlongAndDuplicateChunks() throws IOException {
        Model model = load(TINY_LLAMA);
        try (BackendForward f = onGpu(model, new BackendForward.Options(8, 4, 16, KvCodec.F32))) {
            BackendForward.Sequence s = f.newSequence();
            assertThatThrownBy(() -> f.step(List.of(new BackendForward.Chunk(s, new int[] {1}), new BackendForward.Chunk(s, new int[] {2}))))
                    .hasMessageContaining("one chunk per sequence");
            assertThatThrownBy(() -> f.forward(s, new int[] {9999})).hasMessageContaining("outside the vocabulary");
            // 4 sealed blocks of 16 hold 64 positions, plus the partial 5th block in an open block
            assertThatThrownBy(() -> f.forward(s, new int[81])).hasMessageContaining("KV pool is full (4 blocks)");
        }
    }
}
