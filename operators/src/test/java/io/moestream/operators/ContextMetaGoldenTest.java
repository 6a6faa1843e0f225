package io.moestream.operators;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.junit.jupiter.api.Test;

/**
 * {@link ContextMetaSerializer} against golden bytes of its format: values in state written by this
 * format must keep reading the same, and the format must not change silently.
 */
class ContextMetaGoldenTest {

    /** Written by the format-3 serializer: a document then a conversation, back to back. */
    static final Path V3 = Path.of("src/test/resources/state/context-meta-v3.bin");

    static final ContextMeta DOC = new ContextMeta("acme", "doc-3", ContextMeta.Kind.DOCUMENT, true, 2, 5, 9_000_000L,
            1_700_000_000_000L, 1_700_000_090_000L, new int[] {1, 15, 16, 17, 2}, new byte[] {4, 3, 2, 1}, 4_096L);
    static final ContextMeta CHAT = new ContextMeta("globex", "chat-3", ContextMeta.Kind.CONVERSATION, true, 0, 3, 0L,
            1_700_000_000_000L, 1_700_000_002_000L, new int[] {1, 7, 8}, new byte[] {42}, 1_234L);

    @Test
    void version3BytesDeserializeToTheRecordedValuesAndSerializeBackToTheSameBytes() throws IOException {
        byte[] golden = Files.readAllBytes(V3);
        DataInputDeserializer in = new DataInputDeserializer(golden);
        ContextMeta doc = ContextMetaSerializer.INSTANCE.deserialize(in);
        ContextMeta chat = ContextMetaSerializer.INSTANCE.deserialize(in);
        assertThat(in.available()).isZero();
        assertThat(doc).isEqualTo(DOC);
        assertThat(chat).isEqualTo(CHAT);
        assertThat(doc.tokenIds()).containsExactly(1, 15, 16, 17, 2);
        assertThat(doc.kvMeta()).containsExactly(4, 3, 2, 1);
        assertThat(doc.kvStateBytes()).isEqualTo(4_096L);

        DataOutputSerializer out = new DataOutputSerializer(128);
        ContextMetaSerializer.INSTANCE.serialize(DOC, out);
        ContextMetaSerializer.INSTANCE.serialize(CHAT, out);
        assertThat(out.getCopyOfBuffer()).isEqualTo(golden);
    }

    @Test
    void anUnknownVersionIsRejectedWithItsNumber() {
        byte[] bytes = {9, 0, 0};
        assertThatThrownBy(() -> ContextMetaSerializer.INSTANCE.deserialize(new DataInputDeserializer(bytes)))
                .isInstanceOf(IOException.class).hasMessageContaining("version 9");
    }
}
