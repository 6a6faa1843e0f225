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
    void topPKeepsTheSmallestPrefixReachingTheMass() {
        // probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1
        float[] l = {(float) Math.log(0.15), (float) Math.log(0.5), (float) Math.log(0.05), (float) Math.log(0.3)};
        int[] counts = new int[4];
        Sampler s = new Sampler(new SamplingParams(1, 1f, 0, 0.79f, 17L, List.of()));
        for (int i = 0; i < 4000; i++) {
            counts[s.sample(l)]++;
        }
        assertThat(counts[0]).isZero();
        assertThat(counts[2]).isZero();
        // renormalised over the kept two: 0.5/0.8 = 0.625 and 0.375
        assertThat(counts[1] / 4000.0).isBetween(0.59, 0.66);
        assertThat(counts[3] / 4000.0).isBetween(0.34, 0.41);
        Sampler wide = new Sampler(new SamplingParams(1, 1f, 0, 0.81f, 17L, List.of()));
        java.util.Set<Integer> seen = new java.util.HashSet<>();
        for (int i = 0; i < 2000; i++) {
            seen.add(wide.sample(l));
        }
        assertThat(seen).containsExactlyInAnyOrder(1, 3, 0);
    }

    @Test
    void temperatureSharpensAndFlattens() {
        float[] l = {0f, 1f};
        int cold = 0;
        int hot = 0;
        Sampler coldS = new Sampler(new SamplingParams(1, 0.25f, 0, 1f, 1L, List.of()));
        Sampler hotS = new Sampler(new SamplingParams(1, 4f, 0, 1f, 1L, List.of()));
        for (int i = 0; i < 4000; i++) {
            cold += coldS.sample(l);
            hot += hotS.sample(l);
        }
        // p(1) = 1/(1+e^-4) = 0.982 cold, 1/(1+e^-0.25) = 0.562 hot
        assertThat(cold / 4000.0).isBetween(0.97, 0.99);
        assertThat(hot / 4000.0).isBetween(0.53, 0.60);
    }

    @Test
    void rejectsNonsense() {
        assertThatThrownBy(() -> new Sampler(new SamplingParams(1, -1f, 0, 1f, 0L, List.of()))).hasMessageContaining("temperature");
        assertThatThrownBy(() -> new Sampler(new SamplingParams(1, 1f, 0, 0f, 0L, List.of()))).hasMessageContaining("topP");
    }

    @Test
    void topKAndFullOrderEqualAStableSortByLogitDescending() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        float[] values = {-0.0f, 0.0f, 1.5f, -1.5f, 3f, -7f, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY, 2.25f};
        for (int trial = 0; trial < 50; trial++) {
            float[] logits = new float[1 + r.nextInt(600)];
            for (int i = 0; i < logits.length; i++) {
                logits[i] = r.nextBoolean() ? values[r.nextInt(values.length)] : (float) r.nextGaussian();
            }
            Integer[] ref = new Integer[logits.length];
            for (int i = 0; i < ref.length; i++) {
                ref[i] = i;
            }
            java.util.Arrays.sort(ref, (a, b) -> Float.compare(logits[b], logits[a]));
            int[] expected = java.util.Arrays.stream(ref).mapToInt(Integer::intValue).toArray();
            assertThat(Sampler.sortedDescending(logits)).containsExactly(expected);
            int k = 1 + r.nextInt(logits.length);
            assertThat(Sampler.topK(logits, k)).containsExactly(java.util.Arrays.copyOf(expected, k));
        }
    }
}
