package io.moestream.operators;

import java.io.IOException;
import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.base.TypeSerializerSingleton;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.types.StringValue;

/**
 * Serializer of {@link ContextMeta}. Every value starts with its format version, so a later format
 * can add a read path per version.
 *
 * <p>Version 3: byte version, string tenant, string contextId, byte kind, boolean complete, int
 * nextPart, int tokens, long prefillNanos, long createdMillis, long updatedMillis, int n and n ints of
 * token ids, int m and m bytes of KV-cache metadata ({@link io.moestream.runtime.kv.KvCacheMeta}),
 * long kvStateBytes (the bytes of the context's KV block entries, so a restore sums the state's size
 * from the metadata alone). Golden bytes: {@code src/test/resources/state/context-meta-v3.bin}.
 */
public final class ContextMetaSerializer extends TypeSerializerSingleton<ContextMeta> {

    private static final long serialVersionUID = 1L;

    public static final ContextMetaSerializer INSTANCE = new ContextMetaSerializer();

    static final int CURRENT_VERSION = 3;

    private static final ContextMeta.Kind[] KINDS = ContextMeta.Kind.values();

    @Override
    public boolean isImmutableType() {
        return true;
    }

    @Override
    public ContextMeta createInstance() {
        return null;
    }

    @Override
    public ContextMeta copy(ContextMeta from) {
        return from;
    }

    @Override
    public ContextMeta copy(ContextMeta from, ContextMeta reuse) {
        return from;
    }

    @Override
    public int getLength() {
        return -1;
    }

    @Override
    public void serialize(ContextMeta m, DataOutputView out) throws IOException {
        out.writeByte(CURRENT_VERSION);
        StringValue.writeString(m.tenant(), out);
        StringValue.writeString(m.contextId(), out);
        out.writeByte(m.kind().ordinal());
        out.writeBoolean(m.complete());
        out.writeInt(m.nextPart());
        out.writeInt(m.tokens());
        out.writeLong(m.prefillNanos());
        out.writeLong(m.createdMillis());
        out.writeLong(m.updatedMillis());
        int[] ids = m.tokenIds();
        out.writeInt(ids.length);
        for (int id : ids) {
            out.writeInt(id);
        }
        byte[] kv = m.kvMeta();
        out.writeInt(kv.length);
        out.write(kv);
        out.writeLong(m.kvStateBytes());
    }

    @Override
    public ContextMeta deserialize(DataInputView in) throws IOException {
        int version = in.readUnsignedByte();
        if (version != CURRENT_VERSION) {
            throw new IOException("unknown ContextMeta format version " + version + " (this build reads "
                    + CURRENT_VERSION + ")");
        }
        String tenant = StringValue.readString(in);
        String contextId = StringValue.readString(in);
        ContextMeta.Kind kind = KINDS[in.readUnsignedByte()];
        boolean complete = in.readBoolean();
        int nextPart = in.readInt();
        int tokens = in.readInt();
        long prefillNanos = in.readLong();
        long created = in.readLong();
        long updated = in.readLong();
        int[] ids = new int[in.readInt()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = in.readInt();
        }
        byte[] kv = new byte[in.readInt()];
        in.readFully(kv);
        long kvStateBytes = in.readLong();
        return new ContextMeta(tenant, contextId, kind, complete, nextPart, tokens, prefillNanos, created, updated, ids,
                kv, kvStateBytes);
    }

    @Override
    public ContextMeta deserialize(ContextMeta reuse, DataInputView in) throws IOException {
        return deserialize(in);
    }

    @Override
    public void copy(DataInputView in, DataOutputView out) throws IOException {
        serialize(deserialize(in), out);
    }

    @Override
    public TypeSerializerSnapshot<ContextMeta> snapshotConfiguration() {
        return new Snapshot();
    }

    /** Snapshot of the (stateless) serializer; values carry their own version. */
    public static final class Snapshot extends SimpleTypeSerializerSnapshot<ContextMeta> {
        public Snapshot() {
            super(() -> INSTANCE);
        }
    }
}
