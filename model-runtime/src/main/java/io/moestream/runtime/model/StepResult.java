package io.moestream.runtime.model;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * Output of one {@link Engine#step}: per sequence of the plan (same order) the logits after its
 * last token, or null when the plan did not ask for them.
 */
public record StepResult(List<float[]> logits) {

    public StepResult {
        logits = Collections.unmodifiableList(Arrays.asList(logits.toArray(new float[0][])));
    }

    /** Logits (vocab) of sequence {@code i} of the plan, or null. */
    public float[] logits(int i) {
        return logits.get(i);
    }
}
