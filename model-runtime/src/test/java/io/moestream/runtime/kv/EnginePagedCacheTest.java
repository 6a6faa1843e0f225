package io.moestream.runtime.kv;

import io.moestream.runtime.SharedOracle;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.model.StepPlan;
import io.moestream.runtime.model.StepResult;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * End to end on the trained model at Q8_0 ({@code ../shared/oracle}; skipped without it): the Engine
 * reads and writes the paged, compressed cache. Q8_0 products sum a prefill row as a decode row, so a
 * batched prefill can be compared with one position at a time bit for bit; the bundled Q4_K_M model's
 * repacked Q4_K products cannot (llama.cpp's gemm and gemv orders differ).
 */
class EnginePagedCacheTest {

    private static Model model;
    private static int[] doc;

    @BeforeAll
    static void load() throws IOException {
        model = Model.load(SharedOracle.model("trained-moe-q8_0"));
        try (InputStream in = EnginePagedCacheTest.class.getResourceAsStream("/kv/design-faq.txt")) {
            doc = model.tokenizer().encodePrompt(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
    }

    @AfterAll
    static void close() {
        if (model != null) { // null when the oracle is absent and the class was skipped
            model.close();
        }
    }

    /** A batched prefill crossing block boundaries equals one position at a time, bit for bit, for every codec. */
    @Test
    void batchedPrefillEqualsOneAtATimeForEveryCodec() {
        Engine engine = new Engine(model);
        int[] prompt = Arrays.copyOf(doc, 75);
        for (KvCodec codec : List.of(KvCodec.F32, KvCodec.F16, KvCodec.INT8, KvCodec.INT4)) {
            KvCache batched = model.newCache(codec);
            float[] a = engine.forward(batched, prompt);
            KvCache single = model.newCache(codec);
            float[] b = null;
            for (int t : prompt) {
                b = engine.forward(single, new int[] {t});
            }
            assertThat(a).as("%s logits", codec).containsExactly(b);
            assertThat(batched.paged().block(1).sealed()).isTrue();
            for (int i = 0; i < batched.paged().meta().blockCount(); i++) {
                assertThat(batched.paged().encodeBlock(i)).as("%s block %d", codec, i).isEqualTo(single.paged().encodeBlock(i));
            }
            // a batched step of two sequences mixing a decode token and a prefill chunk over a boundary
            KvCache x = model.newCache(codec);
            KvCache y = model.newCache(codec);
            engine.forward(x, Arrays.copyOf(doc, 30));
            engine.forward(y, Arrays.copyOf(doc, 5));
            var r = engine.step(new StepPlan(List.of(new StepPlan.Sequence(x, Arrays.copyOfRange(doc, 30, 40), true),
                    new StepPlan.Sequence(y, new int[] {doc[5]}, true))));
            KvCache x1 = model.newCache(codec);
            float[] xs = null;
            for (int t : Arrays.copyOf(doc, 40)) {
                xs = engine.forward(x1, new int[] {t});
            }
            assertThat(r.logits(0)).as("%s step", codec).containsExactly(xs);
        }
    }

    @Test
    void int8StaysCloseToF32AndReadsFewerBytes() {
        Engine engine = new Engine(model);
        int[] prompt = Arrays.copyOf(doc, 200);
        float[] f32 = engine.forward(model.newCache(KvCodec.F32), prompt);
        engine.resetKvBytesRead();
        KvCache c = model.newCache(KvCodec.INT8);
        float[] int8 = engine.forward(c, prompt);
        assertThat(KvEval.argmax(int8)).isEqualTo(KvEval.argmax(f32));
        assertThat(KvEval.kl(f32, int8)).isLessThan(1e-3);
        long read8 = decodeBytes(engine, c);
        long read32 = decodeBytes(engine, f32Cache(engine, prompt));
        assertThat((double) read8 / read32).isBetween(0.25, 0.40);
    }

    private static KvCache f32Cache(Engine engine, int[] prompt) {
        KvCache c = model.newCache(KvCodec.F32);
        engine.forward(c, prompt);
        return c;
    }

    private static long decodeBytes(Engine engine, KvCache c) {
        engine.resetKvBytesRead();
        engine.forward(c, new int[] {doc[c.length()]});
        return engine.kvBytesRead();
    }

    @Test
    void aRestoredCompressedPrunedContextContinuesExactlyAsTheLiveOne() {
        Engine engine = new Engine(model);
        KvCache live = model.newCache(KvCodec.INT4);
        live.startHeadClassification(4, 32, model.config());
        engine.forward(live, Arrays.copyOf(doc, 100));
        live.applyHeadClassification(0.5, 1.0);
        assertThat(live.headPolicy().streamingCount()).isEqualTo(4);
        Map<Integer, byte[]> state = new HashMap<>();
        for (int i : live.paged().dirtyBlocks()) {
            state.put(i, live.paged().encodeBlock(i));
        }
        KvCache restored = KvCache.restore(model, live.tokens(), live.paged().encodeMeta(), state::get);
        assertThat(restored.headPolicy()).isEqualTo(live.headPolicy());
        int[] turn = Arrays.copyOfRange(doc, 100, 140);
        float[] a = engine.forward(live, turn);
        float[] b = engine.forward(restored, turn);
        assertThat(b).containsExactly(a);
    }

    /** The classifier of one cache sees only that cache's queries, also when another sequence shares the step. */
    @Test
    void headClassificationIsPerCacheInABatchedStep() {
        Engine engine = new Engine(model);
        int[] d = Arrays.copyOf(doc, 100);
        KvCache alone = model.newCache(KvCodec.INT8);
        alone.startHeadClassification(4, 32, model.config());
        engine.forward(alone, d);
        KvCache shared = model.newCache(KvCodec.INT8);
        shared.startHeadClassification(4, 32, model.config());
        KvCache other = model.newCache(KvCodec.INT8);
        engine.step(new StepPlan(List.of(new StepPlan.Sequence(shared, d, true),
                new StepPlan.Sequence(other, Arrays.copyOfRange(doc, 200, 290), true))));
        assertThat(shared.headClassifier().scores()).containsExactly(alone.headClassifier().scores());
    }

    /**
     * A float32 prefill's attention runs one task per (sequence, KV head) on the pool: the head
     * statistics and the logits are those of feeding the document one token at a time.
     */
    @Test
    void float32PrefillOnThePoolClassifiesAndComputesAsOneTokenAtATime() {
        Engine engine = new Engine(model);
        int[] d = Arrays.copyOf(doc, 100);
        KvCache single = model.newCache(KvCodec.F32);
        single.startHeadClassification(4, 32, model.config());
        float[] last = null;
        for (int token : d) {
            last = engine.forward(single, new int[] {token});
        }
        KvCache batched = model.newCache(KvCodec.F32);
        batched.startHeadClassification(4, 32, model.config());
        KvCache other = model.newCache(KvCodec.F32);
        StepResult r = engine.step(new StepPlan(List.of(new StepPlan.Sequence(batched, d, true),
                new StepPlan.Sequence(other, Arrays.copyOfRange(doc, 200, 290), true))));
        assertThat(batched.headClassifier().scores()).containsExactly(single.headClassifier().scores());
        float[] logits = r.logits(0);
        for (int i = 0; i < logits.length; i++) {
            assertThat(logits[i]).as("logit " + i).isCloseTo(last[i], org.assertj.core.data.Offset.offset(2e-3f));
        }
    }

    @Test
    void compressionKeepsTheTrainedModelsOutputsOnARealDocument() throws IOException {
        // small run for the test suite (KvEval's main runs the full 1403-token document for docs/kv-cache.md)
        KvEval.Params p = new KvEval.Params(256, 8, 32, 4, 64, 0.5, 1.0);
        int[] part = Arrays.copyOf(doc, 320);
        List<KvEval.Row> rows = KvEval.evaluate(model, part, p, List.of(
                new KvEval.Setting(KvCodec.F32, false),
                new KvEval.Setting(KvCodec.INT8, false),
                new KvEval.Setting(KvCodec.INT4, false),
                new KvEval.Setting(KvCodec.INT8, true)));
        System.out.print(KvEval.table(rows, p));
        KvEval.Row f32 = rows.get(0);
        KvEval.Row int8 = rows.get(1);
        KvEval.Row int4 = rows.get(2);
        KvEval.Row pruned = rows.get(3);
        assertThat(f32.top1Agreement()).isEqualTo(1.0);
        assertThat(f32.meanKl()).isLessThan(1e-9);
        assertThat(f32.ratioVsFp16()).isBetween(2.0, 2.1);
        assertThat(int8.ratioVsFp16()).isBetween(0.56, 0.62);
        assertThat(int8.top1Agreement()).isGreaterThan(0.95);
        assertThat(int8.meanKl()).isLessThan(0.01);
        assertThat(int4.ratioVsFp16()).isBetween(0.31, 0.37);
        assertThat(int4.top1Agreement()).isGreaterThan(0.8);
        assertThat(pruned.streamingHeads()).isEqualTo(4);
        assertThat(pruned.ratioVsFp16()).isLessThan(int8.ratioVsFp16());
        assertThat(pruned.top1Agreement()).isGreaterThan(0.8);
    }
}
