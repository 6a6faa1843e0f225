package io.moestream.operators;

import io.moestream.schemas.Document;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;

/** Builders of input records for tests. */
final class TestRecords {

    private TestRecords() {}

    static Prompt stateless(String tenant, String requestId, String text, int maxTokens) {
        return Prompt.newBuilder()
                .setRequestId(requestId)
                .setTenant(tenant)
                .setMode(PromptMode.STATELESS)
                .setText(text)
                .setMaxTokens(maxTokens)
                .build();
    }

    static Prompt askDocument(String tenant, String requestId, String documentId, String text, int maxTokens) {
        return Prompt.newBuilder(stateless(tenant, requestId, text, maxTokens))
                .setMode(PromptMode.DOCUMENT)
                .setContextId(documentId)
                .build();
    }

    static Prompt turn(String tenant, String requestId, String conversationId, String text, int maxTokens) {
        return Prompt.newBuilder(stateless(tenant, requestId, text, maxTokens))
                .setMode(PromptMode.CONVERSATION)
                .setContextId(conversationId)
                .build();
    }

    static Document part(String tenant, String documentId, int part, boolean last, String text) {
        return Document.newBuilder()
                .setTenant(tenant)
                .setDocumentId(documentId)
                .setPart(part)
                .setLast(last)
                .setText(text)
                .build();
    }
}
