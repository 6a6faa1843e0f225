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
import io.moestream.runtime.synthetic.SyntheticModels;
import io.moestream.schemas.ChatMessage;
import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Document;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Harness tests of {@link InferenceOperator}. Expected outputs come from an independent engine run
 * ({@link Reference}) on the same model, compared token by token.
 */
class InferenceOperatorTest {

    private static final String DOC = "The Apache License grants a copyright license to reproduce the Work. ";
    private static final String QUESTION = "Which license is granted?";

    private final Reference ref = Reference.get();
    private KeyedTwoInputStreamOperatorTestHarness<String, Document, Prompt, Generation> harness;

    @AfterEach
    void closeHarness() throws Exception {
        if (harness != null) {
            harness.close();
        }
    }

    @Test
    void requestsStartAtOnceAndRunTogetherInSteps() throws Exception {
        harness = open(Reference.config().withMaxSequences(3));
        String[] texts = {"Hello world", "The license", "Permission is granted"};

        harness.processElement2(new StreamRecord<>(stateless("t1", "r0", texts[0], 6)));
        harness.processElement2(new StreamRecord<>(stateless("t2", "r1", texts[1], 5)));
        harness.processElement2(new StreamRecord<>(stateless("t1", "r2", texts[2], 4)));
        assertThat(harness.extractOutputValues()).isEmpty(); // steps run on the mailbox, not inside processElement
        assertThat(operator(harness).pendingRequests()).isEqualTo(3);

        drain(harness);

        Map<String, Generation> out = byRequestId(harness.extractOutputValues());
        assertThat(out).containsOnlyKeys("r0", "r1", "r2");
        assertThat(operator(harness).pendingRequests()).isZero();
        // the three ran side by side: one prefill step + up to 5 decode steps
        assertThat(operator(harness).metrics().steps.getCount()).isLessThanOrEqualTo(6);
        assertThat(operator(harness).metrics().stepSequences.getStatistics().getMax()).isEqualTo(3);
        int[] maxTokens = {6, 5, 4};
        for (int i = 0; i < 3; i++) {
            GenerationResult expected = ref.stateless(texts[i], maxTokens[i]);
            Generation g = out.get("r" + i);
            assertThat(g.getTokenIds()).isNotEmpty().isEqualTo(Reference.ids(expected));
            assertThat(g.getText()).isEqualTo(expected.text());
            assertThat(g.getFinishReason().name()).isEqualTo(expected.finishReason().name());
            assertThat(g.getUsage().getPromptTokens()).isEqualTo(ref.tokenizer.encodePrompt(texts[i]).length);
            assertThat(g.getUsage().getCachedTokens()).isZero();
            assertThat(g.getUsage().getGeneratedTokens()).isEqualTo(expected.tokenIds().length);
            assertThat(g.getContextId()).isNull();
            assertThat(g.getModel()).isEqualTo(ref.model.name());
        }
        assertThat(errors()).isEmpty();
    }

    @Test
    void bufferedRequestsCompleteAfterSnapshotAndRestore() throws Exception {
        InferenceConfig config = Reference.config();
        harness = open(config);
        ingest(harness, part("acme", "doc", 0, true, DOC));
        harness.processElement2(new StreamRecord<>(stateless("acme", "s1", "Hello world", 5)));
        harness.processElement2(new StreamRecord<>(askDocument("acme", "d1", "doc", QUESTION, 5)));
        harness.processElement2(new StreamRecord<>(turn("acme", "c1", "chat", "Hi there", 5)));
        assertThat(harness.extractOutputValues()).isEmpty();

        OperatorSubtaskState snapshot = harness.snapshot(1L, 10L);
        harness.close();

        harness = harness(config);
        harness.initializeState(snapshot);
        harness.open();
        assertThat(operator(harness).pendingRequests()).isEqualTo(3);
        assertThat(harness.extractOutputValues()).isEmpty();

        drain(harness);
        Map<String, Generation> out = byRequestId(harness.extractOutputValues());
        assertThat(out).containsOnlyKeys("s1", "d1", "c1");

        assertThat(out.get("s1").getTokenIds()).isEqualTo(Reference.ids(ref.stateless("Hello world", 5)));
        KvCache document = ref.document(DOC);
        assertThat(out.get("d1").getTokenIds()).isEqualTo(Reference.ids(ref.ask(document, QUESTION, 5)));
        assertThat(out.get("d1").getUsage().getCachedTokens()).isEqualTo(document.length());
        KvCache chat = ref.newCache();
        GenerationResult turn1 = ref.run(chat, ref.tokenizer.encodePrompt("Hi there"), SamplingParams.greedy(5), true);
        assertThat(out.get("c1").getTokenIds()).isEqualTo(Reference.ids(turn1));
        assertThat(operator(harness).storedMeta(ContextKey.of("acme", "chat")).tokens()).isEqualTo(chat.length());
        assertThat(errors()).isEmpty();
    }

