package io.moestream.operators;

import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.Prompt;
import java.io.IOException;
import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.base.TypeSerializerSingleton;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;

/**
 * Serializer of {@link PendingPrompt}. Every value starts with its format version. The prompt is
 * kept in Avro single-object encoding, which names its writer schema by fingerprint, so prompts
 * buffered before a compatible schema change still decode after it.
 *
 * <p>Version 1: byte version, long arrivalMillis, int length, the prompt's single-object bytes.
 */
public final class PendingPromptSerializer extends TypeSerializerSingleton<PendingPrompt> {

    private static final long serialVersionUID = 1L;

    public static final PendingPromptSerializer INSTANCE = new PendingPromptSerializer();

    static final int CURRENT_VERSION = 1;

    private static final AvroCodec<Prompt> CODEC = AvroCodec.forPrompt();

    @Override
    public boolean isImmutableType() {
        return false; // Avro records have setters
    }

    @Override
    public PendingPrompt createInstance() {
        return null;
    }

    @Override
    public PendingPrompt copy(PendingPrompt from) {
        return new PendingPrompt(Prompt.newBuilder(from.prompt()).build(), from.arrivalMillis());
    }

    @Override
    public PendingPrompt copy(PendingPrompt from, PendingPrompt reuse) {
        return copy(from);
    }

    @Override
    public int getLength() {
        return -1;
    }

    @Override
    public void serialize(PendingPrompt p, DataOutputView out) throws IOException {
        byte[] prompt = CODEC.encode(p.prompt());
        out.writeByte(CURRENT_VERSION);
        out.writeLong(p.arrivalMillis());
        out.writeInt(prompt.length);
        out.write(prompt);
    }

    @Override
    public PendingPrompt deserialize(DataInputView in) throws IOException {
        int version = in.readUnsignedByte();
        if (version != 1) {
            throw new IOException("unknown PendingPrompt format version " + version + " (this build reads 1.."
                    + CURRENT_VERSION + ")");
        }
        long arrival = in.readLong();
        byte[] prompt = new byte[in.readInt()];
        in.readFully(prompt);
        return new PendingPrompt(CODEC.decode(prompt), arrival);
    }

    @Override
    public PendingPrompt deserialize(PendingPrompt reuse, DataInputView in) throws IOException {
        return deserialize(in);
    }

    @Override
    public void copy(DataInputView in, DataOutputView out) throws IOException {
        serialize(deserialize(in), out);
    }

    @Override
    public TypeSerializerSnapshot<PendingPrompt> snapshotConfiguration() {
        return new Snapshot();
    }

    /** Snapshot of the (stateless) serializer; values carry their own version. */
    public static final class Snapshot extends SimpleTypeSerializerSnapshot<PendingPrompt> {
        public Snapshot() {
            super(() -> INSTANCE);
        }
    }
}
