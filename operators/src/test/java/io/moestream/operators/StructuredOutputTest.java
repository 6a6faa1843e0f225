package io.moestream.operators;

import static io.moestream.operators.OperatorHarness.drain;
import static io.moestream.operators.OperatorHarness.open;
import static io.moestream.operators.OperatorHarness.side;
import static io.moestream.operators.TestRecords.stateless;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.InputFormat;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import io.moestream.schemas.Document;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.FinishReason;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.ResponseFormat;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Prompts with a {@code response_format} through the {@link InferenceOperator}: the answers are checked
 * with an independent JSON parser and JSON Schema validator (networknt), and a schema the compiler
 * refuses is answered with an error record, never with an unconstrained answer.
 */
class StructuredOutputTest {

    /** A finite language of at most 46 bytes: every answer completes, and so ends with STOP, within 64 tokens. */
    private static final String REVIEW = """
            {"type":"object","properties":{"sentiment":{"enum":["positive","negative"]},
              "rating":{"type":"integer","minimum":1,"maximum":5},"ok":{"type":"boolean"}},
             "required":["sentiment","rating","ok"]}""";

    private static final ObjectMapper STRICT = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private KeyedTwoInputStreamOperatorTestHarness<String, Document, Prompt, Generation> harness;

    @AfterEach
    void closeHarness() throws Exception {
        if (harness != null) {
            harness.close();
        }
    }

    @Test
    void aJsonSchemaPromptIsAnsweredWithValidJsonNextToOthersInTheSameSteps() throws Exception {
        harness = open(Reference.config().withMaxSequences(4));
        Prompt greedy = constrained("greedy", "The review says", ResponseFormat.newBuilder().setJsonSchema(REVIEW).build());
        Prompt sampled = Prompt.newBuilder(constrained("sampled", "Rate it:",
                ResponseFormat.newBuilder().setJsonSchema(REVIEW).build())).setTemperature(1.0f).setSeed(3L).build();
        Prompt choice = constrained("choice", "Is it mutable?",
                ResponseFormat.newBuilder().setChoices(List.of("yes", "no")).build());
        Prompt plain = stateless("acme", "plain", "Hello world", 5);
        for (Prompt p : List.of(greedy, sampled, choice, plain)) {
            harness.processElement2(new StreamRecord<>(p));
        }
        drain(harness);

        assertThat(errors()).isEmpty();
        Map<String, Generation> out = harness.extractOutputValues().stream()
                .collect(Collectors.toMap(Generation::getRequestId, Function.identity()));
        assertThat(out).containsOnlyKeys("greedy", "sampled", "choice", "plain");
        for (String id : List.of("greedy", "sampled")) {
            Generation g = out.get(id);
            assertThat(g.getFinishReason()).as(id).isEqualTo(FinishReason.STOP);
            assertThat(STRICT.readTree(g.getText())).as(g.getText()).isNotNull();
            assertThat(SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12).getSchema(REVIEW)
                    .validate(g.getText(), InputFormat.JSON)).as(g.getText()).isEmpty();
        }
        assertThat(out.get("choice").getFinishReason()).isEqualTo(FinishReason.STOP);
        assertThat(out.get("choice").getText()).isIn("yes", "no");
        assertThat(out.get("plain").getTokenIds())
                .isEqualTo(Reference.ids(Reference.get().stateless("Hello world", 5)));
    }

    @Test
    void aSchemaWithAnUnsupportedKeywordIsAnsweredWithAnErrorNamingIt() throws Exception {
        harness = open(Reference.config());
        String schema = "{\"type\":\"object\",\"properties\":{\"when\":{\"type\":\"string\",\"format\":\"date\"}}}";
        harness.processElement2(new StreamRecord<>(constrained("bad", "When?",
                ResponseFormat.newBuilder().setJsonSchema(schema).build())));
        harness.processElement2(new StreamRecord<>(constrained("bad-regex", "Which?",
                ResponseFormat.newBuilder().setRegex("(a)\\1").build())));
        harness.processElement2(new StreamRecord<>(stateless("acme", "ok", "Hello world", 5)));
        drain(harness);

        Map<String, InferenceError> errors = errors().stream()
                .collect(Collectors.toMap(InferenceError::getRequestId, Function.identity()));
        assertThat(errors).containsOnlyKeys("bad", "bad-regex");
        assertThat(errors.get("bad").getCode()).isEqualTo(ErrorCode.INVALID_PARAMS);
        assertThat(errors.get("bad").getMessage()).contains("response_format").contains("'format'");
        assertThat(errors.get("bad-regex").getCode()).isEqualTo(ErrorCode.INVALID_PARAMS);
        assertThat(harness.extractOutputValues()).extracting(Generation::getRequestId).containsExactly("ok");
    }

    @Test
    void aResponseFormatMustSetExactlyOneConstraint() {
        PromptValidator validator = new PromptValidator(64);
        assertThat(validator.problems(constrained("none", "Hi", ResponseFormat.newBuilder().build())))
                .singleElement().asString().contains("set exactly one");
        assertThat(validator.problems(constrained("two", "Hi",
                ResponseFormat.newBuilder().setRegex("a").setChoices(List.of("a")).build())))
                .singleElement().asString().contains("sets 2 of");
        assertThat(validator.problems(constrained("one", "Hi", ResponseFormat.newBuilder().setRegex("a+").build())))
                .isEmpty();
    }

    private static Prompt constrained(String id, String text, ResponseFormat format) {
        return Prompt.newBuilder(stateless("acme", id, text, 64)).setResponseFormat(format).build();
    }

    private List<InferenceError> errors() {
        return side(harness, OutputTags.ERRORS);
    }
}
