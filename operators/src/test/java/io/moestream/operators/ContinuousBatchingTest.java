package io.moestream.operators;

import static io.moestream.operators.OperatorHarness.ingest;
import static io.moestream.operators.OperatorHarness.drain;
import static io.moestream.operators.OperatorHarness.harness;
import static io.moestream.operators.OperatorHarness.open;
import static io.moestream.operators.OperatorHarness.operator;
import static io.moestream.operators.OperatorHarness.runMail;
import static io.moestream.operators.OperatorHarness.side;

import static io.moestream.operators.TestRecords.askDocument;
import static io.moestream.operators.TestRecords.part;
import static io.moestream.operators.TestRecords.stateless;
import static io.moestream.operators.TestRecords.turn;
import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.schemas.Document;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Continuous batching of {@link InferenceOperator} on the task mailbox: steps interleave with
 * input, requests join and leave between steps, checkpoints between steps, fairness between
 * tenants, back-pressure, duplicates, the document size cap, one output per prompt, and metrics.
 * Each computed step comes back as one mail; the tests run mails by hand.
 */
class ContinuousBatchingTest {

    private static final String DOC = "The Apache License grants a copyright license to reproduce the Work. ";

    private final Reference ref = Reference.get();
    private KeyedTwoInputStreamOperatorTestHarness<String, Document, Prompt, Generation> harness;

    @AfterEach
    void closeHarness() throws Exception {
        if (harness != null) {
            harness.close();
        }
    }

    @Test
    void aNewRequestJoinsRunningStepsAndAShortRequestLeavesFirst() throws Exception {
        harness = open(Reference.config().withMaxSequences(4));
        harness.processElement2(new StreamRecord<>(stateless("t1", "long", "Hello world", 10)));
        assertThat(runMail(harness)).isTrue(); // launches step 1: prefill + first token
        assertThat(runMail(harness)).isTrue(); // step 1 done, step 2 (second token) launched
        assertThat(operator(harness).runningSequences()).isEqualTo(1);
        assertThat(harness.extractOutputValues()).isEmpty();

        harness.processElement2(new StreamRecord<>(stateless("t2", "short", "The license", 2)));
        assertThat(runMail(harness)).isTrue(); // step 2 done, step 3 launched, "short" admitted for step 4
        assertThat(operator(harness).runningSequences()).isEqualTo(2); // joined the running sequence
        assertThat(runMail(harness)).isTrue(); // step 3 done, step 4 launched: "short" prefilled beside "long"
        assertThat(runMail(harness)).isTrue(); // step 4 done, step 5 launched: its second token
        assertThat(harness.extractOutputValues()).isEmpty();
        assertThat(runMail(harness)).isTrue();
        // "short" is done after its second token and is emitted at once, while "long" still runs
        assertThat(harness.extractOutputValues()).extracting(Generation::getRequestId).containsExactly("short");
        assertThat(operator(harness).runningSequences()).isEqualTo(1);

        drain(harness);
        Map<String, Generation> out = byRequestId(harness.extractOutputValues());
        assertThat(out.get("long").getTokenIds()).isEqualTo(Reference.ids(ref.stateless("Hello world", 10)));
        assertThat(out.get("short").getTokenIds()).isEqualTo(Reference.ids(ref.stateless("The license", 2)));
    }

