package io.moestream.operators;

import java.io.IOException;
import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.base.TypeSerializerSingleton;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.types.StringValue;

/**
 * Serializer of {@link ContextMeta}. Every value starts with its format version, so values written
 * by an older version stay readable: read paths are kept per version.
 *
 * <p>Version 1: byte version, string tenant, string contextId, byte kind, boolean complete,
 * int nextPart, int tokens, long prefillNanos, long createdMillis, long updatedMillis.
 * (Golden bytes: {@code src/test/resources/state/context-meta-v1.bin}; read as a context without KV
 * metadata, whose cache is in the legacy whole-cache state.)
 *
 * <p>Version 2: version 1's fields, then int n (-1 = none) and n ints of token ids, then int m (-1 =
 * none) and m bytes of KV-cache metadata ({@link io.moestream.runtime.kv.KvCacheMeta}).
 * (Golden bytes: {@code src/test/resources/state/context-meta-v2.bin}.)
 *
 * <p>Version 3: version 2's fields, then long kvStateBytes: the bytes of the context's KV block
 * entries, so a restore sums the state's size from the metadata alone (-1 when read from 1-2).
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
        out.writeInt(ids == null ? -1 : ids.length);
        if (ids != null) {
            for (int id : ids) {
                out.writeInt(id);
            }
        }
        byte[] kv = m.kvMeta();
        out.writeInt(kv == null ? -1 : kv.length);
        if (kv != null) {
            out.write(kv);
        }
        out.writeLong(m.kvStateBytes());
    }

    @Override
    public ContextMeta deserialize(DataInputView in) throws IOException {
        int version = in.readUnsignedByte();
        if (version < 1 || version > CURRENT_VERSION) {
            throw new IOException("unknown ContextMeta format version " + version + " (this build reads 1.."
                    + CURRENT_VERSION + ")");
        }
        ContextMeta v1 = readV1(in);
        if (version == 1) {
            return v1;
        }
        int n = in.readInt();
        int[] ids = null;
        if (n >= 0) {
            ids = new int[n];
            for (int i = 0; i < n; i++) {
                ids[i] = in.readInt();
            }
        }
        int m = in.readInt();
        byte[] kv = null;
        if (m >= 0) {
            kv = new byte[m];
            in.readFully(kv);
        }
        long kvStateBytes = version >= 3 ? in.readLong() : -1;
        return new ContextMeta(v1.tenant(), v1.contextId(), v1.kind(), v1.complete(), v1.nextPart(), v1.tokens(),
                v1.prefillNanos(), v1.createdMillis(), v1.updatedMillis(), ids, kv, kvStateBytes);
    }

    private static ContextMeta readV1(DataInputView in) throws IOException {
        String tenant = StringValue.readString(in);
        String contextId = StringValue.readString(in);
        ContextMeta.Kind kind = KINDS[in.readUnsignedByte()];
        boolean complete = in.readBoolean();
        int nextPart = in.readInt();
        int tokens = in.readInt();
        long prefillNanos = in.readLong();
        long created = in.readLong();
        long updated = in.readLong();
        return new ContextMeta(tenant, contextId, kind, complete, nextPart, tokens, prefillNanos, created, updated);
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
