package io.moestream.operators;

import io.moestream.schemas.Document;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import org.apache.flink.api.java.functions.KeySelector;

/**
 * The key of the inference operator: {@code tenant + '\u0000' + id}, where the id is the document
 * id of a {@link Document}, the {@code context_id} of a DOCUMENT or CONVERSATION {@link Prompt}, and
 * the {@code request_id} of a STATELESS prompt (to spread them over subtasks).
 *
 * <p>Because the tenant is part of the key, a prompt can only ever reach keyed state of its own
 * tenant. The separator cannot occur inside a tenant: the decode functions reject tenants that
 * contain {@code '\u0000'}, so two different (tenant, id) pairs never give the same key.
 */
public final class ContextKey {

    public static final char SEPARATOR = '\u0000';

    private ContextKey() {}

    public static String of(String tenant, String id) {
        return tenant + SEPARATOR + id;
    }

    public static String of(Document document) {
        return of(document.getTenant(), document.getDocumentId());
    }

    public static String of(Prompt prompt) {
        return prompt.getMode() == PromptMode.STATELESS
                ? of(prompt.getTenant(), prompt.getRequestId())
                : of(prompt.getTenant(), prompt.getContextId());
    }

    /** The tenant part of a key. */
    public static String tenant(String key) {
        return key.substring(0, key.indexOf(SEPARATOR));
    }

    /** The id part of a key. */
    public static String id(String key) {
        return key.substring(key.indexOf(SEPARATOR) + 1);
    }

    public static KeySelector<Document, String> documentSelector() {
        return new DocumentSelector();
    }

    public static KeySelector<Prompt, String> promptSelector() {
        return new PromptSelector();
    }

    private static final class DocumentSelector implements KeySelector<Document, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(Document document) {
            return of(document);
        }
    }

    private static final class PromptSelector implements KeySelector<Prompt, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(Prompt prompt) {
            return of(prompt);
        }
    }
}
