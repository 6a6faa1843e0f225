package io.moestream.jobs.sql;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.jobs.WriterSchemas;
import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.FinishReason;
import io.moestream.schemas.Generation;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import io.moestream.schemas.Timings;
import io.moestream.schemas.Usage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.data.GenericArrayData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.runtime.typeutils.InternalTypeInfo;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.RowType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MoeAvroFormatTest {

    @Test
    void readsTheColumnsItDeclaresByNameFromWhatAvroCodecWrites() throws IOException {
        Prompt prompt = Prompt.newBuilder().setRequestId("r1").setTenant("acme").setContextId("doc-1")
                .setMode(PromptMode.DOCUMENT).setText("Summarize.").setSeed(42L).setStop(List.of("END", "\n\n")).build();
        RowType type = rowType(DataTypes.ROW(DataTypes.FIELD("text", DataTypes.STRING()),
                DataTypes.FIELD("mode", DataTypes.STRING()), DataTypes.FIELD("stop", DataTypes.ARRAY(DataTypes.STRING())),
                DataTypes.FIELD("seed", DataTypes.BIGINT()), DataTypes.FIELD("max_tokens", DataTypes.INT()),
                DataTypes.FIELD("request_id", DataTypes.STRING())));

        RowData row = reader(AvroCodec.forPrompt(), type, false).deserialize(AvroCodec.forPrompt().encode(prompt));

        assertThat(row.getString(0).toString()).isEqualTo("Summarize.");
        assertThat(row.getString(1).toString()).isEqualTo("DOCUMENT");
        assertThat(row.getArray(2).getString(1).toString()).isEqualTo("\n\n");
        assertThat(row.getLong(3)).isEqualTo(42L);
        assertThat(row.getInt(4)).isEqualTo(64);
        assertThat(row.getString(5).toString()).isEqualTo("r1");
    }

    @Test
    void writesAGenerationThatAvroCodecReadsWithDefaultsForTheMissingFields() {
        RowType type = rowType(DataTypes.ROW(DataTypes.FIELD("request_id", DataTypes.STRING()),
                DataTypes.FIELD("tenant", DataTypes.STRING()), DataTypes.FIELD("text", DataTypes.STRING()),
                DataTypes.FIELD("finish_reason", DataTypes.STRING()),
                DataTypes.FIELD("usage", DataTypes.ROW(DataTypes.FIELD("prompt_tokens", DataTypes.INT()),
                        DataTypes.FIELD("cached_tokens", DataTypes.INT()), DataTypes.FIELD("generated_tokens", DataTypes.INT()))),
                DataTypes.FIELD("timings", DataTypes.ROW(DataTypes.FIELD("queued_ms", DataTypes.BIGINT()),
                        DataTypes.FIELD("prefill_ms", DataTypes.BIGINT()), DataTypes.FIELD("decode_ms", DataTypes.BIGINT()))),
                DataTypes.FIELD("model", DataTypes.STRING()),
                DataTypes.FIELD("token_ids", DataTypes.ARRAY(DataTypes.INT()))));
        GenericRowData row = GenericRowData.of(StringData.fromString("r1"), StringData.fromString("acme"),
                StringData.fromString("Hi there"), StringData.fromString("LENGTH"), GenericRowData.of(3, 0, 2),
                GenericRowData.of(1L, 2L, 3L), StringData.fromString("m"), new GenericArrayData(new Integer[] {7, 9}));

        byte[] bytes = new MoeAvroSerializationSchema(AvroCodec.forGeneration(), type).serialize(row);

        assertThat(AvroCodec.forGeneration().decode(bytes)).isEqualTo(Generation.newBuilder().setRequestId("r1")
                .setTenant("acme").setContextId(null).setText("Hi there").setTokenIds(List.of(7, 9))
                .setFinishReason(FinishReason.LENGTH).setUsage(new Usage(3, 0, 2)).setTimings(new Timings(1L, 2L, 3L))
                .setModel("m").build());

        GenericRowData badEnum = GenericRowData.of(StringData.fromString("r1"), StringData.fromString("acme"),
                StringData.fromString("x"), StringData.fromString("DONE"), GenericRowData.of(3, 0, 2),
                GenericRowData.of(1L, 2L, 3L), StringData.fromString("m"), new GenericArrayData(new Integer[0]));
        assertThatThrownBy(() -> new MoeAvroSerializationSchema(AvroCodec.forGeneration(), type).serialize(badEnum))
                .hasMessageContaining("column 'finish_reason' is 'DONE', not one of [STOP, LENGTH, STOP_SEQUENCE]");
    }

    @Test
    void olderWriterSchemasAreReadOnlyWhenRegisteredAndOtherBytesFailOrAreSkippedAsConfigured(@TempDir Path dir)
            throws IOException {
        String older = """
                {"type": "record", "name": "Prompt", "namespace": "io.moestream.schemas", "fields": [
                  {"name": "request_id", "type": "string"}, {"name": "tenant", "type": "string"},
                  {"name": "text", "type": "string"}]}""";
        Schema schema = new Schema.Parser().parse(older);
        GenericRecord r = new GenericData.Record(schema);
        r.put("request_id", "old-1");
        r.put("tenant", "acme");
        r.put("text", "Hello");
        byte[] bytes = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), schema).encode(r).array();
        Files.writeString(dir.resolve("prompt-v0.avsc"), older);
        RowType type = rowType(DataTypes.ROW(DataTypes.FIELD("request_id", DataTypes.STRING()),
                DataTypes.FIELD("max_tokens", DataTypes.INT())));

        RowData row = reader(WriterSchemas.load(dir).promptCodec(), type, false).deserialize(bytes);
        assertThat(row.getString(0).toString()).isEqualTo("old-1");
        assertThat(row.getInt(1)).isEqualTo(64); // the current schema's default

        assertThatThrownBy(() -> reader(AvroCodec.forPrompt(), type, false).deserialize(bytes))
                .isInstanceOf(IOException.class).hasMessageContaining("unknown schema fingerprint")
                .hasMessageContaining("ignore-parse-errors");
        assertThatThrownBy(() -> reader(AvroCodec.forPrompt(), type, false).deserialize("{\"a\":1}".getBytes()))
                .hasMessageContaining("look like JSON");
        assertThat(reader(AvroCodec.forPrompt(), type, true).deserialize(bytes)).isNull();
    }

    @Test
    void columnsThatDoNotMatchTheSchemaFailWhenPlannedNamingTheColumn() {
        assertThatThrownBy(() -> reader(AvroCodec.forPrompt(),
                rowType(DataTypes.ROW(DataTypes.FIELD("prompt", DataTypes.STRING()))), false))
                .isInstanceOf(ValidationException.class)
                .hasMessageContaining("column 'prompt' is not a field of io.moestream.schemas.Prompt (fields: request_id,");
        assertThatThrownBy(() -> reader(AvroCodec.forPrompt(),
                rowType(DataTypes.ROW(DataTypes.FIELD("max_tokens", DataTypes.STRING()))), false))
                .isInstanceOf(ValidationException.class)
                .hasMessageContaining("column 'max_tokens' is STRING, but the Avro field is int");
        assertThatThrownBy(() -> new MoeAvroSerializationSchema(AvroCodec.forGeneration(),
                rowType(DataTypes.ROW(DataTypes.FIELD("request_id", DataTypes.STRING())))))
                .isInstanceOf(ValidationException.class)
                .hasMessageContaining("no column 'tenant', but io.moestream.schemas.Generation requires it");
    }

    private static MoeAvroDeserializationSchema reader(AvroCodec<?> codec, RowType type, boolean ignoreErrors) {
        return new MoeAvroDeserializationSchema(codec, type, InternalTypeInfo.of(type), ignoreErrors);
    }

    private static RowType rowType(DataType type) {
        return (RowType) type.getLogicalType();
    }
}
