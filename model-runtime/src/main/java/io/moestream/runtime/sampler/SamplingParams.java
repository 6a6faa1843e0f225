package io.moestream.runtime.sampler;

import java.util.List;

/**
 * How to pick tokens for one request.
 *
 * @param maxTokens   most tokens to generate (&gt; 0)
 * @param temperature 0 = greedy (argmax, ties to the lowest id)
 * @param topK        0 = off
 * @param topP        1 = off
 * @param seed        seed of this request's random stream; a replay with the same seed gives the same text
 * @param stop        stop sequences; generation ends before the first occurrence (empty = none)
 */
public record SamplingParams(int maxTokens, float temperature, int topK, float topP, long seed, List<String> stop) {

    public SamplingParams {
        stop = List.copyOf(stop);
    }

    public static SamplingParams greedy(int maxTokens) {
        return new SamplingParams(maxTokens, 0f, 0, 1f, 0L, List.of());
    }

    /** Index in {@code text} where the earliest of the stop sequences begins, or -1 if none occurs. */
    public int firstStop(String text) {
        int cut = -1;
        for (String s : stop) {
            if (s.isEmpty()) {
                continue;
            }
            int i = text.indexOf(s);
            if (i >= 0 && (cut < 0 || i < cut)) {
                cut = i;
            }
        }
        return cut;
    }
}
