package io.moestream.operators;

import static io.moestream.operators.TestRecords.stateless;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.schemas.Prompt;
import java.io.IOException;
import java.util.List;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.junit.jupiter.api.Test;

class SerializersTest {

    @Test
    void contextMetaRoundTrips() throws IOException {
        ContextMeta meta = new ContextMeta("acme", "doc", ContextMeta.Kind.DOCUMENT, true, 3, 3, 5_000_000L, 10L, 20L,
                new int[] {1, 2, 3}, new byte[] {5, 6}, 77L);
        assertThat(roundTrip(ContextMetaSerializer.INSTANCE, meta)).isEqualTo(meta);
    }

    @Test
    void pendingPartRoundTrips() throws IOException {
        PendingPart part = new PendingPart(TestRecords.part("acme", "doc", 2, true, "The End."), 4321L);
        assertThat(roundTrip(PendingPartSerializer.INSTANCE, part)).isEqualTo(part);
    }

    @Test
    void pendingPromptRoundTripsAndCopiesDeeply() throws IOException {
        Prompt prompt = Prompt.newBuilder(stateless("acme", "r1", "Hello", 8)).setSeed(9L).setStop(List.of("\n")).build();
        PendingPrompt pending = new PendingPrompt(prompt, 1234L);
        assertThat(roundTrip(PendingPromptSerializer.INSTANCE, pending)).isEqualTo(pending);

        PendingPrompt copy = PendingPromptSerializer.INSTANCE.copy(pending);
        copy.prompt().setText("changed");
        assertThat(pending.prompt().getText()).isEqualTo("Hello");
    }

    @Test
    void unknownFormatVersionFailsClearly() {
        byte[] bytes = {9, 0, 0, 0};
        assertThatThrownBy(() -> ContextMetaSerializer.INSTANCE.deserialize(new DataInputDeserializer(bytes)))
                .isInstanceOf(IOException.class).hasMessageContaining("version 9");
    }

    @Test
    void snapshotsRestoreTheSameSerializer() {
        TypeSerializerSnapshot<ContextMeta> snapshot = ContextMetaSerializer.INSTANCE.snapshotConfiguration();
        assertThat(snapshot.restoreSerializer()).isSameAs(ContextMetaSerializer.INSTANCE);
        assertThat(snapshot.getCurrentVersion()).isPositive();
        assertThat(PendingPromptSerializer.INSTANCE.snapshotConfiguration().restoreSerializer())
                .isSameAs(PendingPromptSerializer.INSTANCE);
    }

    private static <T> T roundTrip(TypeSerializer<T> serializer, T value) throws IOException {
        DataOutputSerializer out = new DataOutputSerializer(64);
        serializer.serialize(value, out);
        DataInputDeserializer in = new DataInputDeserializer(out.getCopyOfBuffer());
        T read = serializer.deserialize(in);
        assertThat(in.available()).isZero();
        return read;
    }
}
