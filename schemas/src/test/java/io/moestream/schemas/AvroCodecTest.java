package io.moestream.schemas;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.specific.SpecificRecord;
import org.junit.jupiter.api.Test;

class AvroCodecTest {

    @Test
    void roundTripsEveryRecordType() {
        for (Object value : Fixtures.all()) {
            SpecificRecord record = (SpecificRecord) value;
            assertThat(roundTrip(record)).isEqualTo(record);
        }
    }

    @SuppressWarnings("unchecked")
    private static <T extends SpecificRecord> T roundTrip(T record) {
        AvroCodec<T> codec = AvroCodec.of((Class<T>) record.getClass());
        return codec.decode(codec.encode(record));
    }

    @Test
    void writesSingleObjectHeader() {
        AvroCodec<Prompt> codec = AvroCodec.forPrompt();
        byte[] bytes = codec.encode(Fixtures.prompt());

        assertThat(bytes[0]).isEqualTo((byte) 0xC3);
        assertThat(bytes[1]).isEqualTo((byte) 0x01);
        long fingerprint = SchemaNormalization.parsingFingerprint64(Prompt.getClassSchema());
        assertThat(AvroCodec.writerFingerprint(bytes)).contains(fingerprint);
        assertThat(codec.fingerprint()).isEqualTo(fingerprint);
        // the generated class' own single-object encoding is the same bytes
        assertThat(bytes).isEqualTo(toArray(Fixtures.prompt()));
    }

    private static byte[] toArray(Prompt prompt) {
        try {
            java.nio.ByteBuffer buffer = prompt.toByteBuffer();
            byte[] bytes = new byte[buffer.remaining()];
            buffer.get(bytes);
            return bytes;
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void jsonBytesAreNamedAsJson() {
        byte[] json = "{\"request_id\":\"r1\"}".getBytes(StandardCharsets.UTF_8);

        assertThatThrownBy(() -> AvroCodec.forPrompt().decode(json))
                .isInstanceOf(MalformedRecordException.class)
                .hasMessageContaining("not Avro single-object encoding (first bytes 7b 22 72 65 71 75 65 73 ... look like JSON)")
                .hasMessageContaining("c3 01");
    }

    @Test
    void confluentFramingAndPlainTextAreRecognized() {
        byte[] confluent = {0, 0, 0, 0, 7, 2, 'a'};
        assertThatThrownBy(() -> AvroCodec.forPrompt().decode(confluent))
                .hasMessageContaining("Confluent Schema Registry framing with schema id 7");
        assertThatThrownBy(() -> AvroCodec.forPrompt().decode("hello".getBytes(StandardCharsets.UTF_8)))
                .hasMessageContaining("look like plain text");
        assertThatThrownBy(() -> AvroCodec.forPrompt().decode(new byte[0])).hasMessageContaining("empty payload");
    }

    @Test
    void unknownFingerprintSaysWhatWasExpected() {
        AvroCodec<Prompt> codec = AvroCodec.forPrompt();
        byte[] bytes = codec.encode(Fixtures.prompt());
        bytes[2] ^= 0x5A;

        assertThatThrownBy(() -> codec.decode(bytes))
                .isInstanceOf(MalformedRecordException.class)
                .hasMessageStartingWith("unknown schema fingerprint 0x")
                .hasMessageContaining("the record was written with a schema this job does not know")
                .hasMessageContaining("expected io.moestream.schemas.Prompt, fingerprint " + AvroCodec.hex(codec.fingerprint()));
    }

    @Test
    void recordOfAnotherTypeIsCalledOut() {
        byte[] document = AvroCodec.forDocument().encode(Fixtures.document());

        assertThatThrownBy(() -> AvroCodec.forPrompt().decode(document))
                .hasMessageContaining("that is the fingerprint of io.moestream.schemas.Document: was it written to the wrong topic?");
    }

    @Test
    void truncatedAndGarbledPayloads() {
        AvroCodec<Prompt> codec = AvroCodec.forPrompt();
        byte[] bytes = codec.encode(Fixtures.prompt());

        assertThatThrownBy(() -> codec.decode(Arrays.copyOf(bytes, 6))).hasMessageStartingWith("truncated payload: 6 bytes");
        assertThatThrownBy(() -> codec.decode(Arrays.copyOf(bytes, bytes.length - 3)))
                .hasMessageStartingWith("truncated or garbled io.moestream.schemas.Prompt payload");
        byte[] longer = Arrays.copyOf(bytes, bytes.length + 2);
        assertThatThrownBy(() -> codec.decode(longer)).hasMessageContaining("2 bytes left over after the record");
        byte[] garbled = bytes.clone();
        garbled[AvroCodec.HEADER_LENGTH] = (byte) 0x7F; // request_id length -64: a negative length
        assertThatThrownBy(() -> codec.decode(garbled)).isInstanceOf(MalformedRecordException.class)
                .hasMessageStartingWith("truncated or garbled");
    }

    @Test
    void nullRequiredFieldCannotBeEncoded() {
        Prompt prompt = Fixtures.prompt();
        prompt.setTenant(null);

        assertThatThrownBy(() -> AvroCodec.forPrompt().encode(prompt))
                .isInstanceOf(MalformedRecordException.class)
                .hasMessageContaining("cannot encode io.moestream.schemas.Prompt")
                .hasMessageContaining("tenant");
    }

    @Test
    void survivesJavaSerializationWithRegisteredSchemas() throws Exception {
        AvroCodec<Prompt> codec = AvroCodec.forPrompt().addSchema(SchemaEvolutionTest.olderPrompt());
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(buffer)) {
            out.writeObject(codec);
        }
        @SuppressWarnings("unchecked")
        AvroCodec<Prompt> copy = (AvroCodec<Prompt>) new ObjectInputStream(new ByteArrayInputStream(buffer.toByteArray()))
                .readObject();

        assertThat(copy.decode(codec.encode(Fixtures.prompt()))).isEqualTo(Fixtures.prompt());
        assertThat(copy.decode(SchemaEvolutionTest.writeWithOlderPrompt()).getStop()).isEmpty();
    }

    @Test
    void recordTypeNames() {
        assertThat(RecordType.parse("prompt")).isEqualTo(RecordType.PROMPT);
        assertThat(RecordType.parse("ContextReady")).isEqualTo(RecordType.CONTEXT_READY);
        assertThat(RecordType.parse("context-ready")).isEqualTo(RecordType.CONTEXT_READY);
        assertThat(RecordType.parse("InferenceError")).isEqualTo(RecordType.ERROR);
        assertThatThrownBy(() -> RecordType.parse("promt"))
                .hasMessageContaining("document|prompt|generation|error|context-ready");
    }
}
