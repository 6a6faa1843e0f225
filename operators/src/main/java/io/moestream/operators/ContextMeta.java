package io.moestream.operators;

/**
 * What the inference operator knows about one context (a document or a conversation) besides its
 * KV-cache bytes. Kept in keyed state under {@link InferenceOperator#META_STATE}; serialized by
 * {@link ContextMetaSerializer}.
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
        long updatedMillis) {

    /** The two kinds of context. */
    public enum Kind {
        DOCUMENT,
        CONVERSATION
    }

    /** A document whose part 0 has just been prefilled. */
    static ContextMeta documentStarted(String tenant, String documentId, int tokens, long prefillNanos, boolean last,
            long now) {
        return new ContextMeta(tenant, documentId, Kind.DOCUMENT, last, 1, tokens, prefillNanos, now, now);
    }

    /** A conversation after its first turn. */
    static ContextMeta conversationStarted(String tenant, String conversationId, int tokens, long now) {
        return new ContextMeta(tenant, conversationId, Kind.CONVERSATION, true, 0, tokens, 0, now, now);
    }

    /** This document after one more part. */
    ContextMeta withPart(int tokens, long partPrefillNanos, boolean last, long now) {
        return new ContextMeta(tenant, contextId, kind, last, nextPart + 1, tokens, prefillNanos + partPrefillNanos,
                createdMillis, now);
    }

    /** This conversation after one more turn. */
    ContextMeta withTurn(int tokens, long now) {
        return new ContextMeta(tenant, contextId, kind, complete, nextPart, tokens, prefillNanos, createdMillis, now);
    }
}