    @Test
    void theEngineThreadComputesTheNextStepWhileTheTaskThreadHandlesTheLast() throws Exception {
        harness = open(Reference.config().withMaxSequences(4));
        harness.processElement2(new StreamRecord<>(stateless("t1", "r", "Hello world", 10)));
        assertThat(runMail(harness)).isTrue(); // the engine thread is idle: this mail launches step 1
        // no mail runs now: the engine thread computes step 1, launches step 2 itself and computes it,
        // then waits for the task thread to hand over what it admitted while step 2 computed
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (operator(harness).stepsComputed() < 2 && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertThat(operator(harness).stepsComputed()).isEqualTo(2);
        Thread.sleep(200);
        assertThat(operator(harness).stepsComputed()).isEqualTo(2); // at most one step ahead of the task thread
        assertThat(harness.extractOutputValues()).isEmpty();

        drain(harness);
        assertThat(harness.extractOutputValues()).extracting(Generation::getTokenIds)
                .containsExactly(Reference.ids(ref.stateless("Hello world", 10)));
        assertThat(operator(harness).stepsComputed()).isEqualTo(operator(harness).metrics().steps.getCount());
    }

    @Test
    void aLongPromptIsPrefilledInChunksWhileOthersDecode() throws Exception {
        harness = open(Reference.config().withMaxSequences(2).withTokenBudget(5));
        String longText = "Licensed under the Apache License, Version 2.0, you may not use this file except in compliance";
        int promptTokens = ref.tokenizer.encodePrompt(longText).length;
        assertThat(promptTokens).isGreaterThan(12);
        harness.processElement2(new StreamRecord<>(stateless("t1", "decoding", "Hello", 12)));
        runMail(harness);
        harness.processElement2(new StreamRecord<>(stateless("t2", "chunked", longText, 3)));
        int steps = drain(harness) + 1;

        Map<String, Generation> out = byRequestId(harness.extractOutputValues());
        assertThat(out.get("chunked").getTokenIds()).isEqualTo(Reference.ids(ref.stateless(longText, 3)));
        assertThat(out.get("decoding").getTokenIds()).isEqualTo(Reference.ids(ref.stateless("Hello", 12)));
        assertThat(operator(harness).metrics().stepTokens.getStatistics().getMax()).isLessThanOrEqualTo(5);
        assertThat(steps).isGreaterThanOrEqualTo(promptTokens / 4); // at most 4 prefill tokens per step beside the decode
    }

    @Test
    void aCheckpointMidGenerationRestoresToTheSameOutputs() throws Exception {
        InferenceConfig config = Reference.config().withMaxSequences(4);
        harness = open(config);
        ingest(harness, part("acme", "doc", 0, true, DOC));
        Prompt seeded = Prompt.newBuilder(stateless("acme", "s1", "Permission is hereby granted", 8))
                .setTemperature(0.9f).setTopP(0.9f).build(); // seed from the request id
        harness.processElement2(new StreamRecord<>(seeded));
        harness.processElement2(new StreamRecord<>(askDocument("acme", "d1", "doc", "Which license?", 8)));
        harness.processElement2(new StreamRecord<>(turn("acme", "c1", "chat", "Hi there", 8)));
        harness.processElement2(new StreamRecord<>(stateless("acme", "quick", "Hello", 1)));
        runMail(harness);
        runMail(harness);
        runMail(harness);
        // "quick" is answered; the other three are mid-generation, a step of theirs being computed
        assertThat(harness.extractOutputValues()).extracting(Generation::getRequestId).containsExactly("quick");
        assertThat(operator(harness).runningSequences()).isEqualTo(3);
        assertThat(operator(harness).stepInFlight()).isTrue();

        OperatorSubtaskState snapshot = harness.snapshot(1L, 10L);
        drain(harness);
        Map<String, Generation> uninterrupted = byRequestId(harness.extractOutputValues());
        assertThat(uninterrupted).containsOnlyKeys("quick", "s1", "d1", "c1");
        harness.close();

        harness = harness(config);
        harness.initializeState(snapshot);
        harness.open();
        assertThat(operator(harness).pendingRequests()).isEqualTo(3);
        drain(harness);
        Map<String, Generation> restored = byRequestId(harness.extractOutputValues());
        assertThat(restored).containsOnlyKeys("s1", "d1", "c1"); // "quick" was answered before the checkpoint
        for (String id : List.of("s1", "d1", "c1")) {
            assertThat(restored.get(id).getTokenIds()).as(id).isEqualTo(uninterrupted.get(id).getTokenIds());
            assertThat(restored.get(id).getText()).as(id).isEqualTo(uninterrupted.get(id).getText());
        }
        KvCache chat = ref.newCache();
        ref.run(chat, ref.tokenizer.encodePrompt("Hi there"), SamplingParams.greedy(8), true);
        assertThat(operator(harness).storedMeta(ContextKey.of("acme", "chat")).tokens()).isEqualTo(chat.length());
    }

    @Test
    void aPlaceFreedByMaxTokensIsTakenInTheNextStep() throws Exception {
        harness = open(Reference.config().withMaxSequences(1));
        harness.processElement2(new StreamRecord<>(stateless("t1", "first", "Hello world", 3)));
        harness.processElement2(new StreamRecord<>(stateless("t1", "second", "The license", 3)));
        drain(harness);
        // "second" was admitted while "first" computed its last token, and joined the very next step:
        // 3 steps each (prefill + first token, two decode steps), none left empty
        assertThat(operator(harness).metrics().steps.getCount()).isEqualTo(6);
        assertThat(harness.extractOutputValues()).extracting(Generation::getRequestId).containsExactly("first", "second");
        assertThat(byRequestId(harness.extractOutputValues()).get("second").getTokenIds())
                .isEqualTo(Reference.ids(ref.stateless("The license", 3)));
    }

    @Test
    void theEndOfInputWhileAStepIsComputedAnswersEverything() throws Exception {
        harness = open(Reference.config());
        harness.processElement2(new StreamRecord<>(stateless("t1", "r", "Hello world", 8)));
        assertThat(runMail(harness)).isTrue();
        assertThat(operator(harness).stepInFlight()).isTrue();
        harness.close(); // finish() waits for the step in flight, then runs the rest on the task thread
        assertThat(harness.extractOutputValues()).extracting(Generation::getTokenIds)
                .containsExactly(Reference.ids(ref.stateless("Hello world", 8)));
        harness = null;
    }

    @Test
    void aTenantsFloodDoesNotStarveAnotherTenant() throws Exception {
        harness = open(Reference.config().withMaxSequences(4).withTenantShare(0.5).withMaxQueued(1000));
        for (int i = 0; i < 50; i++) {
            harness.processElement2(new StreamRecord<>(stateless("flood", "a" + i, "Hello number " + i, 8)));
        }
        runMail(harness); // tenant "flood" alone: it takes every place
        assertThat(operator(harness).runningSequences()).isEqualTo(4);
        harness.processElement2(new StreamRecord<>(stateless("quiet", "b", "The license", 8)));

        while (!byRequestId(harness.extractOutputValues()).containsKey("b")) {
            assertThat(runMail(harness)).isTrue();
        }
        // "b" got the first place that freed up (after 8 steps), ahead of 46 queued "flood" requests
        assertThat(operator(harness).metrics().steps.getCount()).isLessThanOrEqualTo(8 + 8);
        assertThat(harness.extractOutputValues()).hasSizeLessThanOrEqualTo(1 + 4 + 4);
        assertThat(byRequestId(harness.extractOutputValues()).get("b").getTokenIds())
                .isEqualTo(Reference.ids(ref.stateless("The license", 8)));
    }

    @Test
    void bothTenantsRunFromTheFirstStepWhenTheyArriveTogether() throws Exception {
        harness = open(Reference.config().withMaxSequences(4).withTenantShare(0.5).withMaxQueued(1000));
        for (int i = 0; i < 50; i++) {
            harness.processElement2(new StreamRecord<>(stateless("flood", "a" + i, "Hello number " + i, 8)));
        }
        harness.processElement2(new StreamRecord<>(stateless("quiet", "b", "The license", 8)));
        while (!byRequestId(harness.extractOutputValues()).containsKey("b")) {
            assertThat(runMail(harness)).isTrue();
        }
        // admitted in step 1: 1 prefill step + 7 decode steps at most
        assertThat(operator(harness).metrics().steps.getCount()).isLessThanOrEqualTo(8);
    }

    @Test
    void backPressureKeepsQueuedWorkWithinTheBoundWhenInputFarOutpacesTheEngine() throws Exception {
        int bound = 16;
        harness = open(Reference.config().withMaxSequences(4).withMaxQueued(bound));
        int n = 1000;
        for (int i = 0; i < n; i++) {
            // no mail is run by the test: processElement itself yields to the mailbox when the queue is full
            harness.processElement2(new StreamRecord<>(stateless("t" + (i % 3), "r" + i, "Hello number " + (i % 7), 2)));
            assertThat(operator(harness).pendingRequests()).isLessThanOrEqualTo(bound);
        }
        assertThat(operator(harness).maxPendingObserved()).isEqualTo(bound);
        assertThat(harness.extractOutputValues().size()).isGreaterThanOrEqualTo(n - bound);
        drain(harness);
        List<Generation> out = harness.extractOutputValues();
        assertThat(out).hasSize(n);
        assertThat(byRequestId(out)).hasSize(n);
        assertThat(errors()).isEmpty();
        assertThat(out.get(0).getTokenIds()).isEqualTo(Reference.ids(ref.stateless("Hello number 0", 2)));
    }

    @Test
    void aDuplicateRequestIdIsAnsweredOnceWithinTheWindow() throws Exception {
        harness = open(Reference.config().withDuplicateWindowMillis(1_000));
        harness.setProcessingTime(100);
        harness.processElement2(new StreamRecord<>(stateless("acme", "r1", "Hello world", 3)));
        harness.processElement2(new StreamRecord<>(stateless("acme", "r1", "Something else", 3)));
        harness.processElement2(new StreamRecord<>(turn("acme", "t1", "chat", "Hello", 3)));
        harness.setProcessingTime(600);
        harness.processElement2(new StreamRecord<>(turn("acme", "t1", "chat", "Hello again", 3)));
        drain(harness);

        List<InferenceError> errors = errors();
        assertThat(errors).hasSize(2).allSatisfy(e -> assertThat(e.getCode()).isEqualTo(ErrorCode.DUPLICATE_REQUEST));
        assertThat(errors.get(0).getRequestId()).isEqualTo("r1");
        assertThat(errors.get(0).getMessage()).contains("'r1'").contains("already received").contains("new id");
        assertThat(errors.get(1).getContextId()).isEqualTo("chat");
        Map<String, Generation> out = byRequestId(harness.extractOutputValues());
        assertThat(out).containsOnlyKeys("r1", "t1");
        assertThat(out.get("r1").getTokenIds()).isEqualTo(Reference.ids(ref.stateless("Hello world", 3)));

        harness.setProcessingTime(1_100); // the window of r1 has passed: the id may be used again
        harness.processElement2(new StreamRecord<>(stateless("acme", "r1", "Hello world", 3)));
        drain(harness);
        assertThat(harness.extractOutputValues()).hasSize(3);
        assertThat(errors()).hasSize(2);
    }

    @Test
    void aDocumentBeyondTheSizeCapIsRejectedAndOthersAreAnswered() throws Exception {
        int cap = ref.tokenizer.encodePrompt(DOC).length + 3;
        harness = open(Reference.config().withMaxDocumentTokens(cap));
        ingest(harness, part("acme", "big", 0, false, DOC));
        harness.processElement2(new StreamRecord<>(askDocument("acme", "q-big", "big", "Which license?", 4)));
        ingest(harness, part("acme", "big", 1, true, DOC));
        ingest(harness, part("acme", "small", 0, true, DOC));
        harness.processElement2(new StreamRecord<>(askDocument("acme", "q-small", "small", "Which license?", 4)));
        drain(harness);

        List<InferenceError> errors = errors();
        assertThat(errors).extracting(InferenceError::getCode)
                .containsExactly(ErrorCode.DOCUMENT_TOO_LARGE, ErrorCode.DOCUMENT_INCOMPLETE);
        assertThat(errors.get(0).getMessage()).contains("at most " + cap + " tokens")
                .contains("moestream.document.max-tokens").contains("split it");
        assertThat(errors.get(1).getRequestId()).isEqualTo("q-big");
        assertThat(operator(harness).storedCache(ContextKey.of("acme", "big"))).isNull();
        assertThat(single(harness.extractOutputValues()).getRequestId()).isEqualTo("q-small");
    }

    @Test
    void everyPromptGetsExactlyOneOutputInAMixedRun() throws Exception {
        harness = open(Reference.config().withMaxSequences(3).withMaxQueued(6).withDocumentWaitMillis(100));
        String tooLong = "zq ".repeat(ref.model.contextLength());
        List<Prompt> prompts = new ArrayList<>();
        ingest(harness, part("acme", "doc", 0, true, DOC));
        ingest(harness, part("other", "secret", 0, true, DOC));
        for (int i = 0; i < 12; i++) {
            prompts.add(stateless("acme", "s" + i, "Hello number " + i, 3));
            prompts.add(askDocument("acme", "d" + i, "doc", "Question " + i, 3));
            prompts.add(turn("acme", "c" + i, "chat", "Turn " + i, 3));
        }
        prompts.add(stateless("acme", "s1", "duplicate of s1", 3));   // DUPLICATE_REQUEST
        prompts.add(stateless("acme", "overflow", tooLong, 3));        // CONTEXT_OVERFLOW
        prompts.add(askDocument("acme", "unknown", "nope", "Hi", 3));  // UNKNOWN_CONTEXT after the wait
        prompts.add(askDocument("acme", "theirs", "secret", "Hi", 3)); // another tenant's document: UNKNOWN_CONTEXT
        prompts.add(turn("acme", "conv-on-doc", "doc", "Hi", 3));      // INVALID_PARAMS
        prompts.add(askDocument("acme", "doc-on-conv", "chat", "Hi", 3)); // UNKNOWN_CONTEXT (a conversation)
        for (Prompt p : prompts) {
            harness.processElement2(new StreamRecord<>(p));
        }
        drain(harness);
        harness.setProcessingTime(100);
        drain(harness);

        Map<String, Integer> answers = new HashMap<>();
        harness.extractOutputValues().forEach(g -> answers.merge(g.getRequestId(), 1, Integer::sum));
        errors().forEach(e -> answers.merge(e.getRequestId(), 1, Integer::sum));
        assertThat(answers.values().stream().mapToInt(Integer::intValue).sum()).isEqualTo(prompts.size());
        assertThat(answers).hasSize(prompts.size() - 1) // "s1" twice: its answer and the duplicate's error
                .allSatisfy((id, n) -> assertThat(n).as(id).isEqualTo(id.equals("s1") ? 2 : 1));
        Map<String, ErrorCode> codes = errors().stream().collect(Collectors.toMap(InferenceError::getRequestId,
                InferenceError::getCode));
        assertThat(codes).containsOnly(
                Map.entry("s1", ErrorCode.DUPLICATE_REQUEST),
                Map.entry("overflow", ErrorCode.CONTEXT_OVERFLOW),
                Map.entry("unknown", ErrorCode.UNKNOWN_CONTEXT),
                Map.entry("theirs", ErrorCode.UNKNOWN_CONTEXT),
                Map.entry("conv-on-doc", ErrorCode.INVALID_PARAMS),
                Map.entry("doc-on-conv", ErrorCode.UNKNOWN_CONTEXT));
        assertThat(operator(harness).maxPendingObserved()).isLessThanOrEqualTo(6);
        assertThat(operator(harness).pendingRequests()).isZero();

        // the valid traffic is unaffected: every conversation turn saw the one before it
        Map<String, Generation> out = byRequestId(harness.extractOutputValues());
        KvCache chat = ref.newCache();
        for (int i = 0; i < 12; i++) {
            int[] ids = i == 0 ? ref.tokenizer.encodePrompt("Turn 0") : ref.tokenizer.encode("Turn " + i, false);
            GenerationResult expected = ref.run(chat, ids, SamplingParams.greedy(3), true);
            assertThat(out.get("c" + i).getTokenIds()).as("c" + i).isEqualTo(Reference.ids(expected));
        }
        assertThat(out.get("d5").getTokenIds()).isEqualTo(Reference.ids(ref.ask(ref.document(DOC), "Question 5", 3)));
    }

    @Test
    void metricsFollowStepsTokensAnswersAndErrors() throws Exception {
        harness = open(Reference.config().withMaxSequences(4));
        ingest(harness, part("acme", "doc", 0, true, DOC));
        harness.processElement2(new StreamRecord<>(askDocument("acme", "d1", "doc", "Which license?", 4)));
        harness.processElement2(new StreamRecord<>(turn("acme", "c1", "chat", "Hello", 4)));
        harness.processElement2(new StreamRecord<>(stateless("acme", "s1", "Hello", 4)));
        harness.processElement2(new StreamRecord<>(stateless("acme", "s1", "again", 4)));
        drain(harness);

        InferenceMetrics m = operator(harness).metrics();
        List<Generation> out = harness.extractOutputValues();
        int documentTokens = ref.document(DOC).length();
        int promptTokens = out.stream().mapToInt(g -> g.getUsage().getPromptTokens()).sum();
        int generated = out.stream().mapToInt(g -> g.getUsage().getGeneratedTokens()).sum();
        assertThat(m.generations.getCount()).isEqualTo(3);
        assertThat(m.cacheHitTokens.getCount()).isEqualTo(documentTokens);
        assertThat(m.prefillTokens.getCount()).isEqualTo(documentTokens + promptTokens);
        // every generated token but each sequence's last is fed back, plus the conversation's final token
        assertThat(m.decodeTokens.getCount()).isEqualTo(generated - 3 + 1);
        assertThat(m.steps.getCount()).isEqualTo(m.stepTokens.getCount()).isPositive();
        assertThat(m.stepSequences.getStatistics().getMax()).isEqualTo(3);
        assertThat(m.ttft.getCount()).isEqualTo(3);
        assertThat(m.latency.getCount()).isEqualTo(3);
        assertThat(m.errorsTotal.getCount()).isEqualTo(1);
        assertThat(m.errors(ErrorCode.DUPLICATE_REQUEST)).isEqualTo(1);
        assertThat(m.contexts.getCount()).isEqualTo(1);
        long stored = ContextStateTest.storedBytes(operator(harness), ContextKey.of("acme", "doc"))
                + ContextStateTest.storedBytes(operator(harness), ContextKey.of("acme", "chat"));
        assertThat(operator(harness).kvStateBytes()).isEqualTo(stored);

        // a restore sums the same bytes from the contexts' metadata alone (format 3), not reading the blocks
        OperatorSubtaskState snapshot = harness.snapshot(1L, 10L);
        harness.close();
        harness = harness(Reference.config().withMaxSequences(4));
        harness.initializeState(snapshot);
        harness.open();
        assertThat(operator(harness).storedMeta(ContextKey.of("acme", "doc")).kvStateBytes()).isPositive();
        assertThat(operator(harness).kvStateBytes()).isEqualTo(stored);
    }

    // ---------------- helpers ----------------

    private List<InferenceError> errors() {
        return side(harness, OutputTags.ERRORS);
    }

    private static Map<String, Generation> byRequestId(List<Generation> generations) {
        return generations.stream().collect(Collectors.toMap(Generation::getRequestId, Function.identity()));
    }

    private static <T> T single(List<T> values) {
        assertThat(values).hasSize(1);
        return values.get(0);
    }
}
