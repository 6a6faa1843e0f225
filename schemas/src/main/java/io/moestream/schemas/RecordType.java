package io.moestream.schemas;

import java.util.Locale;
import java.util.Optional;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;

/** The top-level record types that travel on Kafka topics, with the names the CLI accepts. */
public enum RecordType {
    DOCUMENT("document", Document.class),
    PROMPT("prompt", Prompt.class),
    GENERATION("generation", Generation.class),
    ERROR("error", InferenceError.class),
    CONTEXT_READY("context-ready", ContextReady.class);

    private final String cliName;
    private final Class<? extends SpecificRecord> recordClass;
    private final Schema schema;
    private final long fingerprint;

    RecordType(String cliName, Class<? extends SpecificRecord> recordClass) {
        this.cliName = cliName;
        this.recordClass = recordClass;
        this.schema = SpecificData.get().getSchema(recordClass);
        this.fingerprint = SchemaNormalization.parsingFingerprint64(schema);
    }

    /** Lower-case name used on the command line ({@code prompt}, {@code context-ready}, ...). */
    public String cliName() {
        return cliName;
    }

    public Class<? extends SpecificRecord> recordClass() {
        return recordClass;
    }

    public Schema schema() {
        return schema;
    }

    /** CRC-64-AVRO fingerprint of the current schema. */
    public long fingerprint() {
        return fingerprint;
    }

    /** A new codec for this type. */
    public AvroCodec<? extends SpecificRecord> newCodec() {
        return AvroCodec.of(recordClass);
    }

    /**
     * Parses a type name: the CLI name, the enum name or the record name, in any case
     * ({@code prompt}, {@code PROMPT}, {@code Prompt}, {@code context-ready}, {@code ContextReady},
     * {@code InferenceError}).
     *
     * @throws IllegalArgumentException naming the accepted values
     */
    public static RecordType parse(String name) {
        String wanted = normalize(name);
        for (RecordType type : values()) {
            if (wanted.equals(normalize(type.cliName)) || wanted.equals(normalize(type.name()))
                    || wanted.equals(normalize(type.schema.getName()))) {
                return type;
            }
        }
        throw new IllegalArgumentException("unknown record type '" + name + "'; expected one of " + cliNames());
    }

    /** The type whose current schema has this fingerprint. */
    public static Optional<RecordType> forFingerprint(long fingerprint) {
        for (RecordType type : values()) {
            if (type.fingerprint == fingerprint) {
                return Optional.of(type);
            }
        }
        return Optional.empty();
    }

    /** {@code document|prompt|generation|error|context-ready}. */
    public static String cliNames() {
        StringBuilder names = new StringBuilder();
        for (RecordType type : values()) {
            names.append(names.length() == 0 ? "" : "|").append(type.cliName);
        }
        return names.toString();
    }

    private static String normalize(String name) {
        return name.toLowerCase(Locale.ROOT).replace("-", "").replace("_", "");
    }
}
