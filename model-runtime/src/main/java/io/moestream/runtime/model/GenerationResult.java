package io.moestream.runtime.model;

/**
 * What one request produced.
 *
 * @param tokenIds     generated token ids (without the end-of-sequence token)
 * @param text         their UTF-8 text, cut before a stop sequence
 * @param finishReason why generation ended
 * @param prefillNanos time spent prefilling this request's prompt
 * @param decodeNanos  time spent decoding its tokens
 */
public record GenerationResult(int[] tokenIds, String text, FinishReason finishReason, long prefillNanos, long decodeNanos) {}
