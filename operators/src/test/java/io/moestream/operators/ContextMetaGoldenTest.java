package io.moestream.operators;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.junit.jupiter.api.Test;

/**
 * Restore from a previous version: the golden bytes of each {@link ContextMetaSerializer} format version
 * (written by that version's code, never regenerated) must keep deserializing to the same values.
 */
class ContextMetaGoldenTest {

    /** Written by the format-1 serializer (commit "golden bytes of ContextMeta format v1"): two values back to back. */
    static final Path V1 = Path.of("src/test/resources/state/context-meta-v1.bin");

    @Test
    void version1BytesStillDeserialize() throws IOException {
        DataInputDeserializer in = new DataInputDeserializer(Files.readAllBytes(V1));
        ContextMeta doc = ContextMetaSerializer.INSTANCE.deserialize(in);
        ContextMeta chat = ContextMetaSerializer.INSTANCE.deserialize(in);
        assertThat(in.available()).isZero();
        assertThat(doc).isEqualTo(new ContextMeta("acme", "doc-1", ContextMeta.Kind.DOCUMENT, true, 3, 120,
                5_000_000L, 1_700_000_000_000L, 1_700_000_060_000L));
        assertThat(chat).isEqualTo(new ContextMeta("acme", "chat-1", ContextMeta.Kind.CONVERSATION, true, 0, 42,
                0L, 1_700_000_000_000L, 1_700_000_001_000L));
        // a format-1 context has its KV-cache in the legacy whole-cache state
        assertThat(doc.hasKv()).isFalse();
        assertThat(doc.tokenIds()).isNull();

        // and is written back in the current format, which reads back equal
        DataOutputSerializer out = new DataOutputSerializer(64);
        ContextMetaSerializer.INSTANCE.serialize(doc, out);
        byte[] current = out.getCopyOfBuffer();
        assertThat(current[0]).isEqualTo((byte) ContextMetaSerializer.CURRENT_VERSION);
        assertThat(ContextMetaSerializer.INSTANCE.deserialize(new DataInputDeserializer(current))).isEqualTo(doc);
    }

    /** Written by the format-2 serializer (before kvStateBytes): two values back to back. */
    static final Path V2 = Path.of("src/test/resources/state/context-meta-v2.bin");

    @Test
    void version2BytesStillDeserializeWithTheBlockSizeUnknown() throws IOException {
        DataInputDeserializer in = new DataInputDeserializer(Files.readAllBytes(V2));
        ContextMeta doc = ContextMetaSerializer.INSTANCE.deserialize(in);
        ContextMeta chat = ContextMetaSerializer.INSTANCE.deserialize(in);
        assertThat(in.available()).isZero();
        assertThat(doc).isEqualTo(new ContextMeta("acme", "doc-2", ContextMeta.Kind.DOCUMENT, true, 2, 5, 9_000_000L,
                1_700_000_000_000L, 1_700_000_090_000L, new int[] {1, 15, 16, 17, 2}, new byte[] {4, 3, 2, 1}));
        assertThat(chat).isEqualTo(new ContextMeta("globex", "chat-2", ContextMeta.Kind.CONVERSATION, true, 0, 3, 0L,
                1_700_000_000_000L, 1_700_000_002_000L, new int[] {1, 7, 8}, new byte[] {42}));
        assertThat(doc.kvStateBytes()).isEqualTo(-1); // the operator then measures the blocks themselves
    }

    @Test
    void version3CarriesTheKvBlockBytes() throws IOException {
        ContextMeta meta = new ContextMeta("acme", "doc", ContextMeta.Kind.DOCUMENT, true, 1, 3, 7L, 1L, 2L,
                new int[] {1, 2, 3}, new byte[] {9, 8, 7}, 123_456L);
        DataOutputSerializer out = new DataOutputSerializer(64);
        ContextMetaSerializer.INSTANCE.serialize(meta, out);
        ContextMeta back = ContextMetaSerializer.INSTANCE.deserialize(new DataInputDeserializer(out.getCopyOfBuffer()));
        assertThat(back).isEqualTo(meta);
        assertThat(back.kvStateBytes()).isEqualTo(123_456L);
    }

    @Test
    void version2CarriesTokenIdsAndKvMetadata() throws IOException {
        ContextMeta meta = new ContextMeta("acme", "doc", ContextMeta.Kind.DOCUMENT, true, 1, 3, 7L, 1L, 2L,
                new int[] {1, 2, 3}, new byte[] {9, 8, 7});
        DataOutputSerializer out = new DataOutputSerializer(64);
        ContextMetaSerializer.INSTANCE.serialize(meta, out);
        ContextMeta back = ContextMetaSerializer.INSTANCE.deserialize(new DataInputDeserializer(out.getCopyOfBuffer()));
        assertThat(back).isEqualTo(meta);
        assertThat(back.tokenIds()).containsExactly(1, 2, 3);
        assertThat(back.kvMeta()).containsExactly(9, 8, 7);
    }
}
