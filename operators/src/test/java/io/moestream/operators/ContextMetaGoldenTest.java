package io.moestream.operators;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.junit.jupiter.api.Test;

/** Golden bytes of each ContextMeta format version must keep deserializing (restore from an old savepoint). */
class ContextMetaGoldenTest {

    static final Path V1 = Path.of("src/test/resources/state/context-meta-v1.bin");

    @Test
    void writeV1() throws Exception {
        if (!Boolean.getBoolean("state.writeGolden")) {
            return;
        }
        DataOutputSerializer out = new DataOutputSerializer(64);
        ContextMetaSerializer.INSTANCE.serialize(new ContextMeta("acme", "doc-1", ContextMeta.Kind.DOCUMENT, true, 3, 120,
                5_000_000L, 1_700_000_000_000L, 1_700_000_060_000L), out);
        DataOutputSerializer out2 = new DataOutputSerializer(64);
        ContextMetaSerializer.INSTANCE.serialize(new ContextMeta("acme", "chat-1", ContextMeta.Kind.CONVERSATION, true, 0, 42,
                0L, 1_700_000_000_000L, 1_700_000_001_000L), out2);
        byte[] a = out.getCopyOfBuffer();
        byte[] b = out2.getCopyOfBuffer();
        byte[] all = new byte[a.length + b.length];
        System.arraycopy(a, 0, all, 0, a.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        Files.write(V1, all);
        assertThat(new DataInputDeserializer(all).available()).isPositive();
    }
}
