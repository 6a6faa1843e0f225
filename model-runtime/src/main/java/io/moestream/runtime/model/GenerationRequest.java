package io.moestream.runtime.model;

import io.moestream.runtime.sampler.SamplingParams;

/**
 * One sequence to run in a batch.
 *
 * @param cache        the sequence's KV-cache; prompt and generated tokens are appended to it
 * @param promptIds    tokens to prefill after what the cache already holds
 * @param params       sampling parameters
 * @param commitAnswer when true the last sampled token is fed too, so the cache ends holding the
 *                     whole turn (prompt + answer) as a conversation needs
 */
public record GenerationRequest(KvCache cache, int[] promptIds, SamplingParams params, boolean commitAnswer) {}
