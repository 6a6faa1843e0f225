package io.moestream.jobs;

import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.MalformedRecordException;
import io.moestream.schemas.Prompt;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.flink.configuration.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class WriterSchemasTest {

    /** Prompt as a producer pinned before {@code seed}, {@code stop} and the sampling fields were added. */
    static final String OLDER_PROMPT = """
            {"type": "record", "name": "Prompt", "namespace": "io.moestream.schemas", "fields": [
              {"name": "request_id", "type": "string"},
              {"name": "tenant", "type": "string"},
              {"name": "context_id", "type": ["null", "string"], "default": null},
              {"name": "mode", "type": {"type": "enum", "name": "PromptMode",
                "symbols": ["STATELESS", "DOCUMENT", "CONVERSATION"], "default": "STATELESS"}, "default": "STATELESS"},
              {"name": "text", "type": "string"},
              {"name": "max_tokens", "type": "int", "default": 64}
            ]}""";

    /** Encodes a prompt the way such a producer does: plain Avro, its own schema's fingerprint. */
    static byte[] olderPrompt(String requestId, String text) throws IOException {
        Schema schema = new Schema.Parser().parse(OLDER_PROMPT);
        GenericRecord r = new GenericData.Record(schema);
        r.put("request_id", requestId);
        r.put("tenant", "acme");
        r.put("context_id", null);
        r.put("mode", new GenericData.EnumSymbol(schema.getField("mode").schema(), "STATELESS"));
        r.put("text", text);
        r.put("max_tokens", 6);
        return new BinaryMessageEncoder<GenericRecord>(GenericData.get(), schema).encode(r).array();
    }

    @Test
    void promptsWrittenWithAnOlderSchemaInTheFolderAreRead(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("prompt-v0.avsc"), OLDER_PROMPT);
        Files.writeString(dir.resolve("README.txt"), "not a schema, ignored");
        byte[] bytes = olderPrompt("old-1", "Lists are");

        assertThatThrownBy(() -> AvroCodec.forPrompt().decode(bytes)).isInstanceOf(MalformedRecordException.class)
                .hasMessageContaining("unknown schema fingerprint");

        Configuration conf = new Configuration();
        conf.set(JobOptions.WRITER_SCHEMAS_DIR, dir.toString());
        WriterSchemas older = WriterSchemas.from(conf);
        Prompt prompt = older.promptCodec().decode(bytes);
        assertThat(prompt.getRequestId()).isEqualTo("old-1");
        assertThat(prompt.getMaxTokens()).isEqualTo(6);
        assertThat(prompt.getStop()).isEmpty();
        assertThat(prompt.getTopP()).isEqualTo(1.0f);
        assertThat(older).hasToString("WriterSchemas[1 Prompt, 0 Document]");
    }

    @Test
    void withoutTheOptionThereAreNone() {
        assertThat(WriterSchemas.from(new Configuration())).hasToString("WriterSchemas[0 Prompt, 0 Document]");
    }

    @Test
    void anIncompatibleSchemaStopsTheStartNamingItsFile(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("a-good.avsc"), OLDER_PROMPT);
        Path bad = dir.resolve("b-no-tenant.avsc");
        Files.writeString(bad, OLDER_PROMPT.replace("{\"name\": \"tenant\", \"type\": \"string\"},", ""));
        assertThatThrownBy(() -> WriterSchemas.load(dir)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("moestream.schemas.writer-dir: " + bad + ": writer schema 0x")
                .hasMessageContaining("cannot be read as io.moestream.schemas.Prompt")
                .hasMessageContaining("tenant");
    }

    @Test
    void otherRecordsAndBrokenFilesAreRefusedNamingTheFile(@TempDir Path dir) throws Exception {
        Path generation = dir.resolve("generation.avsc");
        Files.writeString(generation, OLDER_PROMPT.replace("\"name\": \"Prompt\"", "\"name\": \"Generation\""));
        assertThatThrownBy(() -> WriterSchemas.load(dir)).hasMessageContaining(generation.toString())
                .hasMessageContaining("io.moestream.schemas.Generation, not io.moestream.schemas.Prompt or io.moestream.schemas.Document");
        Files.delete(generation);

        Path broken = dir.resolve("broken.avsc");
        Files.writeString(broken, "{\"type\": \"record\", \"name\": ");
        assertThatThrownBy(() -> WriterSchemas.load(dir)).hasMessageContaining(broken + ": not an Avro schema");

        assertThatThrownBy(() -> WriterSchemas.load(dir.resolve("missing"))).hasMessageContaining("no such folder");
    }
}
