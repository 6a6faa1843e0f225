package io.moestream.schemas;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Collectors;
import org.apache.avro.AvroTypeException;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.message.SchemaStore;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;

/**
 * Encodes and decodes one record type as Avro <em>single-object encoding</em>: the two magic bytes
 * {@code C3 01}, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's Parsing
 * Canonical Form, then the Avro binary body. See {@code docs/wire-format.md}.
 *
 * <p>Decoding resolves the writer schema by fingerprint: the current schema of {@code T} is always
 * known; older writer schemas are registered with {@link #addSchema(Schema)} (they must be
 * backward compatible with the current one). Every failure is a {@link MalformedRecordException}
 * whose message tells the producer what is wrong.
 *
 * <p>A codec is {@link Serializable} (Flink functions may hold one in a field): only the record
 * class and the registered writer schemas travel; Avro's encoder and decoder are rebuilt.
 * It is safe for concurrent use.
 */
public final class AvroCodec<T extends SpecificRecord> implements Serializable {

    private static final long serialVersionUID = 1L;

    /** Magic bytes plus fingerprint. */
    public static final int HEADER_LENGTH = 10;

    private static final byte MAGIC_0 = (byte) 0xC3;
    private static final byte MAGIC_1 = (byte) 0x01;

    // configuration (serialized)
    private final Class<T> type;
    private final List<String> olderWriterSchemas = new CopyOnWriteArrayList<>();

    // runtime (rebuilt after deserialization)
    private transient Schema schema;
    private transient long fingerprint;
    private transient SchemaStore.Cache writerSchemas;
    private transient BinaryMessageEncoder<T> encoder;
    private transient BinaryMessageDecoder<T> decoder;

    private AvroCodec(Class<T> type) {
        this.type = Objects.requireNonNull(type, "type");
        init();
        for (Schema released : releasedSchemas(type)) {
            addSchema(released);
        }
    }

    /**
     * The earlier released writer schemas of {@code type} that the jar carries
     * ({@code io/moestream/schemas/released/<Name>-1.avsc}, {@code -2}, ...), so that records from
     * producers still on an earlier release decode without configuration.
     */
    static List<Schema> releasedSchemas(Class<?> type) {
        List<Schema> out = new ArrayList<>();
        for (int v = 1; ; v++) {
            String name = "released/" + type.getSimpleName() + "-" + v + ".avsc";
            try (java.io.InputStream in = AvroCodec.class.getResourceAsStream(name)) {
                if (in == null) {
                    return out;
                }
                out.add(new Schema.Parser().parse(in));
            } catch (IOException e) {
                throw new java.io.UncheckedIOException("cannot read " + name, e);
            }
        }
    }

    /** A new codec for a generated record class. */
    public static <T extends SpecificRecord> AvroCodec<T> of(Class<T> type) {
        return new AvroCodec<>(type);
    }

    public static AvroCodec<Document> forDocument() {
        return of(Document.class);
    }

    public static AvroCodec<Prompt> forPrompt() {
        return of(Prompt.class);
    }

    public static AvroCodec<Generation> forGeneration() {
        return of(Generation.class);
    }

    public static AvroCodec<InferenceError> forInferenceError() {
        return of(InferenceError.class);
    }

    public static AvroCodec<ContextReady> forContextReady() {
        return of(ContextReady.class);
    }

    private void init() {
        SpecificData model = SpecificData.getForClass(type);
        schema = model.getSchema(type);
        fingerprint = SchemaNormalization.parsingFingerprint64(schema);
        writerSchemas = new SchemaStore.Cache();
        encoder = new BinaryMessageEncoder<>(model, schema);
        decoder = new BinaryMessageDecoder<>(model, schema, writerSchemas);
        for (String older : olderWriterSchemas) {
            writerSchemas.addSchema(new Schema.Parser().parse(older));
        }
    }

