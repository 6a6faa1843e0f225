package io.moestream.runtime.kv;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class HeadClassifierTest {

    /** 2 layers, 4 query heads, 2 KV heads; head (l, q) puts {@code far[l][q]} of its mass uniformly outside sink + window. */
    private static HeadClassifier observed(double[][] far, int positions, long seed) {
        int sink = 2;
        int window = 8;
        HeadClassifier c = new HeadClassifier(2, 4, 2, sink, window);
        SplittableRandom r = new SplittableRandom(seed);
        for (int p = 0; p < positions; p++) {
            for (int l = 0; l < 2; l++) {
                for (int q = 0; q < 4; q++) {
                    float[] probs = new float[p + 1];
                    int outside = Math.max(0, p - window - sink + 1);
                    double farMass = outside > 0 ? far[l][q] * (0.9 + 0.2 * r.nextDouble()) : 0;
                    for (int t = 0; t <= p; t++) {
                        boolean out = t >= sink && t <= p - window;
                        int inside = p + 1 - outside;
                        probs[t] = (float) (out ? farMass / outside : (1 - farMass) / inside);
                    }
                    c.observe(l, q, p, probs);
                }
            }
        }
        return c;
    }

    private static final double[][] FAR = {
        {0.01, 0.02, 0.30, 0.40},   // layer 0: kv head 0 local, kv head 1 retrieval
        {0.05, 0.50, 0.03, 0.04},   // layer 1: kv head 0 has one retrieval query head, kv head 1 local
    };

    @Test
    void scoreIsTheWorstQueryHeadOfTheGroup() {
        double[] s = observed(FAR, 60, 1).scores();
        assertThat(s[0]).isBetween(0.018, 0.022);
        assertThat(s[1]).isBetween(0.36, 0.44);
        assertThat(s[2]).isBetween(0.45, 0.55);
        assertThat(s[3]).isBetween(0.036, 0.044);
    }

    @Test
    void respectsTheBudgetAndTheThresholdAndIsDeterministic() {
        HeadClassifier c = observed(FAR, 60, 2);
        HeadPolicy half = c.classify(0.5, 1.0);
        assertThat(half.streamingCount()).isEqualTo(2);
        assertThat(half.isStreaming(0, 0)).isTrue();
        assertThat(half.isStreaming(1, 1)).isTrue();
        assertThat(c.classify(0.25, 1.0).streamingCount()).isEqualTo(1);
        assertThat(c.classify(0.25, 1.0).isStreaming(0, 0)).isTrue();
        assertThat(c.classify(1.0, 0.1).streamingCount()).isEqualTo(2); // threshold only
        assertThat(c.classify(1.0, 1.0).streamingCount()).isEqualTo(4);
        assertThat(c.classify(0.0, 1.0).anyStreaming()).isFalse();
        assertThat(observed(FAR, 60, 2).classify(0.5, 1.0)).isEqualTo(half);
        assertThat(half.sink()).isEqualTo(2);
        assertThat(half.window()).isEqualTo(8);
        assertThat(half.toString()).isEqualTo("S=2 W=8 [L0: S R | L1: R S]");
    }

    @Test
    void aPrefillShorterThanSinkPlusWindowClassifiesNothing() {
        HeadClassifier c = observed(FAR, 10, 3);
        assertThat(c.observations(0, 0)).isZero();
        assertThat(c.classify(1.0, 1.0).anyStreaming()).isFalse();
        assertThatThrownBy(() -> c.classify(1.5, 1.0)).hasMessageContaining("fraction");
    }
}
