package io.moestream.schemas;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.avro.specific.SpecificRecord;
import org.junit.jupiter.api.Test;

class JsonAvroTest {

    @Test
    void roundTripsEveryRecordType() {
        for (Object value : Fixtures.all()) {
            SpecificRecord record = (SpecificRecord) value;
            String json = JsonAvro.toJson(record);

            assertThat(json).doesNotContain("\n");
            assertThat(JsonAvro.fromJson(json, record.getSchema())).isEqualTo(record);
        }
    }

    @Test
    void writesPlainJson() {
        String json = JsonAvro.toJson(Fixtures.prompt());

        assertThat(json).isEqualTo("{\"request_id\":\"req-1\",\"tenant\":\"acme\",\"context_id\":\"doc-1\","
                + "\"mode\":\"DOCUMENT\",\"text\":\"Summarize.\",\"max_tokens\":10,\"temperature\":0.7,\"top_k\":40,"
                + "\"top_p\":0.9,\"seed\":42,\"stop\":[\"\\n\\n\",\"END\"],\"messages\":[],\"chat_template_kwargs\":{},"
                + "\"response_format\":null}");
        assertThat(JsonAvro.toJson(Fixtures.error())).contains("\"raw\":\"eyJ4IjoxfQ==\"", "\"request_id\":null");
    }

    @Test
    void omittedOptionalFieldsTakeDefaults() {
        Prompt prompt = JsonAvro.fromJson("{\"request_id\":\"r1\",\"tenant\":\"acme\",\"text\":\"Hi\"}", Prompt.class);

        assertThat(prompt.getContextId()).isNull();
        assertThat(prompt.getMode()).isEqualTo(PromptMode.STATELESS);
        assertThat(prompt.getMaxTokens()).isEqualTo(64);
        assertThat(prompt.getTopP()).isEqualTo(1.0f);
        assertThat(prompt.getSeed()).isNull();
        assertThat(prompt.getStop()).isEmpty();
        prompt.getStop().add("x"); // defaults are copies, not Avro's shared cached value
        assertThat(JsonAvro.fromJson("{\"request_id\":\"r2\",\"tenant\":\"a\",\"text\":\"\"}", Prompt.class).getStop())
                .isEmpty();

        Document document = JsonAvro.fromJson("{\"tenant\":\"acme\",\"document_id\":\"d\",\"text\":\"T\"}", Document.class);
        assertThat(document.getPart()).isZero();
        assertThat(document.getLast()).isTrue();
    }

    @Test
    void nullableUnionsTakePlainValues() {
        Prompt prompt = JsonAvro.fromJson("{\"request_id\":\"r1\",\"tenant\":\"a\",\"text\":\"t\","
                + "\"context_id\":\"c\",\"seed\":7}", Prompt.class);
        assertThat(prompt.getContextId()).isEqualTo("c");
        assertThat(prompt.getSeed()).isEqualTo(7L);

        InferenceError error = JsonAvro.fromJson("{\"message\":\"m\",\"code\":\"MODEL_ERROR\",\"raw\":\"AAEC\","
                + "\"source_partition\":null}", InferenceError.class);
        assertThat(error.getRaw()).isEqualTo(ByteBuffer.wrap(new byte[] {0, 1, 2}));
        assertThat(error.getSourcePartition()).isNull();
    }

    @Test
    void badValuesNameTheField() {
        assertThatThrownBy(() -> prompt("\"max_tokens\":\"ten\""))
                .isInstanceOf(MalformedRecordException.class)
                .hasMessage("field 'max_tokens' must be an int, got \"ten\"");
        assertThatThrownBy(() -> prompt("\"max_tokens\":1.5")).hasMessage("field 'max_tokens' must be an int, got 1.5");
        assertThatThrownBy(() -> prompt("\"max_tokens\":3000000000"))
                .hasMessage("field 'max_tokens' must be an int, got 3000000000");
        assertThatThrownBy(() -> prompt("\"mode\":\"CHAT\""))
                .hasMessage("field 'mode' must be one of STATELESS, DOCUMENT, CONVERSATION, got \"CHAT\"");
        assertThatThrownBy(() -> prompt("\"seed\":\"x\"")).hasMessage("field 'seed' must be a long, got \"x\"");
        assertThatThrownBy(() -> prompt("\"stop\":[\"a\",3]")).hasMessage("field 'stop[1]' must be a string, got 3");
        assertThatThrownBy(() -> prompt("\"tenant\":null")).hasMessage("field 'tenant' must be a string, got null");
        assertThatThrownBy(() -> prompt("\"temprature\":0.5"))
                .hasMessageStartingWith("unknown field 'temprature' (Prompt has request_id, tenant, context_id,");
        assertThatThrownBy(() -> JsonAvro.fromJson("{\"message\":\"m\",\"code\":\"INTERNAL\",\"raw\":\"***\"}", InferenceError.class))
                .hasMessageStartingWith("field 'raw' must be base64");
        assertThatThrownBy(() -> JsonAvro.fromJson("{\"request_id\":\"r\",\"tenant\":\"a\",\"text\":\"t\","
                + "\"model\":\"m\",\"finish_reason\":\"STOP\",\"usage\":{\"prompt_tokens\":1,\"cached_tokens\":0},"
                + "\"timings\":{\"queued_ms\":1,\"prefill_ms\":1,\"decode_ms\":1}}", Generation.class))
                .hasMessage("missing required field 'usage.generated_tokens'");
    }

    @Test
    void missingRequiredFieldAndNonObjects() {
        assertThatThrownBy(() -> JsonAvro.fromJson("{\"request_id\":\"r1\",\"text\":\"Hi\"}", Prompt.class))
                .isInstanceOf(MalformedRecordException.class)
                .hasMessage("missing required field 'tenant'");
        assertThatThrownBy(() -> JsonAvro.fromJson("[1,2]", Prompt.class))
                .hasMessageStartingWith("expected a JSON object with the fields of Prompt (request_id, tenant,");
        assertThatThrownBy(() -> JsonAvro.fromJson("{\"request_id\":", Prompt.class))
                .hasMessageStartingWith("not valid JSON:");
    }

    @Test
    void jsonAndCodecAgree() {
        String line = "{\"tenant\":\"acme\",\"document_id\":\"d1\",\"text\":\"Grüße\"}";
        AvroCodec<Document> codec = AvroCodec.forDocument();

        Document decoded = codec.decode(codec.encode(JsonAvro.fromJson(line, Document.class)));

        assertThat(JsonAvro.toJson(decoded))
                .isEqualTo("{\"tenant\":\"acme\",\"document_id\":\"d1\",\"part\":0,\"last\":true,\"text\":\"Grüße\"}");
        assertThat(line.getBytes(StandardCharsets.UTF_8)).isNotEmpty();
    }

    private static Prompt prompt(String extra) {
        return JsonAvro.fromJson("{\"request_id\":\"r1\",\"tenant\":\"acme\",\"text\":\"Hi\"," + extra + "}", Prompt.class);
    }
}
