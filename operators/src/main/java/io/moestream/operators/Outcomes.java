package io.moestream.operators;

import io.moestream.runtime.constrain.UnsupportedSchemaException;
import io.moestream.schemas.Document;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;

/**
 * The catalogue of the inference operator's error outcomes: every {@link InferenceError} it emits
 * is built here, with its code and its message (what happened, and what the sender can do), so the
 * wording is in one place and docs/operators.md's table can be checked against it.
 */
final class Outcomes {

    private Outcomes() {}

    // ---------------- prompts ----------------

    static InferenceError.Builder duplicate(Prompt p, long ageMillis, long windowMillis, long now) {
        return prompt(p, ErrorCode.DUPLICATE_REQUEST, "request_id '" + p.getRequestId() + "' of tenant '" + p.getTenant()
                + "' was already received " + ageMillis + " ms ago (duplicate window " + windowMillis
                + " ms): the first request is answered; give every new request a new id", now);
    }

    static InferenceError.Builder conversationOnDocument(Prompt p, long now) {
        return prompt(p, ErrorCode.INVALID_PARAMS, "context '" + p.getContextId() + "' is a document: ask about it with"
                + " mode DOCUMENT, or use another context_id for the conversation", now);
    }

    static InferenceError.Builder documentIsConversation(Prompt p, long now) {
        return prompt(p, ErrorCode.UNKNOWN_CONTEXT, "tenant '" + p.getTenant() + "' has no document '" + p.getContextId()
                + "' (it is a conversation): use mode CONVERSATION, or check context_id and tenant", now);
    }

    static InferenceError.Builder noTokens(Prompt p, long now) {
        return prompt(p, ErrorCode.INVALID_PARAMS, "text encodes to no tokens: send some text", now);
    }

    static InferenceError.Builder unsupportedFormat(Prompt p, UnsupportedSchemaException e, long now) {
        return prompt(p, ErrorCode.INVALID_PARAMS, "response_format is refused: " + e.getMessage()
                + "; keep to the supported subset (docs/structured-output.md)", now);
    }

    static InferenceError.Builder contextOverflow(Prompt p, int promptTokens, int cached, int contextLength, long now) {
        return prompt(p, ErrorCode.CONTEXT_OVERFLOW, "prompt has " + promptTokens + " tokens after " + cached
                + " tokens of context, but the model's context window is " + contextLength + " tokens and the answer"
                + " needs at least one: shorten the prompt" + (cached > 0 ? " or start a new context" : ""), now);
    }

    static InferenceError.Builder maxTokens(Prompt p, int cap, long now) {
        return prompt(p, ErrorCode.INVALID_PARAMS, "max_tokens is " + p.getMaxTokens() + ": it must be between 1 and "
                + cap, now);
    }

    static InferenceError.Builder contextLimit(Prompt p, int cap, long now) {
        return prompt(p, ErrorCode.CONTEXT_LIMIT, contextLimitMessage(p.getTenant(), p.getContextId(), cap), now);
    }

    static InferenceError.Builder cannotPrepare(Prompt p, RuntimeException e, long now) {
        return prompt(p, ErrorCode.MODEL_ERROR, "cannot prepare the request: " + e, now);
    }

    static InferenceError.Builder modelFailed(Prompt p, RuntimeException e, long now) {
        return prompt(p, ErrorCode.MODEL_ERROR, "the model failed on this request: " + e, now);
    }

    static InferenceError.Builder unknownDocument(Prompt p, long waitMillis, long now) {
        return prompt(p, ErrorCode.UNKNOWN_CONTEXT, "tenant '" + p.getTenant() + "' has no document '" + p.getContextId()
                + "' (none arrived within " + waitMillis + " ms): send the document first, or check context_id and"
                + " tenant", now);
    }

    static InferenceError.Builder documentTimedOut(Prompt p, int nextPart, long waitMillis, long now) {
        return prompt(p, ErrorCode.DOCUMENT_INCOMPLETE, "document '" + p.getContextId() + "' did not complete within "
                + waitMillis + " ms (received parts 0.." + (nextPart - 1) + ", the part with last=true has not"
                + " arrived): send its remaining parts, then ask again", now);
    }