    private void readObject(ObjectInputStream in) throws IOException, ClassNotFoundException {
        in.defaultReadObject();
        init();
    }

    /** The record class this codec reads and writes. */
    public Class<T> type() {
        return type;
    }

    /** The current (reader and writer) schema. */
    public Schema schema() {
        return schema;
    }

    /** CRC-64-AVRO fingerprint of the current schema's Parsing Canonical Form. */
    public long fingerprint() {
        return fingerprint;
    }

    /**
     * Registers an older writer schema so records written with it can be decoded (fields it lacks
     * take their defaults).
     *
     * @throws IllegalArgumentException if the current schema cannot read data written with it
     */
    public AvroCodec<T> addSchema(Schema writer) {
        SchemaCompatibility.SchemaPairCompatibility compatibility =
                SchemaCompatibility.checkReaderWriterCompatibility(schema, writer);
        if (compatibility.getType() != SchemaCompatibility.SchemaCompatibilityType.COMPATIBLE) {
            throw new IllegalArgumentException(
                    "writer schema " + hex(SchemaNormalization.parsingFingerprint64(writer))
                            + " cannot be read as " + schema.getFullName() + ": "
                            + compatibility.getResult().getIncompatibilities().stream()
                                    .map(i -> i.getMessage() + " (" + i.getType() + " at " + i.getLocation() + ")")
                                    .collect(Collectors.joining("; ")));
        }
        olderWriterSchemas.add(writer.toString());
        writerSchemas.addSchema(writer);
        return this;
    }