    @Test
    void documentPromptsReuseTheDocumentsCacheWithoutChangingIt() throws Exception {
        harness = open(Reference.config());
        ingest(harness, part("acme", "doc", 0, true, DOC));

        KvCache expectedDocument = ref.document(DOC);
        ContextReady ready = single(contexts());
        String key = ContextKey.of("acme", "doc");
        byte[] stored = operator(harness).storedCache(key);
        assertThat(ready.getTenant()).isEqualTo("acme");
        assertThat(ready.getContextId()).isEqualTo("doc");
        assertThat(ready.getTokens()).isEqualTo(expectedDocument.length());
        long kvBytes = ContextStateTest.storedBytes(operator(harness), key);
        assertThat(ready.getKvBytes()).isEqualTo(kvBytes);
        long fp16Bytes = 2L * ref.model.config().layers() * expectedDocument.length() * ref.model.config().kvDim() * 2;
        assertThat(ready.getCompressionRatio()).isEqualTo((float) fp16Bytes / kvBytes);
        assertThat(ref.model.cacheFromBytes(stored).tokens()).isEqualTo(expectedDocument.tokens());

        String otherQuestion = "May I redistribute it?";
        harness.processElement2(new StreamRecord<>(askDocument("acme", "q1", "doc", QUESTION, 6)));
        harness.processElement2(new StreamRecord<>(askDocument("acme", "q2", "doc", otherQuestion, 6)));
        drain(harness);

        Map<String, Generation> out = byRequestId(harness.extractOutputValues());
        assertThat(out).containsOnlyKeys("q1", "q2");
        assertThat(out.get("q1").getTokenIds()).isNotEmpty().isEqualTo(Reference.ids(ref.ask(expectedDocument, QUESTION, 6)));
        assertThat(out.get("q2").getTokenIds()).isEqualTo(Reference.ids(ref.ask(expectedDocument, otherQuestion, 6)));
        for (Generation g : out.values()) {
            assertThat(g.getContextId()).isEqualTo("doc");
            assertThat(g.getUsage().getCachedTokens()).isEqualTo(expectedDocument.length());
        }
        assertThat(out.get("q1").getUsage().getPromptTokens()).isEqualTo(ref.tokenizer.encode(QUESTION, false).length);
        assertThat(operator(harness).storedCache(key)).isEqualTo(stored);
        assertThat(operator(harness).storedMeta(key).tokens()).isEqualTo(expectedDocument.length());
    }

    @Test
    void documentPartsArePrefilledInOrderAndOutOfOrderPartsRejected() throws Exception {
        harness = open(Reference.config());
        String[] parts = {"Licensed under the Apache License. ", "You may not use this file ", "except in compliance."};

        ingest(harness, part("acme", "doc", 0, false, parts[0]));
        ingest(harness, part("acme", "doc", 2, true, parts[2]));
        ingest(harness, part("acme", "never-started", 1, true, parts[1]));
        assertThat(contexts()).isEmpty();
        List<InferenceError> errors = errors();
        assertThat(errors).hasSize(2).allSatisfy(e -> assertThat(e.getCode()).isEqualTo(ErrorCode.DOCUMENT_OUT_OF_ORDER));
        assertThat(errors.get(0).getContextId()).isEqualTo("doc");
        assertThat(errors.get(0).getMessage()).contains("part 1 is expected next");
        assertThat(errors.get(1).getContextId()).isEqualTo("never-started");
        assertThat(errors.get(1).getMessage()).contains("part 0");

        ingest(harness, part("acme", "doc", 1, false, parts[1]));
        ingest(harness, part("acme", "doc", 2, true, parts[2]));
        KvCache expected = ref.document(parts);
        assertThat(single(contexts()).getTokens()).isEqualTo(expected.length());
        assertThat(ref.model.cacheFromBytes(operator(harness).storedCache(ContextKey.of("acme", "doc"))).tokens())
                .isEqualTo(expected.tokens());

        ingest(harness, part("acme", "doc", 3, true, "late"));
        assertThat(errors()).hasSize(3);
        assertThat(errors().get(2).getMessage()).contains("after its last part");

        harness.processElement2(new StreamRecord<>(askDocument("acme", "q", "doc", QUESTION, 5)));
        drain(harness);
        Generation g = single(harness.extractOutputValues());
        assertThat(g.getTokenIds()).isEqualTo(Reference.ids(ref.ask(expected, QUESTION, 5)));
        assertThat(g.getUsage().getCachedTokens()).isEqualTo(expected.length());
    }

