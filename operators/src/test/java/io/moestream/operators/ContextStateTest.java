package io.moestream.operators;

import static io.moestream.operators.OperatorHarness.ingest;
import static io.moestream.operators.OperatorHarness.drain;
import static io.moestream.operators.OperatorHarness.harness;
import static io.moestream.operators.OperatorHarness.open;
import static io.moestream.operators.OperatorHarness.operator;
import static io.moestream.operators.OperatorHarness.side;

import static io.moestream.operators.TestRecords.askDocument;
import static io.moestream.operators.TestRecords.part;
import static io.moestream.operators.TestRecords.turn;
import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.kv.HeadPolicy;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Document;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The operator's context state: metadata + KV blocks, incremental writes, codec, head pruning, TTL, tenant cap. */
class ContextStateTest {

    private static final String LONG_DOC = ("The Apache License grants a copyright license to reproduce the Work, to prepare"
            + " derivative works, to publicly display and perform, and to distribute the Work and such derivative works. ").repeat(4);

    private final Reference ref = Reference.get();
    private KeyedTwoInputStreamOperatorTestHarness<String, Document, Prompt, Generation> harness;

    @AfterEach
    void close() throws Exception {
        if (harness != null) {
            harness.close();
        }
    }

    /** Bytes a context takes in state: serialized ContextMeta plus every stored block. */
    static long storedBytes(InferenceOperator op, String key) throws Exception {
        DataOutputSerializer out = new DataOutputSerializer(256);
        ContextMetaSerializer.INSTANCE.serialize(op.storedMeta(key), out);
        long n = out.length();
        for (byte[] b : op.storedBlocks(key).values()) {
            n += b.length;
        }
        return n;
    }

    @Test
    void appendingATurnWritesOnlyThePartialAndNewBlocks() throws Exception {
        harness = open(Reference.config());
        String key = ContextKey.of("acme", "chat");
        harness.processElement2(new StreamRecord<>(turn("acme", "t1", "chat", LONG_DOC, 6)));
        drain(harness);
        ContextMeta m1 = operator(harness).storedMeta(key);
        Map<Integer, byte[]> before = operator(harness).storedBlocks(key);
        assertThat(before).hasSize((m1.tokens() + 31) / 32);
        assertThat(m1.tokens()).isGreaterThan(64);
        long writesBefore = operator(harness).kvBlocksWritten();

        harness.processElement2(new StreamRecord<>(turn("acme", "t2", "chat", " And what about patents?", 6)));
        drain(harness);
        ContextMeta m2 = operator(harness).storedMeta(key);
        Map<Integer, byte[]> after = operator(harness).storedBlocks(key);
        int firstDirty = m1.tokens() / 32;
        int last = (m2.tokens() - 1) / 32;
        assertThat(operator(harness).kvBlocksWritten() - writesBefore).isEqualTo(last - firstDirty + 1);
        for (int i = 0; i < firstDirty; i++) {
            assertThat(after.get(i)).as("sealed block %d unchanged", i).isEqualTo(before.get(i));
        }
        assertThat(after).hasSize(last + 1);
        assertThat(m2.tokenIds()).startsWith(m1.tokenIds());
        assertThat(m2.kvCacheMeta().codec().toString()).isEqualTo("int8/32");

        // and the answers are those of an engine run on the same (int8) cache
        Map<String, Generation> out = harness.extractOutputValues().stream()
                .collect(Collectors.toMap(Generation::getRequestId, g -> g));
        KvCache chat = ref.newCache();
        GenerationResult r1 = ref.run(chat, ref.tokenizer.encodePrompt(LONG_DOC), SamplingParams.greedy(6), true);
        GenerationResult r2 = ref.run(chat, ref.tokenizer.encode(" And what about patents?", false), SamplingParams.greedy(6), true);
        assertThat(out.get("t1").getTokenIds()).isEqualTo(Reference.ids(r1));
        assertThat(out.get("t2").getTokenIds()).isEqualTo(Reference.ids(r2));
        assertThat(m2.tokenIds()).containsExactly(chat.tokens());
    }

    @Test
    void contextReadyReportsStoredBytesAndTheCodecsCompression() throws Exception {
        harness = open(Reference.config());
        ingest(harness, part("acme", "doc", 0, true, LONG_DOC));
        ContextReady int8 = single(side(harness, OutputTags.CONTEXTS));
        assertThat(int8.getKvBytes()).isEqualTo(storedBytes(operator(harness), ContextKey.of("acme", "doc")));
        harness.close();

        harness = open(Reference.config().withKvState(KvStateConfig.defaults().withCodec("f32")));
        ingest(harness, part("acme", "doc", 0, true, LONG_DOC));
        ContextReady f32 = single(side(harness, OutputTags.CONTEXTS));
        assertThat(f32.getTokens()).isEqualTo(int8.getTokens());
        assertThat(f32.getCompressionRatio()).isBetween(0.45f, 0.5f);
        assertThat(int8.getCompressionRatio()).isBetween(1.4f, 1.8f);
        System.out.printf("ContextReady for %d tokens: int8 %d B, ratio %.3f; f32 %d B, ratio %.3f%n", int8.getTokens(),
                int8.getKvBytes(), int8.getCompressionRatio(), f32.getKvBytes(), f32.getCompressionRatio());
    }

