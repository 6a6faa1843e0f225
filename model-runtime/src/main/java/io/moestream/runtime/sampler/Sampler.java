package io.moestream.runtime.sampler;

import java.util.Arrays;
import java.util.BitSet;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits as {@link SamplingParams} say: greedy at temperature 0 (argmax,
 * ties to the lowest id), otherwise temperature, then top-k, then top-p (nucleus), then a draw from
 * this request's own {@link SplittableRandom} seeded with {@code params.seed()}, so a replay with
 * the same seed and logits picks the same tokens. With a token mask ({@link #sample(float[], BitSet)},
 * structured output) the masked-out tokens are removed before any of these steps, so every mode
 * draws from the allowed tokens only. Not thread-safe; one per sequence.
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

    /**
     * The k best ids, best first: one pass keeping a sorted window of k (an id replaces the window's
     * last only with a strictly larger logit, so among equal logits the lower id stays first).
     */
    static int[] topK(float[] logits, int k) {
        int[] top = new int[k];
        int size = 0;
        for (int id = 0; id < logits.length; id++) {
            float v = logits[id];
            if (size == k && Float.compare(v, logits[top[k - 1]]) <= 0) {
                continue;
            }
            int at = size == k ? k - 1 : size++;
            while (at > 0 && Float.compare(v, logits[top[at - 1]]) > 0) {
                top[at] = top[at - 1];
                at--;
            }
            top[at] = id;
        }
        return top;
    }

    /** All ids by logit descending, equal logits in id order: one primitive sort of (logit, id) keys. */
    static int[] sortedDescending(float[] logits) {
        long[] keys = new long[logits.length];
        for (int id = 0; id < logits.length; id++) {
            keys[id] = descendingKey(logits, id);
        }
        return idsOf(keys);
    }

    /** {@code ids} by logit descending, equal logits in id order. */
    static int[] sortedDescending(float[] logits, int[] ids) {
        long[] keys = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            keys[i] = descendingKey(logits, ids[i]);
        }
        return idsOf(keys);
    }

    private static long descendingKey(float[] logits, int id) {
        int bits = Float.floatToIntBits(logits[id]); // NaN canonical: above +inf, as Float.compare
        int ascending = bits >= 0 ? bits : bits ^ Integer.MAX_VALUE; // int order = Float.compare order
        return (long) ~ascending << 32 | id; // descending logit in the high half, then ascending id
    }

    private static int[] idsOf(long[] keys) {
        Arrays.sort(keys);
        int[] order = new int[keys.length];
        for (int i = 0; i < keys.length; i++) {
            order[i] = (int) keys[i];
        }
        return order;
    }

    /**
     * The next token for these logits (not modified), among the {@code allowed} tokens only (a
     * non-empty mask from a {@link io.moestream.runtime.constrain.Constraint}): greedy takes the
     * best allowed token (ties to the lowest id); sampling applies temperature, top-k and top-p to
     * the allowed tokens alone. With every token allowed it picks what {@link #sample(float[])} picks.
     */
    public int sample(float[] logits, BitSet allowed) {
        if (allowed.isEmpty()) {
            throw new IllegalArgumentException("the token mask allows no token");
        }
        if (params.temperature() == 0f) {
            int best = allowed.nextSetBit(0);
            for (int id = allowed.nextSetBit(best + 1); id >= 0 && id < logits.length; id = allowed.nextSetBit(id + 1)) {
                if (logits[id] > logits[best]) {
                    best = id;
                }
            }
            return best;
        }
        int[] ids = allowed.stream().filter(id -> id < logits.length).toArray();
        int[] order = sortedDescending(logits, ids);
        int keep = params.topK() > 0 ? Math.min(params.topK(), order.length) : order.length;
        return draw(logits, order, keep);
    }

    /** The next token for these logits (not modified). */
    public int sample(float[] logits) {
        if (params.temperature() == 0f) {
            return argmax(logits);
        }
        int n = logits.length;
        int keep = params.topK() > 0 ? Math.min(params.topK(), n) : n;
        // the `keep` best ids by logit descending, equal logits in id order (as a stable sort), so a
        // replay is identical
        return draw(logits, keep < n ? topK(logits, keep) : sortedDescending(logits), keep);
    }

    /** A draw at the temperature from the first {@code keep} ids of {@code order} (best first), after top-p. */
    private int draw(float[] logits, int[] order, int keep) {
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