    @Test
    void conversationTurnsAppendPromptAndAnswerInOrder() throws Exception {
        harness = open(Reference.config());
        // both turns arrive before any step runs: turn 2 must still see turn 1
        harness.processElement2(new StreamRecord<>(turn("acme", "t1", "chat", "Hello, who are you?", 6)));
        harness.processElement2(new StreamRecord<>(turn("acme", "t2", "chat", " Tell me more.", 6)));
        runMail(harness);
        assertThat(operator(harness).runningSequences()).isEqualTo(1); // turn 2 waits for turn 1's answer
        drain(harness);
        List<Generation> generations = harness.extractOutputValues();
        assertThat(generations).extracting(Generation::getRequestId).containsExactly("t1", "t2");
        Map<String, Generation> out = byRequestId(generations);

        KvCache chat = ref.newCache();
        GenerationResult turn1 = ref.run(chat, ref.tokenizer.encodePrompt("Hello, who are you?"), SamplingParams.greedy(6), true);
        int afterTurn1 = chat.length();
        GenerationResult turn2 = ref.run(chat, ref.tokenizer.encode(" Tell me more.", false), SamplingParams.greedy(6), true);

        Generation g1 = out.get("t1");
        Generation g2 = out.get("t2");
        assertThat(g1.getTokenIds()).isEqualTo(Reference.ids(turn1));
        assertThat(g2.getTokenIds()).isNotEmpty().isEqualTo(Reference.ids(turn2));
        assertThat(g1.getTokenIds()).isNotEqualTo(g2.getTokenIds());
        assertThat(g1.getUsage().getCachedTokens()).isZero();
        int eosFed = g1.getFinishReason() == io.moestream.schemas.FinishReason.STOP ? 1 : 0;
        assertThat(g2.getUsage().getCachedTokens())
                .isEqualTo(afterTurn1)
                .isEqualTo(g1.getUsage().getPromptTokens() + g1.getUsage().getGeneratedTokens() + eosFed);
        ContextMeta meta = operator(harness).storedMeta(ContextKey.of("acme", "chat"));
        assertThat(meta.kind()).isEqualTo(ContextMeta.Kind.CONVERSATION);
        assertThat(meta.tokens()).isEqualTo(chat.length());
        assertThat(ref.model.cacheFromBytes(operator(harness).storedCache(ContextKey.of("acme", "chat"))).tokens())
                .isEqualTo(chat.tokens());
    }

    @Test
    void aTenantCannotReachAnotherTenantsDocument() throws Exception {
        harness = open(Reference.config());
        ingest(harness, part("tenant-a", "report", 0, true, DOC));
        byte[] documentOfA = operator(harness).storedCache(ContextKey.of("tenant-a", "report"));

        harness.processElement2(new StreamRecord<>(askDocument("tenant-b", "b1", "report", QUESTION, 5)));
        // tenant B's question waits for a document of tenant B, which never comes
        assertThat(errors()).isEmpty();
        harness.setProcessingTime(Reference.config().documentWaitMillis());
        InferenceError error = single(errors());
        assertThat(error.getCode()).isEqualTo(ErrorCode.UNKNOWN_CONTEXT);
        assertThat(error.getTenant()).isEqualTo("tenant-b");
        assertThat(error.getRequestId()).isEqualTo("b1");
        assertThat(error.getMessage()).contains("tenant-b").contains("report");
        assertThat(harness.extractOutputValues()).isEmpty();

        // a conversation of tenant B with the same id starts empty and leaves A's document alone
        harness.processElement2(new StreamRecord<>(turn("tenant-b", "b2", "report", "Hello", 5)));
        drain(harness);
        assertThat(single(harness.extractOutputValues()).getUsage().getCachedTokens()).isZero();
        assertThat(operator(harness).storedCache(ContextKey.of("tenant-a", "report"))).isEqualTo(documentOfA);

        harness.processElement2(new StreamRecord<>(askDocument("tenant-a", "a1", "report", QUESTION, 5)));
        drain(harness);
        Generation a1 = byRequestId(harness.extractOutputValues()).get("a1");
        assertThat(a1.getUsage().getCachedTokens()).isEqualTo(ref.document(DOC).length());
        assertThat(errors()).hasSize(1);
    }

