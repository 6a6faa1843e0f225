package io.moestream.runtime.sampler;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits as {@link SamplingParams} say: greedy at temperature 0 (argmax,
 * ties to the lowest id), otherwise temperature, then top-k, then top-p (nucleus), then a draw from
 * this request's own {@link SplittableRandom} seeded with {@code params.seed()}, so a replay with
 * the same seed and logits picks the same tokens. Not thread-safe; one per sequence.
 */
public final class Sampler {

    private final SamplingParams params;
    private final SplittableRandom random;

    public Sampler(SamplingParams params) {
        if (params.temperature() < 0 || Float.isNaN(params.temperature())) {
            throw new IllegalArgumentException("temperature must be >= 0, got " + params.temperature());
        }
        if (params.topK() < 0) {
            throw new IllegalArgumentException("topK must be >= 0 (0 = off), got " + params.topK());
        }
        if (!(params.topP() > 0 && params.topP() <= 1)) {
            throw new IllegalArgumentException("topP must be in (0, 1] (1 = off), got " + params.topP());
        }
        this.params = params;
        this.random = new SplittableRandom(params.seed());
    }

    /** Index of the largest logit; the lowest index among equals. */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /** The next token for these logits (not modified). */
    public int sample(float[] logits) {
        if (params.temperature() == 0f) {
            return argmax(logits);
        }
        int n = logits.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        // stable sort by logit descending keeps equal logits in id order, so a replay is identical
        Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
        int keep = params.topK() > 0 ? Math.min(params.topK(), n) : n;
        double max = logits[order[0]];
        double[] p = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            p[i] = Math.exp((logits[order[i]] - max) / params.temperature());
            sum += p[i];
        }
        if (params.topP() < 1f) {
            double cum = 0;
            int cut = keep;
            for (int i = 0; i < keep; i++) {
                cum += p[i] / sum;
                if (cum >= params.topP()) {
                    cut = i + 1;
                    break;
                }
            }
            keep = cut;
            sum = 0;
            for (int i = 0; i < keep; i++) {
                sum += p[i];
            }
        }
        double u = random.nextDouble() * sum;
        for (int i = 0; i < keep; i++) {
            u -= p[i];
            if (u < 0) {
                return order[i];
            }
        }
        return order[keep - 1];
    }
}