    /** The record as single-object encoding. */
    public byte[] encode(T record) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(128);
        try {
            encoder.encode(record, out);
        } catch (IOException | RuntimeException e) {
            throw new MalformedRecordException(
                    "cannot encode " + schema.getFullName() + ": " + e.getMessage(), e);
        }
        return out.toByteArray();
    }

    /**
     * Reads one single-object-encoded record.
     *
     * @throws MalformedRecordException if the bytes are not single-object encoding, were written
     *     with an unknown schema, or are truncated or garbled
     */
    public T decode(byte[] bytes) {
        checkHeader(bytes);
        long writerFingerprint = fingerprintOf(bytes);
        if (writerFingerprint != fingerprint && writerSchemas.findByFingerprint(writerFingerprint) == null) {
            throw unknownFingerprint(writerFingerprint);
        }
        ByteArrayInputStream in = new ByteArrayInputStream(bytes);
        T record;
        try {
            record = decoder.decode(in, null);
        } catch (AvroTypeException e) {
            throw new MalformedRecordException(
                    "record written with schema " + hex(writerFingerprint) + " cannot be read as "
                            + schema.getFullName() + ": " + e.getMessage(), e);
        } catch (IOException | RuntimeException e) {
            throw garbled(bytes, writerFingerprint, describe(e), e);
        }
        if (in.available() > 0) {
            throw garbled(bytes, writerFingerprint, in.available() + " bytes left over after the record", null);
        }
        return record;
    }

    /** The writer-schema fingerprint in a single-object-encoded payload, if it has the header. */
    public static Optional<Long> writerFingerprint(byte[] bytes) {
        if (bytes == null || bytes.length < HEADER_LENGTH || bytes[0] != MAGIC_0 || bytes[1] != MAGIC_1) {
            return Optional.empty();
        }
        return Optional.of(fingerprintOf(bytes));
    }

    private void checkHeader(byte[] bytes) {
        if (bytes == null || bytes.length == 0) {
            throw new MalformedRecordException("empty payload: expected Avro single-object encoding of "
                    + schema.getFullName() + " (c3 01 + 8-byte schema fingerprint + Avro binary)");
        }
        if (bytes[0] != MAGIC_0 || (bytes.length > 1 && bytes[1] != MAGIC_1)) {
            throw new MalformedRecordException("not Avro single-object encoding (first bytes "
                    + firstBytes(bytes) + guess(bytes) + "): expected the magic bytes c3 01, an 8-byte schema"
                    + " fingerprint and the Avro binary of " + schema.getFullName()
                    + " (see docs/wire-format.md)");
        }
        if (bytes.length < HEADER_LENGTH) {
            throw new MalformedRecordException("truncated payload: " + bytes.length
                    + " bytes, but Avro single-object encoding needs at least " + HEADER_LENGTH
                    + " (c3 01 + 8-byte schema fingerprint) before the body");
        }
    }

    private MalformedRecordException unknownFingerprint(long writerFingerprint) {
        StringBuilder message = new StringBuilder()
                .append("unknown schema fingerprint ").append(hex(writerFingerprint))
                .append(" — the record was written with a schema this job does not know (expected ")
                .append(schema.getFullName()).append(", fingerprint ").append(hex(fingerprint));
        if (!olderWriterSchemas.isEmpty()) {
            message.append(", or one of ").append(olderWriterSchemas.size()).append(" older versions");
        }
        message.append(')');
        RecordType.forFingerprint(writerFingerprint).ifPresent(other -> message
                .append("; that is the fingerprint of ").append(other.schema().getFullName())
                .append(": was it written to the wrong topic?"));
        return new MalformedRecordException(message.toString());
    }

    private MalformedRecordException garbled(byte[] bytes, long writerFingerprint, String what, Throwable cause) {
        return new MalformedRecordException("truncated or garbled " + schema.getFullName() + " payload ("
                + bytes.length + " bytes, writer schema " + hex(writerFingerprint) + "): " + what, cause);
    }

    private static String describe(Throwable e) {
        if (e instanceof java.io.EOFException) {
            return "the body ends before the record does";
        }
        String message = e.getMessage();
        return message == null ? e.getClass().getSimpleName() : e.getClass().getSimpleName() + ": " + message;
    }

    private static long fingerprintOf(byte[] bytes) {
        long value = 0;
        for (int i = HEADER_LENGTH - 1; i >= 2; i--) {
            value = (value << 8) | (bytes[i] & 0xFFL);
        }
        return value;
    }

    /** A fingerprint as {@code 0x} and 16 hex digits (the long value, most significant first). */
    public static String hex(long fingerprint) {
        return String.format("0x%016x", fingerprint);
    }

    private static String firstBytes(byte[] bytes) {
        List<String> hex = new ArrayList<>();
        for (int i = 0; i < Math.min(8, bytes.length); i++) {
            hex.add(String.format("%02x", bytes[i] & 0xFF));
        }
        return String.join(" ", hex) + (bytes.length > 8 ? " ..." : "");
    }

    private static String guess(byte[] bytes) {
        int first = 0;
        while (first < bytes.length && Character.isWhitespace(bytes[first])) {
            first++;
        }
        if (first < bytes.length && (bytes[first] == '{' || bytes[first] == '[')) {
            return " look like JSON";
        }
        if (bytes.length >= 4 && bytes[0] == 'O' && bytes[1] == 'b' && bytes[2] == 'j' && bytes[3] == 1) {
            return " are an Avro object container file header";
        }
        if (bytes.length >= 5 && bytes[0] == 0) {
            int id = ((bytes[1] & 0xFF) << 24) | ((bytes[2] & 0xFF) << 16) | ((bytes[3] & 0xFF) << 8) | (bytes[4] & 0xFF);
            return " look like Confluent Schema Registry framing with schema id " + id;
        }
        boolean text = true;
        for (int i = 0; i < Math.min(bytes.length, 32); i++) {
            int b = bytes[i] & 0xFF;
            text &= b >= 0x20 && b < 0x7F || b == '\t' || b == '\n' || b == '\r';
        }
        return text ? " look like plain text" : "";
    }

    @Override
    public String toString() {
        return "AvroCodec[" + schema.getFullName() + ", " + hex(fingerprint) + "]";
    }
}
