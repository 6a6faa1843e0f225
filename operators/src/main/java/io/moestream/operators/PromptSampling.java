package io.moestream.operators;

import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.schemas.Prompt;
import java.nio.charset.StandardCharsets;

/** Maps a {@link Prompt}'s sampling fields onto the runtime's {@link SamplingParams}. */
final class PromptSampling {

    private static final long FNV_OFFSET = 0xcbf29ce484222325L;
    private static final long FNV_PRIME = 0x100000001b3L;

    private PromptSampling() {}

    static SamplingParams params(Prompt prompt, int maxTokens) {
        return new SamplingParams(maxTokens, prompt.getTemperature(), prompt.getTopK(), prompt.getTopP(),
                seed(prompt), prompt.getStop());
    }

    /**
     * The prompt's {@code seed}, else a hash (64-bit FNV-1a of the UTF-8 bytes) of its
     * {@code request_id}, the same in every JVM, so a replay after a failure regenerates the same text.
     */
    static long seed(Prompt prompt) {
        if (prompt.getSeed() != null) {
            return prompt.getSeed();
        }
        long hash = FNV_OFFSET;
        for (byte b : prompt.getRequestId().getBytes(StandardCharsets.UTF_8)) {
            hash ^= b & 0xFF;
            hash *= FNV_PRIME;
        }
        return hash;
    }
}
