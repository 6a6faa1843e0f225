package io.moestream.operators;

import io.moestream.schemas.Prompt;

/**
 * A prompt buffered by the inference operator, in keyed state until it is answered (or, for a
 * DOCUMENT prompt whose document is still arriving, until the document completes).
 *
 * @param prompt        the request
 * @param arrivalMillis processing time it reached the operator ({@code queued_ms} is measured from here)
 */
public record PendingPrompt(Prompt prompt, long arrivalMillis) {}
