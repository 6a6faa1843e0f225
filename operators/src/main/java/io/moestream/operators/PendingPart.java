package io.moestream.operators;

import io.moestream.schemas.Document;

/**
 * A document part buffered by the inference operator, in keyed state until its prefill is stored.
 *
 * @param part          the document part
 * @param arrivalMillis processing time it reached the operator
 */
public record PendingPart(Document part, long arrivalMillis) {}
