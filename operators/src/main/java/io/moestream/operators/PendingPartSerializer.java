package io.moestream.operators;

import io.moestream.schemas.AvroCodec;
import io.moestream.schemas.Document;
import java.io.IOException;
import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.base.TypeSerializerSingleton;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;

/**
 * Serializer of {@link PendingPart}. Every value starts with its format version. The part is
 * kept in Avro single-object encoding, which names its writer schema by fingerprint, so parts
 * buffered before a compatible schema change still decode after it.
 *
 * <p>Version 1: byte version, long arrivalMillis, int length, the part's single-object bytes.
 */
public final class PendingPartSerializer extends TypeSerializerSingleton<PendingPart> {

    private static final long serialVersionUID = 1L;

    public static final PendingPartSerializer INSTANCE = new PendingPartSerializer();

    static final int CURRENT_VERSION = 1;

    private static final AvroCodec<Document> CODEC = AvroCodec.forDocument();

    @Override
    public boolean isImmutableType() {
        return false; // Avro records have setters
    }

    @Override
    public PendingPart createInstance() {
        return null;
    }

    @Override
    public PendingPart copy(PendingPart from) {
        return new PendingPart(Document.newBuilder(from.part()).build(), from.arrivalMillis());
    }

    @Override
    public PendingPart copy(PendingPart from, PendingPart reuse) {
        return copy(from);
    }

    @Override
    public int getLength() {
        return -1;
    }

    @Override
    public void serialize(PendingPart p, DataOutputView out) throws IOException {
        byte[] part = CODEC.encode(p.part());
        out.writeByte(CURRENT_VERSION);
        out.writeLong(p.arrivalMillis());
        out.writeInt(part.length);
        out.write(part);
    }

    @Override
    public PendingPart deserialize(DataInputView in) throws IOException {
        int version = in.readUnsignedByte();
        if (version != 1) {
            throw new IOException("unknown PendingPart format version " + version + " (this build reads 1.."
                    + CURRENT_VERSION + ")");
        }
        long arrival = in.readLong();
        byte[] part = new byte[in.readInt()];
        in.readFully(part);
        return new PendingPart(CODEC.decode(part), arrival);
    }

    @Override
    public PendingPart deserialize(PendingPart reuse, DataInputView in) throws IOException {
        return deserialize(in);
    }

    @Override
    public void copy(DataInputView in, DataOutputView out) throws IOException {
        serialize(deserialize(in), out);
    }

    @Override
    public TypeSerializerSnapshot<PendingPart> snapshotConfiguration() {
        return new Snapshot();
    }

    /** Snapshot of the (stateless) serializer; values carry their own version. */
    public static final class Snapshot extends SimpleTypeSerializerSnapshot<PendingPart> {
        public Snapshot() {
            super(() -> INSTANCE);
        }
    }
}
