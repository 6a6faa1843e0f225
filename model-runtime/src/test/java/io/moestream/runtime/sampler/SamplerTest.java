package io.moestream.runtime.sampler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

class SamplerTest {

    private static float[] logits(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) r.nextGaussian() * 2;
        }
        return out;
    }

    private static int[] draw(SamplingParams p, int steps) {
        Sampler s = new Sampler(p);
        int[] out = new int[steps];
        for (int i = 0; i < steps; i++) {
            out[i] = s.sample(logits(i, 100));
        }
        return out;
    }

    @Test
    void sameSeedSameTokensOtherSeedOtherTokens() {
        SamplingParams a = new SamplingParams(50, 1f, 0, 1f, 123L, List.of());
        assertThat(draw(a, 50)).containsExactly(draw(a, 50));
        SamplingParams b = new SamplingParams(50, 1f, 0, 1f, 124L, List.of());
        assertThat(draw(b, 50)).isNotEqualTo(draw(a, 50));
    }

    @Test
    void greedyTakesTheLowestIdAmongEqualMaxima() {
        assertThat(Sampler.argmax(new float[] {1, 3, 2, 3})).isEqualTo(1);
        assertThat(new Sampler(SamplingParams.greedy(1)).sample(new float[] {0, 5, 5})).isEqualTo(1);
    }

    @Test
    void topKOneAndTinyTopPAreGreedy() {
        for (long seed = 0; seed < 20; seed++) {
            float[] l = logits(seed + 1000, 100);
            int best = Sampler.argmax(l);
            assertThat(new Sampler(new SamplingParams(1, 1.5f, 1, 1f, seed, List.of())).sample(l)).isEqualTo(best);
            assertThat(new Sampler(new SamplingParams(1, 1.5f, 0, 1e-6f, seed, List.of())).sample(l)).isEqualTo(best);
        }
    }

    @Test
    void topKRestrictsTheCandidates() {
        float[] l = logits(5, 100);
        Integer[] order = new Integer[100];
        for (int i = 0; i < 100; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (x, y) -> Float.compare(l[y], l[x]));
        List<Integer> top3 = List.of(order[0], order[1], order[2]);
        Sampler s = new Sampler(new SamplingParams(1, 5f, 3, 1f, 9L, List.of()));
        java.util.Set<Integer> seen = new java.util.HashSet<>();
        for (int i = 0; i < 300; i++) {
            seen.add(s.sample(l));
        }
        assertThat(top3).containsAll(seen);
        assertThat(seen).hasSize(3);
    }

    @Test
    void rejectsNonsense() {
        assertThatThrownBy(() -> new Sampler(new SamplingParams(1, -1f, 0, 1f, 0L, List.of()))).hasMessageContaining("temperature");
        assertThatThrownBy(() -> new Sampler(new SamplingParams(1, 1f, 0, 0f, 0L, List.of()))).hasMessageContaining("topP");
    }
}
