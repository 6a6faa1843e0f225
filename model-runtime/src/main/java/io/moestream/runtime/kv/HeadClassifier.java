package io.moestream.runtime.kv;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Training-free retrieval/streaming head classification from attention statistics of a prefill.
 *
 * <p>For every query position {@code p} with {@code p + 1 > S + W} (where a streaming head would
 * actually lose something), it measures the attention mass a query head puts <em>outside</em> sink
 * + window, {@code m = sum_{S <= t <= p - W} prob[t]}. A KV head's score is the <b>maximum over its
 * query heads</b> (GQA group) of their mean {@code m}: a KV head may stream only if all the query
 * heads sharing it can.
 *
 * <p>{@link #classify}: KV heads with score {@code <= maxOutsideMass} are candidates; the candidates
 * with the lowest scores (ties: lower layer, then lower head) become streaming heads, at most
 * {@code floor(maxStreamingFraction * layers * kvHeads)} of them. Deterministic. Heads never observed
 * (prefill shorter than S + W + 1) stay retrieval heads.
 */
public final class HeadClassifier implements AttentionObserver {

    private final int layers;
    private final int heads;
    private final int kvHeads;
    private final int sink;
    private final int window;
    private final double[] massSum; // [layer * heads + qHead]
    private final long[] count;

    public HeadClassifier(int layers, int heads, int kvHeads, int sink, int window) {
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("heads " + heads + " is not a multiple of kvHeads " + kvHeads);
        }
        HeadPolicy.of(1, 1, sink, window, new boolean[1]); // validates sink/window
        this.layers = layers;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.sink = sink;
        this.window = window;
        this.massSum = new double[layers * heads];
        this.count = new long[layers * heads];
    }

    public static HeadClassifier of(io.moestream.runtime.model.ModelConfig c, int sink, int window) {
        return new HeadClassifier(c.layers(), c.heads(), c.kvHeads(), sink, window);
    }

    public int sink() {
        return sink;
    }

    public int window() {
        return window;
    }

    @Override
    public void observe(int layer, int qHead, int queryPos, float[] probs) {
        int last = queryPos - window; // positions sink..last are outside sink + window
        if (last < sink) {
            return;
        }
        double m = 0;
        for (int t = sink; t <= last; t++) {
            m += probs[t];
        }
        massSum[layer * heads + qHead] += m;
        count[layer * heads + qHead]++;
    }

    /** Query positions observed so far for (layer, qHead). */
    public long observations(int layer, int qHead) {
        return count[layer * heads + qHead];
    }

    /** Per (layer, KV head): max over its query heads of the mean outside mass; NaN if never observed. */
    public double[] scores() {
        int g = heads / kvHeads;
        double[] s = new double[layers * kvHeads];
        for (int l = 0; l < layers; l++) {
            for (int kh = 0; kh < kvHeads; kh++) {
                double worst = Double.NaN;
                for (int qh = kh * g; qh < kh * g + g; qh++) {
                    int i = l * heads + qh;
                    if (count[i] == 0) {
                        worst = Double.NaN;
                        break;
                    }
                    double mean = massSum[i] / count[i];
                    worst = Double.isNaN(worst) ? mean : Math.max(worst, mean);
                }
                s[l * kvHeads + kh] = worst;
            }
        }
        return s;
    }

    /**
     * @param maxStreamingFraction at most this fraction of all KV heads become streaming (budget)
     * @param maxOutsideMass       only heads whose score is at most this may stream (1.0 = no threshold)
     */
    public HeadPolicy classify(double maxStreamingFraction, double maxOutsideMass) {
        if (!(maxStreamingFraction >= 0 && maxStreamingFraction <= 1)) {
            throw new IllegalArgumentException("streaming fraction must be in [0, 1], got " + maxStreamingFraction);
        }
        double[] s = scores();
        int budget = (int) Math.floor(maxStreamingFraction * s.length + 1e-9);
        List<Integer> candidates = new ArrayList<>();
        for (int i = 0; i < s.length; i++) {
            if (!Double.isNaN(s[i]) && s[i] <= maxOutsideMass) {
                candidates.add(i);
            }
        }
        candidates.sort(Comparator.<Integer>comparingDouble(i -> s[i]).thenComparingInt(i -> i));
        boolean[] streaming = new boolean[s.length];
        for (int j = 0; j < Math.min(budget, candidates.size()); j++) {
            streaming[candidates.get(j)] = true;
        }
        return HeadPolicy.of(layers, kvHeads, sink, window, streaming);
    }
}
