package io.moestream.schemas;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityType;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageEncoder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/**
 * The current schemas must read everything written with the frozen baseline in
 * {@code src/test/resources/compat/v1} (backward compatibility). When a schema changes, this test
 * says whether old records on the topics stay readable; the baseline only moves when a release
 * freezes a new one (copy the schemas to {@code compat/v2} and add it here).
 */
class SchemaEvolutionTest {

    private static final List<String> BASELINES = List.of("v1");

    static Schema resource(String path) {
        try (InputStream in = SchemaEvolutionTest.class.getResourceAsStream(path)) {
            assertThat(in).as(path).isNotNull();
            return new Schema.Parser().parse(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Schema olderPrompt() {
        return resource("/compat/older/Prompt.avsc");
    }

    /** A Prompt written with {@link #olderPrompt()} by a plain Avro producer (no generated class). */
    static byte[] writeWithOlderPrompt() {
        Schema older = olderPrompt();
        GenericRecord record = new GenericData.Record(older);
        record.put("request_id", "old-1");
        record.put("tenant", "acme");
        record.put("context_id", null);
        record.put("mode", new GenericData.EnumSymbol(older.getField("mode").schema(), "STATELESS"));
        record.put("text", "Hello");
        record.put("max_tokens", 5);
        record.put("temperature", 0.0f);
        record.put("top_k", 0);
        return encode(older, record);
    }

    private static byte[] encode(Schema schema, GenericRecord record) {
        try {
            ByteBuffer buffer = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), schema).encode(record);
            byte[] bytes = new byte[buffer.remaining()];
            buffer.get(bytes);
            return bytes;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @ParameterizedTest
    @EnumSource(RecordType.class)
    void currentSchemaReadsEveryBaseline(RecordType type) {
        for (String baseline : BASELINES) {
            Schema writer = resource("/compat/" + baseline + "/" + type.schema().getName() + ".avsc");
            SchemaCompatibility.SchemaPairCompatibility result =
                    SchemaCompatibility.checkReaderWriterCompatibility(type.schema(), writer);
            assertThat(result.getType())
                    .as("%s cannot read data written with %s: %s", type.schema().getName(), baseline,
                            result.getResult().getIncompatibilities())
                    .isEqualTo(SchemaCompatibilityType.COMPATIBLE);
        }
    }

    @Test
    void addingAFieldWithoutDefaultIsIncompatible() {
        Schema v1 = resource("/compat/v1/Prompt.avsc");
        Schema withNewRequiredField = withExtraField(v1, new Schema.Field("priority", Schema.create(Schema.Type.INT)));
        Schema withNewDefaultedField = withExtraField(v1, new Schema.Field("priority", Schema.create(Schema.Type.INT), null, 0));

        SchemaCompatibility.SchemaPairCompatibility required =
                SchemaCompatibility.checkReaderWriterCompatibility(withNewRequiredField, v1);
        assertThat(required.getType()).isEqualTo(SchemaCompatibilityType.INCOMPATIBLE);
        assertThat(required.getResult().getIncompatibilities().toString()).contains("priority");
        assertThat(SchemaCompatibility.checkReaderWriterCompatibility(withNewDefaultedField, v1).getType())
                .isEqualTo(SchemaCompatibilityType.COMPATIBLE);
    }

    private static Schema withExtraField(Schema record, Schema.Field extra) {
        List<Schema.Field> fields = new ArrayList<>();
        for (Schema.Field field : record.getFields()) {
            fields.add(new Schema.Field(field, field.schema()));
        }
        fields.add(extra);
        return Schema.createRecord(record.getName(), record.getDoc(), record.getNamespace(), false, fields);
    }

    @Test
    void decodesRecordWrittenWithV1WriterSchema() {
        Schema v1 = resource("/compat/v1/Prompt.avsc");
        GenericRecord record = new GenericData.Record(v1);
        record.put("request_id", "v1-1");
        record.put("tenant", "acme");
        record.put("context_id", "doc-9");
        record.put("mode", new GenericData.EnumSymbol(v1.getField("mode").schema(), "CONVERSATION"));
        record.put("text", "Hi");
        record.put("max_tokens", 7);
        record.put("temperature", 0.5f);
        record.put("top_k", 3);
        record.put("top_p", 0.8f);
        record.put("seed", 9L);
        record.put("stop", List.of("."));

        Prompt prompt = AvroCodec.forPrompt().addSchema(v1).decode(encode(v1, record));

        assertThat(prompt.getRequestId()).isEqualTo("v1-1");
        assertThat(prompt.getMode()).isEqualTo(PromptMode.CONVERSATION);
        assertThat(prompt.getStop()).containsExactly(".");
    }

    @Test
    void aPromptFromAProducerOnTheFirstReleaseDecodesWithoutRegistrationAndHasNoMessages() {
        Schema v1 = resource("/compat/v1/Prompt.avsc");
        assertThat(AvroCodec.releasedSchemas(Prompt.class)).hasSize(2).first().isEqualTo(v1);
        GenericRecord record = new GenericData.Record(v1);
        record.put("request_id", "v1-2");
        record.put("tenant", "acme");
        record.put("context_id", null);
        record.put("mode", new GenericData.EnumSymbol(v1.getField("mode").schema(), "STATELESS"));
        record.put("text", "Hi");
        record.put("max_tokens", 7);
        record.put("temperature", 0f);
        record.put("top_k", 0);
        record.put("top_p", 1f);
        record.put("seed", null);
        record.put("stop", List.of());

        Prompt prompt = AvroCodec.forPrompt().decode(encode(v1, record));
        assertThat(prompt.getText()).isEqualTo("Hi");
        assertThat(prompt.getMessages()).isEmpty();
        assertThat(prompt.getChatTemplateKwargs()).isEmpty();
        assertThat(SchemaNormalization.parsingFingerprint64(v1)).isNotEqualTo(AvroCodec.forPrompt().fingerprint());
    }

    @Test
    void aPromptFromAProducerOnTheSecondReleaseDecodesWithoutResponseFormat() {
        Schema v2 = AvroCodec.releasedSchemas(Prompt.class).get(1);
        Prompt current = JsonAvro.fromJson("{\"request_id\":\"v2-1\",\"tenant\":\"acme\",\"text\":\"Hi\"}", Prompt.class);
        GenericRecord record = new GenericData.Record(v2);
        for (Schema.Field f : v2.getFields()) {
            record.put(f.name(), current.get(f.name()) instanceof Enum<?> e
                    ? new GenericData.EnumSymbol(f.schema(), e.name()) : current.get(f.name()));
        }

        Prompt prompt = AvroCodec.forPrompt().decode(encode(v2, record));
        assertThat(prompt.getRequestId()).isEqualTo("v2-1");
        assertThat(prompt.getResponseFormat()).isNull();
        assertThat(SchemaNormalization.parsingFingerprint64(v2)).isNotEqualTo(AvroCodec.forPrompt().fingerprint());
    }

    @Test
    void aResponseFormatRoundTripsThroughJsonAndAvro() {
        Prompt p = JsonAvro.fromJson("{\"request_id\":\"s1\",\"tenant\":\"acme\",\"text\":\"Hi\","
                + "\"response_format\":{\"json_schema\":\"{\\\"type\\\":\\\"boolean\\\"}\"}}", Prompt.class);
        assertThat(p.getResponseFormat().getJsonSchema()).isEqualTo("{\"type\":\"boolean\"}");
        assertThat(p.getResponseFormat().getChoices()).isEmpty();
        assertThat(AvroCodec.forPrompt().decode(AvroCodec.forPrompt().encode(p))).isEqualTo(p);
    }

    @Test
    void chatMessagesAndTemplateArgumentsRoundTripThroughJson() {
        Prompt p = JsonAvro.fromJson("{\"request_id\":\"c1\",\"tenant\":\"acme\",\"messages\":["
                + "{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}],"
                + "\"chat_template_kwargs\":{\"enable_thinking\":false,\"reasoning_effort\":\"high\",\"n\":3}}", Prompt.class);
        assertThat(p.getText()).isEmpty();
        assertThat(p.getMessages()).extracting(ChatMessage::getRole).containsExactly("system", "user");
        assertThat(p.getChatTemplateKwargs()).containsEntry("enable_thinking", false)
                .containsEntry("reasoning_effort", "high").containsEntry("n", 3L);
        Prompt back = AvroCodec.forPrompt().decode(AvroCodec.forPrompt().encode(p));
        assertThat(back).isEqualTo(p);
        assertThat(JsonAvro.fromJson(JsonAvro.toJson(p), Prompt.class)).isEqualTo(p);
    }

    @Test
    void decodesOlderWriterWithDefaultsOnlyOnceRegistered() {
        byte[] bytes = writeWithOlderPrompt();

        assertThatThrownBy(() -> AvroCodec.forPrompt().decode(bytes))
                .hasMessageContaining("unknown schema fingerprint");

        Prompt prompt = AvroCodec.forPrompt().addSchema(olderPrompt()).decode(bytes);
        assertThat(prompt.getRequestId()).isEqualTo("old-1");
        assertThat(prompt.getTopP()).isEqualTo(1.0f);
        assertThat(prompt.getSeed()).isNull();
        assertThat(prompt.getStop()).isEmpty();
    }

    @Test
    void incompatibleWriterSchemaIsRefusedWhenRegistered() {
        Schema missingTenant = resource("/compat/v1/Prompt.avsc");
        List<Schema.Field> fields = new ArrayList<>();
        for (Schema.Field field : missingTenant.getFields()) {
            if (!field.name().equals("tenant")) {
                fields.add(new Schema.Field(field, field.schema()));
            }
        }
        Schema writer = Schema.createRecord("Prompt", null, "io.moestream.schemas", false, fields);

        assertThatThrownBy(() -> AvroCodec.forPrompt().addSchema(writer))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("cannot be read as io.moestream.schemas.Prompt")
                .hasMessageContaining("tenant");
    }
}
