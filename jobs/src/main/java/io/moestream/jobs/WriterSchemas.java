package io.moestream.jobs;

import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.Document;
import io.moestream.schemas.Prompt;
import org.apache.avro.Schema;
import org.apache.avro.SchemaParseException;
import org.apache.flink.configuration.ReadableConfig;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Older writer schemas of the job's inputs ({@link JobOptions#WRITER_SCHEMAS_DIR}): a folder of
 * {@code .avsc} files, each a {@code Prompt} or {@code Document} schema that producers may still
 * write with. Every file is checked when the job is built: it must parse, be one of those two
 * records, and be readable by the current schema (Avro schema resolution); otherwise the job does
 * not start and the message names the file.
 *
 * <pre>{@code
 * WriterSchemas older = WriterSchemas.from(conf);
 * raw.process(AvroDecodeFunction.prompts(older.promptCodec(), maxTokensCap));
 * }</pre>
 */
public final class WriterSchemas {

    private final List<Schema> prompts;
    private final List<Schema> documents;

    private WriterSchemas(List<Schema> prompts, List<Schema> documents) {
        this.prompts = List.copyOf(prompts);
        this.documents = List.copyOf(documents);
    }

    /** The schemas of the folder {@link JobOptions#WRITER_SCHEMAS_DIR} names, or none when it is unset. */
    public static WriterSchemas from(ReadableConfig conf) {
        return conf.getOptional(JobOptions.WRITER_SCHEMAS_DIR)
                .map(dir -> load(Path.of(dir)))
                .orElseGet(() -> new WriterSchemas(List.of(), List.of()));
    }

    /**
     * Reads every {@code *.avsc} file of {@code dir} (other files are ignored).
     *
     * @throws IllegalArgumentException naming the file, when one cannot be used
     */
    public static WriterSchemas load(Path dir) {
        String option = JobOptions.WRITER_SCHEMAS_DIR.key();
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException(option + ": no such folder: " + dir.toAbsolutePath());
        }
        List<Schema> prompts = new ArrayList<>();
        List<Schema> documents = new ArrayList<>();
        for (Path file : avscFiles(dir)) {
            Schema schema = parse(file);
            String name = schema.getType() == Schema.Type.RECORD ? schema.getFullName() : schema.getType().getName();
            try {
                if (name.equals(Prompt.getClassSchema().getFullName())) {
                    AvroCodec.forPrompt().addSchema(schema);
                    prompts.add(schema);
                } else if (name.equals(Document.getClassSchema().getFullName())) {
                    AvroCodec.forDocument().addSchema(schema);
                    documents.add(schema);
                } else {
                    throw new IllegalArgumentException("it is " + name + ", not " + Prompt.getClassSchema().getFullName()
                            + " or " + Document.getClassSchema().getFullName() + " (the job's inputs)");
                }
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(option + ": " + file + ": " + e.getMessage(), e);
            }
        }
        return new WriterSchemas(prompts, documents);
    }

    /** A prompt codec that also reads the older prompt schemas. */
    public AvroCodec<Prompt> promptCodec() {
        AvroCodec<Prompt> codec = AvroCodec.forPrompt();
        prompts.forEach(codec::addSchema);
        return codec;
    }

    /** A document codec that also reads the older document schemas. */
    public AvroCodec<Document> documentCodec() {
        AvroCodec<Document> codec = AvroCodec.forDocument();
        documents.forEach(codec::addSchema);
        return codec;
    }

    /** How many older schemas of each input were loaded. */
    @Override
    public String toString() {
        return "WriterSchemas[" + prompts.size() + " Prompt, " + documents.size() + " Document]";
    }

    private static List<Path> avscFiles(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().endsWith(".avsc") && Files.isRegularFile(f))
                    .sorted()
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
    }

    private static Schema parse(Path file) {
        try {
            return new Schema.Parser().parse(file.toFile());
        } catch (IOException | SchemaParseException e) {
            throw new IllegalArgumentException(JobOptions.WRITER_SCHEMAS_DIR.key() + ": " + file
                    + ": not an Avro schema: " + e.getMessage(), e);
        }
    }
}
