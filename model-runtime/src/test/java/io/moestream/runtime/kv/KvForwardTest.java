package io.moestream.runtime.kv;

import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
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

/** End to end on the bundled trained model (trained-moe Q8_0): the forward pass reads the paged, compressed cache. */
class KvForwardTest {

    private static Model model;
    private static int[] doc;

    @BeforeAll
    static void load() throws IOException {
        model = Model.loadDefault();
        try (InputStream in = KvForwardTest.class.getResourceAsStream("/kv/design-faq.txt")) {
            doc = model.tokenizer().encodePrompt(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void withAnF32CacheTheLogitsEqualTheEngines() throws IOException {
        int[] prompt = Arrays.copyOf(doc, 70);
        Engine engine = new Engine(model);
        KvCache cache = model.newCache();
        float[] expected = engine.forward(cache, prompt);
        KvForward f = new KvForward(model);
        PagedKvCache paged = f.newCache(KvCodec.F32, 32);
        float[] actual = f.forward(paged, prompt);
        assertThat(paged.block(1).sealed()).isTrue();
        for (int i = 0; i < expected.length; i++) {
            assertThat(actual[i]).as("logit %d", i).isCloseTo(expected[i], org.assertj.core.data.Offset.offset(1e-4f));
        }
        // one more decoded token
        float[] e2 = engine.forward(cache, new int[] {doc[70]});
        float[] a2 = f.forward(paged, new int[] {doc[70]});
        assertThat(KvEval.argmax(a2)).isEqualTo(KvEval.argmax(e2));
        assertThat(KvEval.kl(e2, a2)).isLessThan(1e-8);
    }

    @Test
    void aRestoredCompressedContextContinuesExactlyAsTheLiveOne() throws IOException {
        KvForward f = new KvForward(model);
        PagedKvCache live = f.newCache(KvCodec.INT4, 32);
        HeadClassifier classifier = HeadClassifier.of(model.config(), 4, 32);
        f.attention().setObserver(classifier);
        f.forward(live, Arrays.copyOf(doc, 100));
        f.attention().setObserver(null);
        live.setPolicy(classifier.classify(0.5, 1.0));
        assertThat(live.policy().streamingCount()).isEqualTo(4);
        Map<Integer, byte[]> state = new HashMap<>();
        for (int i : live.dirtyBlocks()) {
            state.put(i, live.encodeBlock(i));
        }
        byte[] meta = live.encodeMeta();
        PagedKvCache restored = PagedKvCache.restore(KvShape.of(model), meta, state::get);
        int[] turn = Arrays.copyOfRange(doc, 100, 140);
        float[] a = f.forward(live, turn);
        float[] b = f.forward(restored, turn);
        assertThat(b).containsExactly(a);
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