    @Test
    void aPromptForAnIncompleteDocumentWaitsForItsLastPart() throws Exception {
        harness = open(Reference.config().withDocumentWaitMillis(1_000));
        ingest(harness, part("acme", "doc", 0, false, DOC));
        harness.processElement2(new StreamRecord<>(askDocument("acme", "q", "doc", QUESTION, 5)));
        harness.setProcessingTime(500);
        drain(harness);
        assertThat(harness.extractOutputValues()).isEmpty();
        assertThat(operator(harness).pendingRequests()).isZero();

        harness.processElement1(new StreamRecord<>(part("acme", "doc", 1, true, "The End.")));
        assertThat(runMail(harness)).isTrue(); // launches the step that prefills the last part
        harness.setProcessingTime(520);
        assertThat(runMail(harness)).isTrue(); // that step is done: the part is stored, the question released and admitted
        assertThat(contexts()).hasSize(1);
        drain(harness);
        Generation g = single(harness.extractOutputValues());
        KvCache document = ref.document(DOC, "The End.");
        assertThat(g.getUsage().getCachedTokens()).isEqualTo(document.length());
        assertThat(g.getTokenIds()).isEqualTo(Reference.ids(ref.ask(document, QUESTION, 5)));
        assertThat(g.getTimings().getQueuedMs()).isEqualTo(520);

        harness.setProcessingTime(5_000); // the cancelled wait timer must not answer it again
        assertThat(errors()).isEmpty();
    }

    @Test
    void aPromptForADocumentThatNeverCompletesGetsDocumentIncomplete() throws Exception {
        harness = open(Reference.config().withDocumentWaitMillis(100));
        ingest(harness, part("acme", "doc", 0, false, DOC));
        harness.processElement2(new StreamRecord<>(askDocument("acme", "q", "doc", QUESTION, 5)));
        harness.setProcessingTime(99);
        assertThat(errors()).isEmpty();
        harness.setProcessingTime(100);
        InferenceError error = single(errors());
        assertThat(error.getCode()).isEqualTo(ErrorCode.DOCUMENT_INCOMPLETE);
        assertThat(error.getRequestId()).isEqualTo("q");
        assertThat(error.getMessage()).contains("100 ms").contains("parts 0..0");
        assertThat(harness.extractOutputValues()).isEmpty();
    }

    @Test
    void chatMessagesNeedATemplateAndAreAnsweredAsTheirRendering() throws Exception {
        Prompt chat = Prompt.newBuilder(stateless("acme", "chat", "", 5))
                .setMessages(List.of(new ChatMessage("system", "Be brief."), new ChatMessage("user", "Hello world")))
                .build();
        harness = open(Reference.config());
        harness.processElement2(new StreamRecord<>(chat));
        drain(harness);
        InferenceError error = single(errors());
        assertThat(error.getCode()).isEqualTo(ErrorCode.INVALID_PARAMS);
        assertThat(error.getMessage()).contains("has no chat template", "moestream.chat-template.file");
        harness.close();

        harness = open(Reference.config().withChatTemplate(SyntheticModels.CHATML_TEMPLATE));
        harness.processElement2(new StreamRecord<>(chat));
        drain(harness);
        assertThat(errors()).isEmpty();
        String rendered = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello world<|im_end|>\n"
                + "<|im_start|>assistant\n";
        Generation g = single(harness.extractOutputValues());
        assertThat(g.getUsage().getPromptTokens()).isEqualTo(ref.tokenizer.encodePrompt(rendered).length);
        assertThat(g.getTokenIds()).isEqualTo(Reference.ids(ref.stateless(rendered, 5)));
    }

