package io.moestream.operators;

import io.moestream.runtime.constrain.Grammar;
import io.moestream.runtime.constrain.UnsupportedSchemaException;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.ResponseFormat;
import java.nio.charset.StandardCharsets;

/** Maps a {@link Prompt}'s sampling fields onto the runtime's {@link SamplingParams} and its {@link Grammar}. */
final class PromptSampling {

    private static final long FNV_OFFSET = 0xcbf29ce484222325L;
    private static final long FNV_PRIME = 0x100000001b3L;

    private PromptSampling() {}

    static SamplingParams params(Prompt prompt, int maxTokens) {
        return new SamplingParams(maxTokens, prompt.getTemperature(), prompt.getTopK(), prompt.getTopP(),
                seed(prompt), prompt.getStop());
    }

    /**
     * The compiled constraint of the prompt's {@code response_format} (from {@link Grammar}'s cache when
     * the same constraint was seen before), or null without one. {@link PromptValidator} has checked
     * that exactly one of its fields is set.
     *
     * @throws UnsupportedSchemaException naming the keyword, when the schema or regex cannot be compiled
     */
    static Grammar grammar(Prompt prompt) {
        ResponseFormat f = prompt.getResponseFormat();
        if (f == null) {
            return null;
        }
        if (f.getJsonSchema() != null) {
            return Grammar.jsonSchema(f.getJsonSchema());
        }
        return f.getRegex() != null ? Grammar.regex(f.getRegex()) : Grammar.choice(f.getChoices());
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