    static InferenceError.Builder documentIncomplete(Prompt p, String why, long now) {
        return prompt(p, ErrorCode.DOCUMENT_INCOMPLETE, why, now);
    }

    static String inputEnded(String documentId) {
        return "the input ended before document '" + documentId + "' completed";
    }

    static String documentRejected(String documentId, String message) {
        return "document '" + documentId + "' was rejected: " + message;
    }

    // ---------------- document parts ----------------

    static InferenceError.Builder partOnConversation(Document d, long now) {
        return document(d, ErrorCode.INVALID_PARAMS, "context '" + d.getDocumentId() + "' is a conversation of tenant '"
                + d.getTenant() + "': give the document another id", now);
    }

    /** The part is not the one expected next, or null when it is. */
    static InferenceError.Builder outOfOrder(Document d, ContextMeta meta, long now) {
        if (d.getPart() == 0) {
            return null;
        }
        String problem = meta == null
                ? "arrived but part 0 did not (or the document was rejected): send the parts in order, starting at 0"
                : meta.complete()
                        ? "arrived after its last part (" + (meta.nextPart() - 1)
                                + "): to replace the document send it again from part 0"
                        : d.getPart() != meta.nextPart()
                                ? "arrived but part " + meta.nextPart() + " is expected next: send the parts in"
                                        + " order, without gaps"
                                : null;
        return problem == null ? null : document(d, ErrorCode.DOCUMENT_OUT_OF_ORDER, "part " + d.getPart()
                + " of document '" + d.getDocumentId() + "' " + problem, now);
    }

    static InferenceError.Builder contextLimit(Document d, int cap, long now) {
        return document(d, ErrorCode.CONTEXT_LIMIT, contextLimitMessage(d.getTenant(), d.getDocumentId(), cap), now);
    }

    static InferenceError.Builder unreadable(Document d, RuntimeException e, long now) {
        return document(d, ErrorCode.MODEL_ERROR, "cannot read the stored cache of document '" + d.getDocumentId()
                + "': " + e + "; send the document again from part 0", now);
    }

    /** The message of {@link ErrorCode#DOCUMENT_TOO_LARGE}; {@code byConfig}: the limit is moestream.document.max-tokens. */
    static String tooLargeMessage(Document d, int tokens, int limit, boolean byConfig) {
        return "document '" + d.getDocumentId() + "' needs " + tokens + " tokens up to part " + d.getPart()
                + " but documents may have at most " + limit + " tokens ("
                + (byConfig ? "moestream.document.max-tokens" : "the model's context window")
                + "): split it into smaller documents";
    }

    static InferenceError.Builder tooLarge(Document d, String message, long now) {
        return document(d, ErrorCode.DOCUMENT_TOO_LARGE, message, now);
    }

    static InferenceError.Builder prefillFailed(Document d, RuntimeException e, long now) {
        return document(d, ErrorCode.MODEL_ERROR, "prefill of part " + d.getPart() + " of document '" + d.getDocumentId()
                + "' failed: " + e + "; the part can be sent again", now);
    }

    // ---------------- records ----------------

    private static String contextLimitMessage(String tenant, String contextId, int cap) {
        return "tenant '" + tenant + "' already holds " + cap + " contexts (the cap of moestream.tenant.max-contexts per"
                + " parallel instance), so context '" + contextId + "' cannot be created: reuse or let old contexts"
                + " expire (moestream.state.ttl), or raise the cap";
    }

    static InferenceError.Builder prompt(Prompt prompt, ErrorCode code, String message, long nowMillis) {
        return InferenceError.newBuilder()
                .setRequestId(prompt.getRequestId())
                .setTenant(prompt.getTenant())
                .setContextId(prompt.getMode() == PromptMode.STATELESS ? null : prompt.getContextId())
                .setCode(code)
                .setMessage(message)
                .setTimestampMs(nowMillis);
    }

    static InferenceError.Builder document(Document document, ErrorCode code, String message, long nowMillis) {
        return InferenceError.newBuilder()
                .setRequestId(null)
                .setTenant(document.getTenant())
                .setContextId(document.getDocumentId())
                .setCode(code)
                .setMessage(message)
                .setTimestampMs(nowMillis);
    }
}
