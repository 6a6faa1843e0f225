package io.moestream.jobs.kafka;

import io.moestream.schemas.ContextReady;
import io.moestream.schemas.Document;
import io.moestream.schemas.Generation;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import java.nio.charset.StandardCharsets;
import org.apache.avro.specific.SpecificRecord;

/**
 * The Kafka key of each record type. Records of one context share a key, so they stay in order
 * on one partition and reach the same Flink key group: {@code tenant/context_id}
 * ({@code tenant/document_id} for documents); records without a context are keyed by
 * {@code request_id} to spread the load.
 */
public final class RecordKeys {

    private RecordKeys() {}

    /** The key as a string, or null when the record has nothing to key by. */
    public static String keyOf(SpecificRecord record) {
        if (record instanceof Prompt) {
            Prompt prompt = (Prompt) record;
            return contextKey(prompt.getTenant(), prompt.getContextId(), prompt.getRequestId());
        }
        if (record instanceof Document) {
            Document document = (Document) record;
            return document.getTenant() + "/" + document.getDocumentId();
        }
        if (record instanceof Generation) {
            Generation generation = (Generation) record;
            return contextKey(generation.getTenant(), generation.getContextId(), generation.getRequestId());
        }
        if (record instanceof ContextReady) {
            ContextReady ready = (ContextReady) record;
            return ready.getTenant() + "/" + ready.getContextId();
        }
        if (record instanceof InferenceError) {
            InferenceError error = (InferenceError) record;
            return error.getTenant() == null ? error.getRequestId()
                    : contextKey(error.getTenant(), error.getContextId(), error.getRequestId());
        }
        throw new IllegalArgumentException("no key rule for " + record.getSchema().getFullName());
    }

    /** {@link #keyOf} as UTF-8 bytes (null stays null). */
    public static byte[] keyBytes(SpecificRecord record) {
        String key = keyOf(record);
        return key == null ? null : key.getBytes(StandardCharsets.UTF_8);
    }

    private static String contextKey(String tenant, String contextId, String requestId) {
        return contextId == null ? requestId : tenant + "/" + contextId;
    }
}
