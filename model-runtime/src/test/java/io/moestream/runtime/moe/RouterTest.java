package io.moestream.runtime.moe;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.moestream.runtime.moe.RoutingConfig.Gating;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import org.junit.jupiter.api.Test;

/** {@link Router} against a plain double-precision transcription of the routing rules in the oracle README. */
class RouterTest {

    /** The documented math, written independently of Router: sorts instead of selecting. */
    static double[][] reference(RoutingConfig cfg, float[] logits, float[] bias) {
        int n = cfg.experts();
        double[] s = new double[n];
        if (cfg.gating() == Gating.SOFTMAX) {
            double max = Arrays.stream(toDouble(logits)).max().orElseThrow();
            double sum = 0;
            for (int e = 0; e < n; e++) {
                s[e] = Math.exp(logits[e] - max);
                sum += s[e];
            }
            for (int e = 0; e < n; e++) {
                s[e] /= sum;
            }
        } else if (cfg.gating() == Gating.SIGMOID) {
            for (int e = 0; e < n; e++) {
                s[e] = 1 / (1 + Math.exp(-logits[e]));
            }
        } else {
            for (int e = 0; e < n; e++) {
                s[e] = logits[e];
            }
        }
        double[] sel = new double[n];
        for (int e = 0; e < n; e++) {
            sel[e] = s[e] + (bias == null ? 0 : bias[e]);
        }
        if (cfg.groups() > 1) {
            int size = n / cfg.groups();
            double[] groupScore = new double[cfg.groups()];
            for (int g = 0; g < cfg.groups(); g++) {
                double[] members = Arrays.copyOfRange(sel, g * size, (g + 1) * size);
                Arrays.sort(members);
                groupScore[g] = members[size - 1] + members[size - 2];
            }
            Integer[] order = IntStream.range(0, cfg.groups()).boxed().sorted(Comparator.comparingDouble(g -> -groupScore[g]))
                    .toArray(Integer[]::new);
            for (int j = cfg.groupsUsed(); j < cfg.groups(); j++) {
                Arrays.fill(sel, order[j] * size, (order[j] + 1) * size, Double.NEGATIVE_INFINITY);
            }
        }
        Integer[] order = IntStream.range(0, n).boxed().sorted(Comparator.comparingDouble(e -> -sel[e])).toArray(Integer[]::new);
        double[] ids = new double[cfg.topK()];
        double[] w = new double[cfg.topK()];
        double sum = 0;
        for (int j = 0; j < ids.length; j++) {
            ids[j] = order[j];
            w[j] = s[order[j]];
        }
        if (cfg.gating() == Gating.SOFTMAX_WEIGHT) {
            double total = 0;
            double best = w[0];
            for (int j = 0; j < w.length; j++) {
                w[j] = Math.exp(w[j] - best);
                total += w[j];
            }
            for (int j = 0; j < w.length; j++) {
                w[j] /= total;
            }
        }
        for (double x : w) {
            sum += x;
        }
        for (int j = 0; j < w.length; j++) {
            if (cfg.normalize()) {
                w[j] /= Math.max(sum, 6.103515625e-5);
            }
            w[j] *= cfg.scale();
        }
        return new double[][] {ids, w};
    }

    private static double[] toDouble(float[] f) {
        return IntStream.range(0, f.length).mapToDouble(i -> f[i]).toArray();
    }