    @Test
    void unknownDocumentAndOverlongPromptAreAnsweredWithErrorsWithoutHurtingOthers() throws Exception {
        harness = open(Reference.config().withDocumentWaitMillis(50));
        harness.processElement2(new StreamRecord<>(askDocument("acme", "u", "no-such-doc", QUESTION, 5)));
        assertThat(errors()).isEmpty();
        harness.setProcessingTime(50);
        assertThat(single(errors()).getCode()).isEqualTo(ErrorCode.UNKNOWN_CONTEXT);

        String tooLong = "zq ".repeat(ref.model.contextLength());
        assertThat(ref.tokenizer.encodePrompt(tooLong).length).isGreaterThan(ref.model.contextLength());
        harness.processElement2(new StreamRecord<>(stateless("acme", "long", tooLong, 5)));
        harness.processElement2(new StreamRecord<>(stateless("acme", "ok", "Hello world", 5)));
        drain(harness);

        assertThat(errors()).hasSize(2);
        InferenceError overflow = errors().get(1);
        assertThat(overflow.getCode()).isEqualTo(ErrorCode.CONTEXT_OVERFLOW);
        assertThat(overflow.getRequestId()).isEqualTo("long");
        assertThat(overflow.getMessage()).contains(String.valueOf(ref.model.contextLength()));
        Generation ok = single(harness.extractOutputValues());
        assertThat(ok.getRequestId()).isEqualTo("ok");
        assertThat(ok.getTokenIds()).isEqualTo(Reference.ids(ref.stateless("Hello world", 5)));
    }

    @Test
    void samplingFollowsTheSeedAndAReplayWithoutSeedRegeneratesTheSameText() throws Exception {
        Prompt seeded = Prompt.newBuilder(stateless("acme", "seeded", "Permission is hereby granted", 8))
                .setTemperature(0.9f).setTopK(40).setTopP(0.95f).setSeed(7L).build();
        Prompt unseeded = Prompt.newBuilder(stateless("acme", "unseeded", "Permission is hereby granted", 8))
                .setTemperature(1.0f).build();
        harness = open(Reference.config());
        harness.processElement2(new StreamRecord<>(seeded));
        harness.processElement2(new StreamRecord<>(unseeded));
        drain(harness);
        Map<String, Generation> first = byRequestId(harness.extractOutputValues());

        GenerationResult expected = ref.run(ref.newCache(), ref.tokenizer.encodePrompt("Permission is hereby granted"),
                new SamplingParams(8, 0.9f, 40, 0.95f, 7L, List.of()), false);
        assertThat(first.get("seeded").getTokenIds()).isEqualTo(Reference.ids(expected));

        harness.close();
        harness = open(Reference.config());
        harness.processElement2(new StreamRecord<>(unseeded));
        drain(harness);
        assertThat(single(harness.extractOutputValues()).getTokenIds()).isEqualTo(first.get("unseeded").getTokenIds());
    }

    @Test
    void aRequestThatFailsIsAnsweredWithModelErrorAndTheOthersRun() throws Exception {
        harness = open(Reference.config());
        harness.processElement2(new StreamRecord<>(turn("acme", "t1", "chat", "Hello", 3)));
        harness.processElement2(new StreamRecord<>(stateless("acme", "warmup", "Hi", 3)));
        drain(harness);
        assertThat(harness.extractOutputValues()).hasSize(2);

        // the conversation's stored cache becomes unreadable (a damaged block)
        String chat = ContextKey.of("acme", "chat");
        byte[] block = operator(harness).storedBlocks(chat).get(0);
        operator(harness).putStoredBlock(chat, 0, Arrays.copyOf(block, block.length - 4));

        harness.processElement2(new StreamRecord<>(turn("acme", "t2", "chat", "Again", 3)));
        harness.processElement2(new StreamRecord<>(stateless("acme", "fine", "Hello world", 3)));
        drain(harness);

        InferenceError error = single(errors());
        assertThat(error.getCode()).isEqualTo(ErrorCode.MODEL_ERROR);
        assertThat(error.getRequestId()).isEqualTo("t2");
        assertThat(error.getMessage()).contains("KV block 0");
        Map<String, Generation> out = byRequestId(harness.extractOutputValues());
        assertThat(out).containsOnlyKeys("t1", "warmup", "fine");
        assertThat(out.get("fine").getTokenIds()).isEqualTo(Reference.ids(ref.stateless("Hello world", 3)));
    }

    // ---------------- helpers ----------------

    private List<InferenceError> errors() {
        return side(harness, OutputTags.ERRORS);
    }

    private List<ContextReady> contexts() {
        return side(harness, OutputTags.CONTEXTS);
    }

    private static Map<String, Generation> byRequestId(List<Generation> generations) {
        return generations.stream().collect(Collectors.toMap(g -> g.getRequestId(), Function.identity()));
    }

    private static <T> T single(List<T> values) {
        assertThat(values).hasSize(1);
        return values.get(0);
    }
}