    @Test
    void headPruningIsClassifiedDuringTheDocumentsPrefillAndKeptInItsState() throws Exception {
        KvStateConfig kv = KvStateConfig.defaults().withHeadPruning(true, 0.5, 1.0, 4, 16);
        harness = open(Reference.config().withKvState(kv));
        ingest(harness, part("acme", "doc", 0, true, LONG_DOC));
        HeadPolicy stored = operator(harness).storedMeta(ContextKey.of("acme", "doc")).kvCacheMeta().policy();
        assertThat(stored.streamingCount()).isPositive();

        KvCache expected = ref.newCache();
        expected.startHeadClassification(4, 16, ref.model.config());
        ref.engine.forward(expected, ref.tokenizer.encodePrompt(LONG_DOC));
        expected.applyHeadClassification(0.5, 1.0);
        assertThat(stored).isEqualTo(expected.headPolicy());

        harness.processElement2(new StreamRecord<>(askDocument("acme", "q", "doc", "Which license?", 6)));
        drain(harness);
        assertThat(single(harness.extractOutputValues()).getTokenIds())
                .isEqualTo(Reference.ids(ref.ask(expected, "Which license?", 6)));
    }

    @Test
    void aTenantBeyondItsCapGetsContextLimitAndExpiredContextsFreeTheirPlace() throws Exception {
        InferenceConfig config = Reference.config()
                .withKvState(KvStateConfig.defaults().withTenantMaxContexts(2).withTtlMillis(1_000));
        harness = open(config);
        ingest(harness, part("acme", "d1", 0, true, "First document."));
        harness.processElement2(new StreamRecord<>(turn("acme", "t1", "c1", "Hello", 2)));
        drain(harness);
        ingest(harness, part("acme", "d2", 0, true, "Second document."));
        harness.processElement2(new StreamRecord<>(turn("acme", "t2", "c2", "Hello", 2)));
        drain(harness);
        // existing contexts go on; another tenant has its own cap
        ingest(harness, part("acme", "d1", 0, true, "First document, again."));
        harness.processElement2(new StreamRecord<>(turn("acme", "t3", "c1", " More.", 2)));
        drain(harness);
        ingest(harness, part("other", "d2", 0, true, "Their document."));

        List<InferenceError> errors = side(harness, OutputTags.ERRORS);
        assertThat(errors).hasSize(2).allSatisfy(e -> {
            assertThat(e.getCode()).isEqualTo(ErrorCode.CONTEXT_LIMIT);
            assertThat(e.getTenant()).isEqualTo("acme");
            assertThat(e.getMessage()).contains("already holds 2 contexts").contains("moestream.tenant.max-contexts");
        });
        assertThat(errors.get(0).getContextId()).isEqualTo("d2");
        assertThat(errors.get(1).getRequestId()).isEqualTo("t2");
        assertThat(side(harness, OutputTags.CONTEXTS)).hasSize(3);
        assertThat(operator(harness).storedMeta(ContextKey.of("acme", "d2"))).isNull();

        // the count is rebuilt from state after a restore
        OperatorSubtaskState snapshot = harness.snapshot(1L, 10L);
        harness.close();
        harness = harness(config);
        harness.initializeState(snapshot);
        harness.open();
        harness.processElement2(new StreamRecord<>(turn("acme", "t4", "c3", "Hello", 2)));
        drain(harness);
        assertThat(single(side(harness, OutputTags.ERRORS)).getCode()).isEqualTo(ErrorCode.CONTEXT_LIMIT);

        // once the contexts expire (TTL), the tenant may start new ones
        harness.setStateTtlProcessingTime(10_000);
        harness.setProcessingTime(TenantContexts.RECOUNT_MILLIS + 1);
        assertThat(operator(harness).storedMeta(ContextKey.of("acme", "d1"))).isNull();
        harness.processElement2(new StreamRecord<>(turn("acme", "t5", "c3", "Hello", 2)));
        drain(harness);
        assertThat(harness.extractOutputValues()).extracting(Generation::getRequestId).contains("t5");
        assertThat(operator(harness).storedMeta(ContextKey.of("acme", "c3")).tokens()).isPositive();
    }

    // ---------------- helpers ----------------

    private static <T> T single(List<T> values) {
        assertThat(values).hasSize(1);
        return values.get(0);
    }
}
