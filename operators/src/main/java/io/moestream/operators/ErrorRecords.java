package io.moestream.operators;

import io.moestream.schemas.Document;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;

/** Builds the {@link InferenceError} that answers a prompt or a document part. */
final class ErrorRecords {

    private ErrorRecords() {}

    static InferenceError.Builder forPrompt(Prompt prompt, ErrorCode code, String message, long nowMillis) {
        return InferenceError.newBuilder()
                .setRequestId(prompt.getRequestId())
                .setTenant(prompt.getTenant())
                .setContextId(prompt.getMode() == PromptMode.STATELESS ? null : prompt.getContextId())
                .setCode(code)
                .setMessage(message)
                .setTimestampMs(nowMillis);
    }

    static InferenceError.Builder forDocument(Document document, ErrorCode code, String message, long nowMillis) {
        return InferenceError.newBuilder()
                .setRequestId(null)
                .setTenant(document.getTenant())
                .setContextId(document.getDocumentId())
                .setCode(code)
                .setMessage(message)
                .setTimestampMs(nowMillis);
    }
}
