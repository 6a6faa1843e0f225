package io.moestream.operators;

import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.kv.KvStateException;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.schemas.ContextReady;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.core.memory.DataOutputSerializer;

/**
 * The contexts in keyed state: per key a {@link ContextMeta} ({@link #META_STATE}) and its KV blocks
 * ({@link #KV_BLOCKS_STATE}: block index to {@code PagedKvCache.encodeBlock}), both with the state
 * TTL. Loads a context's cache, stores only the blocks a prefill or turn changed, keeps the byte
 * count of every context on this instance ({@code kvStateBytes}) and the per-tenant cap
 * ({@link TenantContexts}). Acts on the current key ({@link Keys#select}).
 */
final class ContextStore {

    /** {@link ContextMeta} of a context (includes the KV metadata and token ids). */
    static final String META_STATE = "context-meta";
    /** KV blocks of a context: block index to {@code PagedKvCache.encodeBlock(i)}. */
    static final String KV_BLOCKS_STATE = "kv-blocks";

    private final Model model;
    private final KvCodec codec;
    private final int blockTokens;
    private final ValueState<ContextMeta> meta;
    private final MapState<Integer, byte[]> blocks;
    private final Keys keys;
    private final InferenceMetrics metrics;
    private final TenantContexts tenants;
    private long bytes;

    ContextStore(Model model, KvStateConfig config, ValueState<ContextMeta> meta, MapState<Integer, byte[]> blocks,
            Keys keys, InferenceMetrics metrics) {
        this.model = model;
        this.codec = config.kvCodec();
        this.blockTokens = config.blockTokens();
        this.meta = meta;
        this.blocks = blocks;
        this.keys = keys;
        this.metrics = metrics;
        this.tenants = new TenantContexts(config.tenantMaxContexts(), this::count);
        model.newCache(codec, blockTokens); // fails now, naming codec and sizes, if they do not fit the model
    }

    /**
     * Sums the bytes of every stored context from its metadata (which counts its blocks' bytes, so no
     * block is read) and counts the contexts per tenant. Reading counts as a use for the state TTL.
     */
    void restore() throws Exception {
        List<String> owners = new ArrayList<>();
        bytes = 0;
        for (String key : keys.keys(META_STATE)) {
            keys.select(key);
            ContextMeta m = meta.value();
            if (m != null) { // expired ones read as null
                bytes += metaBytes(m) + m.kvStateBytes();
                owners.add(ContextKey.tenant(key));
            }
        }
        tenants.restore(owners);
    }

    /** The current key's metadata, or null. */
    ContextMeta meta() throws Exception {
        return meta.value();
    }

    /** A new, empty cache with the configured codec and block size. */
    KvCache newCache() {
        return model.newCache(codec, blockTokens);
    }

    /**
     * The current key's cache as stored (its own codec and head policy, whatever the configuration says
     * now), or a new empty one when {@code stored} is null.
     */
    KvCache load(ContextMeta stored) {
        if (stored == null) {
            return newCache();
        }
        return KvCache.restore(model, stored.tokenIds(), stored.kvMeta(), i -> {
            byte[] block;
            try {
                block = blocks.get(i);
            } catch (Exception e) {
                throw new KvStateException("cannot read KV block " + i + " of context '" + stored.contextId() + "': " + e, e);
            }
            if (block == null) {
                throw new KvStateException("KV block " + i + " of context '" + stored.contextId() + "' is missing from state");
            }
            return block;
        });
    }

    /**
     * Stores the current key's context: the blocks changed since {@link #load} (all of a new cache) and
     * {@code next} with the cache's token ids and KV metadata, and drops blocks past the cache's end (a
     * conversation cut back to a common prefix); keeps the byte count. {@code previous} is
     * the stored metadata the cache was loaded from (null: a new context, or a document started again,
     * whose old blocks go); {@code previousBytes} what the context took before.
     */
    ContextMeta store(KvCache cache, ContextMeta next, ContextMeta previous, long previousBytes) throws Exception {
        if (previous == null) {
            blocks.clear();
        } else { // a conversation cut back to a shorter prefix leaves no block behind
            for (int i = cache.paged().blockCount(); blocks.contains(i); i++) {
                blocks.remove(i);
            }
        }
        for (int i : cache.paged().dirtyBlocks()) {
            blocks.put(i, cache.paged().encodeBlock(i));
            metrics.kvBlocksWritten.inc();
        }
        cache.paged().markClean();
        byte[] kvMeta = cache.paged().encodeMeta();
        ContextMeta stored = next.withKv(cache.tokens(), kvMeta, cache.paged().stateBytes() - kvMeta.length);
        meta.update(stored);
        bytes += bytes(stored) - previousBytes;
        return stored;
    }

    /** Removes the current key's context, which took {@code previousBytes}. */
    void clear(ContextMeta previous, long previousBytes) throws Exception {
        blocks.clear();
        meta.clear();
        bytes -= previousBytes;
        if (previous != null) {
            tenants.gone(previous.tenant());
        }
    }

    /** Bytes a stored context takes in state: its serialized metadata plus its blocks (0 for null). */
    long bytes(ContextMeta stored) {
        return stored == null ? 0 : metaBytes(stored) + stored.kvStateBytes();
    }

    private static long metaBytes(ContextMeta m) {
        DataOutputSerializer out = new DataOutputSerializer(256);
        try {
            ContextMetaSerializer.INSTANCE.serialize(m, out);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return out.length();
    }

    /** Bytes of every context on this instance. */
    long bytes() {
        return bytes;
    }

    /** Whether {@code tenant} may create one more context (then it is counted). */
    boolean admitNewContext(String tenant, long now) throws Exception {
        return tenants.admit(tenant, now);
    }

    /** A context of {@code tenant} was not created after all (or went). */
    void contextGone(String tenant) {
        tenants.gone(tenant);
    }

    int tenantCap() {
        return tenants.cap();
    }

    private Map<String, Integer> count(String tenant) throws Exception {
        Map<String, Integer> out = new HashMap<>();
        String current = keys.current();
        try {
            for (String key : keys.keys(META_STATE)) {
                if (tenant == null || ContextKey.tenant(key).equals(tenant)) {
                    keys.select(key);
                    if (meta.value() != null) {
                        out.merge(ContextKey.tenant(key), 1, Integer::sum);
                    }
                }
            }
        } finally {
            if (current != null) {
                keys.select(current);
            }
        }
        return out;
    }

    /** The {@link ContextReady} of a completed document: bytes in state, compression against fp16. */
    ContextReady ready(ContextMeta stored, String modelName) {
        long kvBytes = bytes(stored);
        long fp16Bytes = 2L * model.config().layers() * stored.tokens() * model.config().kvDim() * 2L;
        return ContextReady.newBuilder()
                .setTenant(stored.tenant())
                .setContextId(stored.contextId())
                .setTokens(stored.tokens())
                .setKvBytes(kvBytes)
                .setCompressionRatio(kvBytes == 0 ? 0f : (float) fp16Bytes / kvBytes)
                .setPrefillMs(TimeUnit.NANOSECONDS.toMillis(stored.prefillNanos()))
                .setModel(modelName)
                .build();
    }
}
