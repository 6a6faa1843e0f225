package io.moestream.operators;

import static io.moestream.operators.TestRecords.askDocument;
import static io.moestream.operators.TestRecords.part;
import static io.moestream.operators.TestRecords.stateless;
import static io.moestream.operators.TestRecords.turn;
import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.ChatMessage;
import io.moestream.schemas.Document;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.FinishReason;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.Timings;
import io.moestream.schemas.Usage;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.UnaryOperator;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.avro.specific.SpecificRecordBase;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.streaming.util.ProcessFunctionTestHarnesses;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class AvroDecodeFunctionTest {

    private static final int CAP = 256;
    private static final AvroCodec<Prompt> PROMPTS = AvroCodec.forPrompt();
    private static final AvroCodec<Document> DOCUMENTS = AvroCodec.forDocument();

    @Test
    void validRecordsPassThroughUnchanged() throws Exception {
        Prompt prompt = Prompt.newBuilder(turn("acme", "r1", "chat", "Hello", 16)).setTemperature(0.7f)
                .setTopK(20).setTopP(0.9f).setSeed(3L).setStop(List.of("\n")).build();
        Decoded<Prompt> p = decode(AvroDecodeFunction.prompts(CAP), RawRecord.of(PROMPTS.encode(prompt)));
        assertThat(p.values).containsExactly(prompt);
        assertThat(p.errors).isEmpty();

        Document document = part("acme", "doc", 3, false, "");
        Decoded<Document> d = decode(AvroDecodeFunction.documents(), RawRecord.of(DOCUMENTS.encode(document)));
        assertThat(d.values).containsExactly(document);
        assertThat(d.errors).isEmpty();
    }

    @Test
    void malformedBytesBecomeOneErrorWithRawBytesAndSource() throws Exception {
        byte[] json = "{\"request_id\": \"r1\"}".getBytes(StandardCharsets.UTF_8);
        Decoded<Prompt> p = decode(AvroDecodeFunction.prompts(CAP), new RawRecord("prompts", 2, 41L, json));
        assertThat(p.values).isEmpty();
        InferenceError error = single(p.errors);
        assertThat(error.getCode()).isEqualTo(ErrorCode.MALFORMED_RECORD);
        assertThat(error.getMessage()).contains("single-object").contains("JSON");
        assertThat(error.getRaw().array()).isEqualTo(json);
        assertThat(error.getSourceTopic()).isEqualTo("prompts");
        assertThat(error.getSourcePartition()).isEqualTo(2);
        assertThat(error.getSourceOffset()).isEqualTo(41L);
        assertThat(error.getRequestId()).isNull();
    }

    @Test
    void truncatedRecordAndRecordOfAnotherTypeAreMalformed() throws Exception {
        byte[] good = PROMPTS.encode(stateless("acme", "r1", "Hello", 8));
        byte[] truncated = java.util.Arrays.copyOf(good, good.length - 3);
        Decoded<Prompt> p = decode(AvroDecodeFunction.prompts(CAP), RawRecord.of(truncated));
        assertThat(single(p.errors).getCode()).isEqualTo(ErrorCode.MALFORMED_RECORD);
        assertThat(p.errors.get(0).getSourceTopic()).isNull();

        Decoded<Document> d = decode(AvroDecodeFunction.documents(), RawRecord.of(good));
        InferenceError error = single(d.errors);
        assertThat(error.getCode()).isEqualTo(ErrorCode.MALFORMED_RECORD);
        assertThat(error.getMessage()).contains("Prompt"); // names the type it was written as
        assertThat(d.values).isEmpty();
    }

    @Test
    void aRecordOfAnotherSchemaNamesItsFingerprintAndTheLikelyWrongTopic() throws Exception {
        Generation generation = Generation.newBuilder()
                .setRequestId("r1").setTenant("acme").setContextId(null).setText("hi").setTokenIds(List.of(1, 2))
                .setFinishReason(FinishReason.STOP)
                .setUsage(Usage.newBuilder().setPromptTokens(1).setCachedTokens(0).setGeneratedTokens(2).build())
                .setTimings(Timings.newBuilder().setQueuedMs(0).setPrefillMs(0).setDecodeMs(0).build())
                .setModel("m").build();
        byte[] bytes = AvroCodec.forGeneration().encode(generation);
        Decoded<Prompt> p = decode(AvroDecodeFunction.prompts(CAP), new RawRecord("moe.prompts", 1, 9L, bytes));
        InferenceError error = single(p.errors);
        assertThat(error.getCode()).isEqualTo(ErrorCode.MALFORMED_RECORD);
        assertThat(error.getMessage()).contains("unknown schema fingerprint").contains("Generation")
                .contains("wrong topic");
        assertThat(error.getRaw().array()).isEqualTo(bytes);
        assertThat(error.getSourceOffset()).isEqualTo(9L);
        assertThat(p.values).isEmpty();
    }

    @Test
    void emptyAndNullPayloadsAreMalformed() throws Exception {
        assertThat(single(decode(AvroDecodeFunction.prompts(CAP), RawRecord.of(new byte[0])).errors).getMessage())
                .contains("empty payload");
        assertThat(single(decode(AvroDecodeFunction.prompts(CAP), RawRecord.of(null)).errors).getCode())
                .isEqualTo(ErrorCode.MALFORMED_RECORD);
    }

    static Stream<Arguments> invalidPrompts() {
        return Stream.of(
                invalid("empty text", p -> p.setText(""), "text and messages are empty"),
                invalid("text and messages", p -> p.setMessages(List.of(new ChatMessage("user", "Hi"))), "not both"),
                invalid("unknown role", p -> p.setText("").setMessages(List.of(new ChatMessage("user", "Hi"),
                        new ChatMessage("narrator", "Once"))), "messages[1].role is 'narrator'"),
                invalid("max_tokens 0", p -> p.setMaxTokens(0), "max_tokens is 0"),
                invalid("negative max_tokens", p -> p.setMaxTokens(-5), "max_tokens is -5"),
                invalid("temperature above 2", p -> p.setTemperature(2.5f), "temperature is 2.5"),
                invalid("top_p above 1", p -> p.setTopP(1.5f), "top_p is 1.5"),
                invalid("missing tenant", p -> p.setTenant(""), "tenant is empty"),
                invalid("max_tokens above cap", p -> p.setMaxTokens(CAP + 1), "between 1 and " + CAP),
                invalid("temperature NaN", p -> p.setTemperature(Float.NaN), "temperature is NaN"),
                invalid("negative temperature", p -> p.setTemperature(-0.5f), "temperature is -0.5"),
                invalid("top_p 0", p -> p.setTopP(0f), "top_p is 0.0"),
                invalid("top_p NaN", p -> p.setTopP(Float.NaN), "top_p is NaN"),
                invalid("negative top_k", p -> p.setTopK(-1), "top_k is -1"),
                invalid("document without context", p -> p.setMode(io.moestream.schemas.PromptMode.DOCUMENT),
                        "DOCUMENT prompt needs"),
                invalid("conversation without context", p -> p.setMode(io.moestream.schemas.PromptMode.CONVERSATION),
                        "CONVERSATION prompt needs"),
                invalid("stateless with context", p -> p.setContextId("doc"), "mode is STATELESS"),
                invalid("blank request id", p -> p.setRequestId(" "), "request_id is empty"),
                invalid("tenant with separator", p -> p.setTenant("a\u0000b"), "U+0000"),
                invalid("empty stop sequence", p -> p.setStop(List.of("x", "")), "stop sequence #1 is empty"));
    }

    private static Arguments invalid(String name, UnaryOperator<Prompt.Builder> change, String expectedMessage) {
        return Arguments.of(name, change, expectedMessage);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("invalidPrompts")
    void invalidPromptBecomesOneInvalidParamsError(String name, UnaryOperator<Prompt.Builder> change, String expected)
            throws Exception {
        Prompt prompt = change.apply(Prompt.newBuilder(stateless("acme", "r1", "Hello", 16))).build();
        Decoded<Prompt> p = decode(AvroDecodeFunction.prompts(CAP), new RawRecord("prompts", 0, 7L, PROMPTS.encode(prompt)));
        assertThat(p.values).isEmpty();
        InferenceError error = single(p.errors);
        assertThat(error.getCode()).isEqualTo(ErrorCode.INVALID_PARAMS);
        assertThat(error.getMessage()).startsWith("invalid Prompt: ").contains(expected);
        assertThat(error.getRequestId()).isEqualTo(prompt.getRequestId());
        assertThat(error.getSourceOffset()).isEqualTo(7L);
        assertThat(error.getRaw()).isNull();
    }

    @Test
    void everyProblemOfAPromptIsListedInItsOneError() throws Exception {
        Prompt prompt = Prompt.newBuilder(askDocument("acme", "r1", "doc", "", 0)).setContextId(null)
                .setTemperature(Float.NaN).build();
        Decoded<Prompt> p = decode(AvroDecodeFunction.prompts(CAP), RawRecord.of(PROMPTS.encode(prompt)));
        InferenceError error = single(p.errors);
        assertThat(error.getMessage()).contains("text and messages are empty", "max_tokens is 0", "temperature is NaN", "context_id");
        assertThat(error.getContextId()).isNull();
    }

    @Test
    void invalidDocumentPartsAreRejected() throws Exception {
        Decoded<Document> negative = decode(AvroDecodeFunction.documents(),
                RawRecord.of(DOCUMENTS.encode(part("acme", "doc", -1, false, "text"))));
        InferenceError error = single(negative.errors);
        assertThat(error.getCode()).isEqualTo(ErrorCode.INVALID_PARAMS);
        assertThat(error.getMessage()).contains("part is -1");
        assertThat(error.getContextId()).isEqualTo("doc");
        assertThat(error.getTenant()).isEqualTo("acme");

        Decoded<Document> empty = decode(AvroDecodeFunction.documents(),
                RawRecord.of(DOCUMENTS.encode(part("acme", "", 0, true, ""))));
        assertThat(single(empty.errors).getMessage()).contains("document_id is empty", "document would be empty");
    }

    @Test
    void everyErrorRecordIsCountedInTheProgressLine() throws Exception {
        long before = ProgressStats.snapshot().errors();
        decode(AvroDecodeFunction.prompts(CAP), RawRecord.of("not avro".getBytes(StandardCharsets.UTF_8)));
        decode(AvroDecodeFunction.prompts(CAP), RawRecord.of(PROMPTS.encode(stateless("acme", "r1", "", 8))));
        decode(AvroDecodeFunction.documents(), RawRecord.of(null));
        decode(AvroDecodeFunction.prompts(CAP), RawRecord.of(PROMPTS.encode(stateless("acme", "r2", "Hello", 8))));
        assertThat(ProgressStats.snapshot().errors() - before).as("malformed, invalid, malformed; the valid one not").isEqualTo(3);
    }

    // ---------------- helpers ----------------

    private record Decoded<T>(List<T> values, List<InferenceError> errors) {}

    private static <T extends SpecificRecordBase> Decoded<T> decode(AvroDecodeFunction<T> function, RawRecord raw)
            throws Exception {
        try (OneInputStreamOperatorTestHarness<RawRecord, T> harness = ProcessFunctionTestHarnesses.forProcessFunction(function)) {
            harness.processElement(new StreamRecord<>(raw));
            var errors = harness.getSideOutput(OutputTags.ERRORS);
            return new Decoded<>(harness.extractOutputValues(), errors == null ? List.of()
                    : errors.stream().map(StreamRecord::getValue).collect(Collectors.toList()));
        }
    }

    private static <T> T single(List<T> values) {
        assertThat(values).hasSize(1);
        return values.get(0);
    }
}
