package io.moestream.runtime.sampler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Sampling under a token mask (structured output), in every sampling mode. */
class MaskedSamplerTest {

    private static final List<SamplingParams> MODES = List.of(
            SamplingParams.greedy(1),
            new SamplingParams(1, 0.8f, 0, 1f, 7, List.of()),
            new SamplingParams(1, 1.2f, 5, 1f, 8, List.of()),
            new SamplingParams(1, 1f, 0, 0.7f, 9, List.of()),
            new SamplingParams(1, 0.5f, 40, 0.9f, 10, List.of()));

    private static float[] logits(SplittableRandom r, int n) {
        float[] l = new float[n];
        for (int i = 0; i < n; i++) {
            l[i] = (float) r.nextGaussian() * 3;
        }
        return l;
    }

    @Test
    void onlyAllowedTokensAreDrawnInEveryMode() {
        SplittableRandom r = new SplittableRandom(1);
        for (SamplingParams params : MODES) {
            Sampler sampler = new Sampler(params);
            for (int trial = 0; trial < 500; trial++) {
                float[] logits = logits(r, 300);
                BitSet allowed = new BitSet();
                int count = 1 + r.nextInt(12);
                for (int i = 0; i < count; i++) {
                    allowed.set(r.nextInt(300));
                }
                int token = sampler.sample(logits, allowed);
                assertThat(allowed.get(token)).as(params + " trial " + trial).isTrue();
                if (params.temperature() == 0f) {
                    for (int id = allowed.nextSetBit(0); id >= 0; id = allowed.nextSetBit(id + 1)) {
                        assertThat(logits[id]).isLessThanOrEqualTo(logits[token]);
                    }
                }
            }
        }
    }

    @Test
    void anAllowAllMaskPicksWhatTheUnmaskedSamplerPicks() {
        SplittableRandom r = new SplittableRandom(2);
        BitSet all = new BitSet();
        all.set(0, 257);
        for (SamplingParams params : MODES) {
            Sampler masked = new Sampler(params);
            Sampler plain = new Sampler(params);
            for (int trial = 0; trial < 200; trial++) {
                float[] logits = logits(r, 257);
                assertThat(masked.sample(logits, all)).isEqualTo(plain.sample(logits));
            }
        }
    }

    @Test
    void anEmptyMaskIsRefused() {
        Sampler s = new Sampler(SamplingParams.greedy(1));
        assertThatThrownBy(() -> s.sample(new float[4], new BitSet())).isInstanceOf(IllegalArgumentException.class);
    }
}
