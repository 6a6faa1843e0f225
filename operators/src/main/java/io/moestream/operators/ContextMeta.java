package io.moestream.operators;

import io.moestream.runtime.kv.KvCacheMeta;
import java.util.Arrays;
import java.util.Objects;

/**
 * What the inference operator knows about one context (a document or a conversation): everything but
 * the KV blocks, which live one per entry of {@link ContextStore#KV_BLOCKS_STATE}. Kept in keyed
 * state under {@link ContextStore#META_STATE}; serialized by {@link ContextMetaSerializer}.
 *
 * @param tenant        owner
 * @param contextId     document id or conversation id
 * @param kind          DOCUMENT or CONVERSATION
 * @param complete      a document's last part is in (always true for a conversation)
 * @param nextPart      the document part expected next (parts received so far)
 * @param tokens        positions in the KV-cache
 * @param prefillNanos  time spent prefilling a document's parts
 * @param createdMillis processing time of the first part or turn
 * @param updatedMillis processing time of the last change
 * @param tokenIds      the token ids of the cached positions ({@code tokens} of them); null only before
 *                      the context is first stored ({@link #withKv})
 * @param kvMeta        the KV-cache metadata ({@link KvCacheMeta}: model shape, codec, block size, length,
 *                      head policy; versioned, CRC-checked); null like {@code tokenIds}
 * @param kvStateBytes  bytes of the context's KV block entries in state, so that a restore can count the
 *                      state's size without reading every block
 */
public record ContextMeta(
        String tenant,
        String contextId,
        Kind kind,
        boolean complete,
        int nextPart,
        int tokens,
        long prefillNanos,
        long createdMillis,
        long updatedMillis,
        int[] tokenIds,
        byte[] kvMeta,
        long kvStateBytes) {

    /** The decoded KV-cache metadata (codec, block size, head policy ...); requires a stored context. */
    public KvCacheMeta kvCacheMeta() {
        return KvCacheMeta.decode(kvMeta);
    }

    /** This context holding the given cache state: its token ids, KV metadata and the bytes of its KV blocks. */
    ContextMeta withKv(int[] ids, byte[] kvMetaBytes, long blockBytes) {
        return new ContextMeta(tenant, contextId, kind, complete, nextPart, ids.length, prefillNanos, createdMillis,
                updatedMillis, ids, kvMetaBytes, blockBytes);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ContextMeta m && tenant.equals(m.tenant) && contextId.equals(m.contextId) && kind == m.kind
                && complete == m.complete && nextPart == m.nextPart && tokens == m.tokens && prefillNanos == m.prefillNanos
                && createdMillis == m.createdMillis && updatedMillis == m.updatedMillis && Arrays.equals(tokenIds, m.tokenIds)
                && Arrays.equals(kvMeta, m.kvMeta) && kvStateBytes == m.kvStateBytes;
    }

    @Override
    public int hashCode() {
        return Objects.hash(tenant, contextId, kind, complete, nextPart, tokens, prefillNanos, createdMillis, updatedMillis,
                Arrays.hashCode(tokenIds), Arrays.hashCode(kvMeta), kvStateBytes);
    }

    @Override
    public String toString() {
        return "ContextMeta[" + tenant + "/" + contextId + ", " + kind + ", complete " + complete + ", nextPart " + nextPart
                + ", tokens " + tokens + ", prefill " + prefillNanos + " ns, created " + createdMillis + ", updated "
                + updatedMillis + ", kvMeta " + (kvMeta == null ? "none (legacy)" : kvMeta.length + " B") + ", KV blocks "
                + (kvStateBytes < 0 ? "unknown" : kvStateBytes + " B") + "]";
    }

    /** The two kinds of context. */
    public enum Kind {
        DOCUMENT,
        CONVERSATION
    }

    /** A document whose part 0 has just been prefilled. */
    static ContextMeta documentStarted(String tenant, String documentId, int tokens, long prefillNanos, boolean last,
            long now) {
        return new ContextMeta(tenant, documentId, Kind.DOCUMENT, last, 1, tokens, prefillNanos, now, now, null, null, 0);
    }

    /** A conversation after its first turn. */
    static ContextMeta conversationStarted(String tenant, String conversationId, int tokens, long now) {
        return new ContextMeta(tenant, conversationId, Kind.CONVERSATION, true, 0, tokens, 0, now, now, null, null, 0);
    }

    /** This document after one more part. */
    ContextMeta withPart(int tokens, long partPrefillNanos, boolean last, long now) {
        return new ContextMeta(tenant, contextId, kind, last, nextPart + 1, tokens, prefillNanos + partPrefillNanos,
                createdMillis, now, tokenIds, kvMeta, kvStateBytes);
    }

    /** This conversation after one more turn. */
    ContextMeta withTurn(int tokens, long now) {
        return new ContextMeta(tenant, contextId, kind, complete, nextPart, tokens, prefillNanos, createdMillis, now,
                tokenIds, kvMeta, kvStateBytes);
    }
}
