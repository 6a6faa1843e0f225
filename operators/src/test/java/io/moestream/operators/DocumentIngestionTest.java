package io.moestream.operators;

import static io.moestream.operators.OperatorHarness.drain;
import static io.moestream.operators.OperatorHarness.harness;
import static io.moestream.operators.OperatorHarness.open;
import static io.moestream.operators.OperatorHarness.operator;
import static io.moestream.operators.OperatorHarness.runMail;
import static io.moestream.operators.OperatorHarness.side;
import static io.moestream.operators.TestRecords.askDocument;
import static io.moestream.operators.TestRecords.part;
import static io.moestream.operators.TestRecords.stateless;
import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.model.KvCache;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Document;
import io.moestream.schemas.Generation;
import io.moestream.schemas.Prompt;
import java.util.List;
import java.util.Map;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Documents go through the step loop: a long document is prefilled in chunks inside the scheduled
 * steps (each a mailbox action of at most the token budget), so another tenant's prompt sent during
 * the ingestion is answered within a few steps, and a checkpoint taken during the ingestion restores
 * to the same document.
 */
class DocumentIngestionTest {

    private static final int BUDGET = 16;
    private static final String LONG_DOC = ("The Apache License grants a copyright license to reproduce the Work, to"
            + " prepare derivative works, to publicly display and perform, and to distribute the Work. ").repeat(5);
    private static final String QUESTION = "Which license?";

    private final Reference ref = Reference.get();
    private KeyedTwoInputStreamOperatorTestHarness<String, Document, Prompt, Generation> harness;

    @AfterEach
    void closeHarness() throws Exception {
        if (harness != null) {
            harness.close();
        }
    }

    private static InferenceConfig config() {
        return Reference.config().withMaxSequences(4).withTokenBudget(BUDGET).withTenantShare(0.5);
    }

    @Test
    void anotherTenantsPromptIsAnsweredWithinAFewStepsWhileALongDocumentIsIngested() throws Exception {
        int documentTokens = ref.tokenizer.encodePrompt(LONG_DOC).length;
        assertThat(documentTokens).isGreaterThan(8 * BUDGET);
        harness = open(config());
        harness.processElement1(new StreamRecord<>(part("big", "doc", 0, true, LONG_DOC)));
        assertThat(side(harness, OutputTags.CONTEXTS)).isEmpty(); // arrival only queues the part
        for (int i = 0; i < 3; i++) {
            assertThat(runMail(harness)).isTrue();
        }
        harness.processElement2(new StreamRecord<>(stateless("small", "s1", "Hello world", 1)));
        long before = operator(harness).metrics().steps.getCount();
        while (harness.extractOutputValues().isEmpty()) {
            assertThat(runMail(harness)).isTrue();
        }
        // its first (and only) token came in the step after the one computing when it arrived (admitted while
        // the next computed), the document still being ingested
        assertThat(operator(harness).metrics().steps.getCount() - before).isLessThanOrEqualTo(3);
        assertThat(side(harness, OutputTags.CONTEXTS)).isEmpty();
        assertThat(harness.extractOutputValues().get(0).getTokenIds()).isEqualTo(Reference.ids(ref.stateless("Hello world", 1)));

        drain(harness);
        // no step took more than its budget
        assertThat(operator(harness).metrics().steps.getCount()).isGreaterThanOrEqualTo(documentTokens / BUDGET);
        assertThat(operator(harness).metrics().stepTokens.getStatistics().getMax()).isLessThanOrEqualTo(BUDGET);
        ContextReady ready = side(harness, OutputTags.CONTEXTS).get(0);
        assertThat(ready.getTokens()).isEqualTo(documentTokens);

        // the document prefilled in chunks is the document prefilled at once, position for position
        KvCache expected = ref.document(LONG_DOC);
        harness.processElement2(new StreamRecord<>(askDocument("big", "q", "doc", QUESTION, 6)));
        drain(harness);
        Generation answer = harness.extractOutputValues().get(1);
        assertThat(answer.getTokenIds()).isEqualTo(Reference.ids(ref.ask(expected, QUESTION, 6)));
        assertThat(answer.getUsage().getCachedTokens()).isEqualTo(documentTokens);
    }

    @Test
    void aCheckpointDuringTheIngestionRestoresAndTheDocumentCompletes() throws Exception {
        harness = open(config());
        String second = "Licensed under the Apache License, Version 2.0. ";
        harness.processElement1(new StreamRecord<>(part("big", "doc", 0, false, LONG_DOC)));
        harness.processElement1(new StreamRecord<>(part("big", "doc", 1, true, second)));
        harness.processElement2(new StreamRecord<>(askDocument("big", "q", "doc", QUESTION, 6)));
        for (int i = 0; i < 4; i++) {
            assertThat(runMail(harness)).isTrue();
        }
        assertThat(side(harness, OutputTags.CONTEXTS)).isEmpty(); // mid-way through part 0
        OperatorSubtaskState snapshot = harness.snapshot(1L, 10L);
        drain(harness);
        Generation uninterrupted = harness.extractOutputValues().get(0);
        Map<Integer, byte[]> blocks = operator(harness).storedBlocks(ContextKey.of("big", "doc"));
        harness.close();

        harness = harness(config());
        harness.initializeState(snapshot);
        harness.open();
        assertThat(operator(harness).pendingRequests()).isEqualTo(2); // the part in flight and the part queued
        drain(harness);
        List<ContextReady> ready = side(harness, OutputTags.CONTEXTS);
        assertThat(ready).hasSize(1);
        assertThat(ready.get(0).getTokens()).isEqualTo(ref.document(LONG_DOC, second).length());
        Generation restored = harness.extractOutputValues().get(0);
        assertThat(restored.getTokenIds()).isEqualTo(uninterrupted.getTokenIds());
        assertThat(restored.getTokenIds()).isEqualTo(Reference.ids(ref.ask(ref.document(LONG_DOC, second), QUESTION, 6)));
        Map<Integer, byte[]> restoredBlocks = operator(harness).storedBlocks(ContextKey.of("big", "doc"));
        assertThat(restoredBlocks.keySet()).isEqualTo(blocks.keySet());
        blocks.forEach((i, b) -> assertThat(restoredBlocks.get(i)).as("block %d", i).isEqualTo(b));
    }
}