    private static float[] gaussian(SplittableRandom r, int n, double sd) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (r.nextGaussian() * sd);
        }
        return out;
    }

    private static void assertMatchesReference(RoutingConfig cfg, boolean withBias, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Router router = new Router(cfg);
        int[] ids = new int[cfg.topK()];
        float[] w = new float[cfg.topK()];
        for (int trial = 0; trial < 500; trial++) {
            float[] logits = gaussian(r, cfg.experts(), 2);
            float[] bias = withBias ? gaussian(r, cfg.experts(), 0.2) : null;
            float[] before = logits.clone();
            router.route(logits, bias, ids, w);
            double[][] ref = reference(cfg, logits, bias);
            assertThat(logits).containsExactly(before);
            for (int j = 0; j < ids.length; j++) {
                assertThat(ids[j]).as("trial %d slot %d", trial, j).isEqualTo((int) ref[0][j]);
                assertThat((double) w[j]).isCloseTo(ref[1][j], within(1e-5 * Math.max(1, Math.abs(ref[1][j]))));
            }
        }
    }

    @Test
    void mixtralSoftmaxTopKRenormalised() {
        assertMatchesReference(RoutingConfig.softmaxTopK(8, 2, true), false, 1);
        assertMatchesReference(RoutingConfig.softmaxTopK(16, 4, true), false, 2);
    }

    @Test
    void gptOssChoosesByRawLogitsAndSoftmaxesTheChosen() {
        RoutingConfig cfg = new RoutingConfig(Gating.SOFTMAX_WEIGHT, 8, 4, false, 1f, 0, 0);
        assertMatchesReference(cfg, false, 11);
        int[] ids = new int[4];
        float[] w = new float[4];
        new Router(cfg).route(gaussian(new SplittableRandom(12), 8, 2), null, ids, w);
        assertThat((double) (w[0] + w[1] + w[2] + w[3])).isCloseTo(1.0, within(1e-6));
    }

    @Test
    void qwen2moeKeepsTheRawSoftmaxWeights() {
        RoutingConfig cfg = RoutingConfig.softmaxTopK(16, 4, false);
        assertMatchesReference(cfg, false, 3);
        int[] ids = new int[4];
        float[] w = new float[4];
        new Router(cfg).route(gaussian(new SplittableRandom(4), 16, 2), null, ids, w);
        assertThat(w[0] + w[1] + w[2] + w[3]).isLessThan(1f);
    }

    @Test
    void groupLimitedSigmoidWithBiasNormAndScale() {
        RoutingConfig ling = new RoutingConfig(Gating.SIGMOID, 16, 4, true, 2.5f, 4, 2);
        assertMatchesReference(ling, true, 5);
        assertMatchesReference(new RoutingConfig(Gating.SIGMOID, 64, 6, true, 1f, 8, 3), true, 6);
        assertMatchesReference(new RoutingConfig(Gating.SOFTMAX, 16, 2, false, 1f, 4, 1), false, 7);
    }

    @Test
    void groupLimitChangesTheChoice() {
        // group 0 = experts 0..3 holds the single best expert but a weak second; group 1 has two
        // good experts; groups 2 and 3 are weak. Plain top-2 would take experts 0 and 4.
        float[] logits = {5, -5, -5, -5, 3, 3, -5, -5, -5, -5, -5, -5, -5, -5, -5, -5};
        RoutingConfig grouped = new RoutingConfig(Gating.SIGMOID, 16, 2, true, 1f, 4, 1);
        int[] ids = new int[2];
        float[] w = new float[2];
        new Router(grouped).route(logits, null, ids, w);
        assertThat(ids).containsExactly(4, 5);
        new Router(new RoutingConfig(Gating.SIGMOID, 16, 2, true, 1f, 0, 0)).route(logits, null, ids, w);
        assertThat(ids).containsExactly(0, 4);
    }

    @Test
    void biasSteersTheChoiceButNotTheWeights() {
        float[] logits = {1f, 0.9f, 0.8f, 0.7f};
        float[] bias = {0f, 0f, 0f, 1f};
        RoutingConfig cfg = new RoutingConfig(Gating.SIGMOID, 4, 1, false, 1f, 0, 0);
        int[] ids = new int[1];
        float[] w = new float[1];
        new Router(cfg).route(logits, bias, ids, w);
        assertThat(ids[0]).isEqualTo(3);
        assertThat(w[0]).isCloseTo((float) (1 / (1 + Math.exp(-0.7))), within(1e-6f));
    }

    @Test
    void tiesGoToTheLowerIndexForExpertsAndGroups() {
        int[] ids = new int[3];
        float[] w = new float[3];
        new Router(RoutingConfig.softmaxTopK(6, 3, true)).route(new float[] {1, 2, 2, 0, 2, 1}, null, ids, w);
        assertThat(ids).containsExactly(1, 2, 4);
        assertThat(w[0]).isEqualTo(w[1]).isEqualTo(w[2]);
        // all four groups score the same: the first two groups are kept
        int[] two = new int[2];
        new Router(new RoutingConfig(Gating.SIGMOID, 8, 2, true, 1f, 4, 2)).route(new float[8], null, two, new float[2]);
        assertThat(two).containsExactly(0, 1);
        new Router(new RoutingConfig(Gating.SIGMOID, 8, 2, true, 1f, 4, 2))
                .route(new float[] {0, 0, 0, 0, 0, 0, 1, 1}, null, two, new float[2]);
        assertThat(two).containsExactly(6, 7);
    }

    @Test
    void aTinyWeightSumIsClampedBeforeDividing() {
        int[] ids = new int[2];
        float[] w = new float[2];
        new Router(new RoutingConfig(Gating.SIGMOID, 4, 2, true, 1f, 0, 0)).route(new float[] {-30, -30, -40, -40}, null, ids, w);
        float s = (float) (1 / (1 + Math.exp(30)));
        assertThat(w[0]).isCloseTo(s / Router.MIN_WEIGHT_SUM, within(1e-9f));
    }

    @Test
    void rejectsImpossibleConfigurations() {
        assertThatThrownBy(() -> new RoutingConfig(Gating.SOFTMAX, 8, 9, true, 1f, 0, 0)).hasMessageContaining("expert_used_count 9");
        assertThatThrownBy(() -> new RoutingConfig(Gating.SIGMOID, 16, 4, true, 1f, 5, 2)).hasMessageContaining("expert_group_count 5");
        assertThatThrownBy(() -> new RoutingConfig(Gating.SIGMOID, 8, 2, true, 1f, 8, 2)).hasMessageContaining("expert_group_count 8");
        assertThatThrownBy(() -> new RoutingConfig(Gating.SIGMOID, 16, 4, true, 1f, 4, 4)).hasMessageContaining("expert_group_used_count 4");
        assertThatThrownBy(() -> new RoutingConfig(Gating.SIGMOID, 16, 8, true, 1f, 4, 1)).hasMessageContaining("cannot supply 8");
        assertThat(Gating.ofCode(3)).isEqualTo(Gating.SOFTMAX_WEIGHT);
        assertThatThrownBy(() -> Gating.ofCode(4)).hasMessageContaining("expert_gating_func 4");
    }
}
