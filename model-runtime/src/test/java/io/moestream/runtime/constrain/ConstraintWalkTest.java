package io.moestream.runtime.constrain;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.sampler.Sampler;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.tokenizer.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Property tests of the masks on real vocabularies, with random logits in place of a model (so
 * thousands of outputs are cheap): every output that ends with EOS is valid JSON for its schema
 * (networknt's validator), every output cut short is a valid prefix, the mask is never empty, and
 * the trie walk's mask equals trying every token on its own.
 */
class ConstraintWalkTest {

    private static final int MAX_STEPS = 300;

    private record Walk(String text, boolean stopped, int steps) {}

    /**
     * Samples with random logits (structural tokens and EOS favoured, so objects close) through
     * the sampler's masked path, checking the mask at every step.
     */
    private static Walk walk(Grammar g, Tokenizer tok, SamplingParams params, long seed, List<BitSet> seenMasks) {
        Constraint c = g.start(tok);
        Sampler sampler = new Sampler(params);
        SplittableRandom random = new SplittableRandom(seed);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        float[] logits = new float[tok.vocabSize()];
        boolean[] structural = new boolean[logits.length];
        for (int id = 0; id < logits.length; id++) {
            byte[] b = tok.tokenBytes(id);
            structural[id] = b.length == 1 && "\"}],:0".indexOf(b[0]) >= 0 || id == tok.eosId();
        }
        for (int step = 0; step < MAX_STEPS; step++) {
            BitSet allowed = c.allowed();
            assertThat(allowed.isEmpty()).as("dead end after " + out.toString(StandardCharsets.UTF_8)).isFalse();
            assertThat(allowed.get(tok.eosId())).isEqualTo(c.complete());
            if (seenMasks != null) {
                seenMasks.add(allowed);
            }
            for (int id = 0; id < logits.length; id++) {
                logits[id] = (float) (random.nextGaussian() * 2 + (structural[id] ? 3 : 0));
            }
            int token = sampler.sample(logits, allowed);
            assertThat(allowed.get(token)).isTrue();
            c.accept(token);
            if (token == tok.eosId()) {
                return new Walk(out.toString(StandardCharsets.UTF_8), true, step + 1);
            }
            out.writeBytes(tok.tokenBytes(token));
        }
        assertThat(g.prefix(out.toByteArray())).isTrue();
        return new Walk(out.toString(StandardCharsets.UTF_8), false, MAX_STEPS);
    }

    private static List<SamplingParams> modes(long seed) {
        return List.of(SamplingParams.greedy(MAX_STEPS),
                new SamplingParams(MAX_STEPS, 0.8f, 0, 1f, seed, List.of()),
                new SamplingParams(MAX_STEPS, 1.2f, 5, 1f, seed, List.of()),
                new SamplingParams(MAX_STEPS, 1f, 0, 0.9f, seed, List.of()));
    }

    private static void validOutputsUnderEverySchema(Tokenizer tok, int seeds) {
        int stopped = 0;
        int total = 0;
        boolean sawNonAscii = false;
        boolean sawEscape = false;
        for (String schema : SchemaCases.SCHEMAS) {
            Grammar g = Grammar.jsonSchema(schema);
            int stoppedHere = 0;
            for (long seed = 0; seed < seeds; seed++) {
                for (SamplingParams params : modes(seed)) {
                    Walk w = walk(g, tok, params, seed * 31 + total, null);
                    total++;
                    if (w.stopped()) {
                        stopped++;
                        stoppedHere++;
                        assertThat(SchemaCases.problems(schema, w.text())).as(schema + "\n  output: " + w.text()).isNull();
                        sawNonAscii |= w.text().chars().anyMatch(ch -> ch > 127);
                        sawEscape |= w.text().contains("\\");
                    }
                }
            }
            assertThat(stoppedHere).as("outputs that completed under " + schema).isPositive();
        }
        assertThat(stopped).as("completed outputs of " + total).isGreaterThan(total / 2);
        assertThat(sawNonAscii).as("some output holds non-ASCII text").isTrue();
        assertThat(sawEscape).as("some output holds an escape").isTrue();
    }

    @Test
    void everyCompletedOutputValidatesOnTheTrainedVocabulary() {
        validOutputsUnderEverySchema(Vocabularies.trained().tokenizer(), 8);
    }

    @Test
    void everyCompletedOutputValidatesOnTheSyntheticVocabulary() {
        validOutputsUnderEverySchema(Vocabularies.synthetic().tokenizer(), 8);
    }

    @Test
    void regexAndChoiceOutputsMatch() {
        Tokenizer tok = Vocabularies.trained().tokenizer();
        String regex = "(yes|no|maybe): [a-z]{2,6}( [a-z]{2,6}){0,3}\\.";
        java.util.regex.Pattern reference = java.util.regex.Pattern.compile(regex);
        List<String> choices = List.of("positive", "negative", "neutral", "n/a");
        for (long seed = 0; seed < 20; seed++) {
            for (SamplingParams params : modes(seed)) {
                Walk r = walk(Grammar.regex(regex), tok, params, seed, null);
                if (r.stopped()) {
                    assertThat(reference.matcher(r.text()).matches()).as(r.text()).isTrue();
                }
                Walk c = walk(Grammar.choice(choices), tok, params, seed, null);
                assertThat(c.stopped()).isTrue();
                assertThat(choices).contains(c.text());
            }
        }
    }

    /** No dead end, and the trie walk's mask is exactly the set of tokens that each keep the output valid. */
    @Test
    void masksOnTheTrainedVocabularyNeverDeadEndAndMatchPerTokenChecks() {
        Tokenizer tok = Vocabularies.trained().tokenizer();
        int states = 0;
        for (String schema : SchemaCases.SCHEMAS) {
            Grammar g = Grammar.jsonSchema(schema);
            List<BitSet> masks = new ArrayList<>();
            Constraint c = g.start(tok);
            for (long seed = 0; seed < 4; seed++) {
                walk(g, tok, new SamplingParams(MAX_STEPS, 1f, 0, 1f, seed, List.of()), seed, masks);
            }
            // re-walk one path checking each state's mask against every token tried alone
            Walk w = walk(g, tok, new SamplingParams(60, 1f, 0, 1f, 99, List.of()), 99, null);
            byte[] text = w.text().getBytes(StandardCharsets.UTF_8);
            int[] ids = tok.encode(w.text(), false);
            TokenMasker masker = new TokenMasker(g.dfa(), TokenTrie.of(tok), tok.eosId());
            int state = 0;
            for (int i = 0; i <= ids.length; i++) {
                BitSet expected = new BitSet();
                for (int id = 0; id < tok.vocabSize(); id++) {
                    if (id == tok.eosId() ? masker.accepting(state) : masker.advance(state, id) != Dfa.DEAD) {
                        expected.set(id);
                    }
                }
                assertThat(masker.mask(state)).as(schema + " after " + i + " tokens").isEqualTo(expected);
                assertThat(expected.isEmpty()).isFalse();
                states++;
                if (i < ids.length) {
                    state = masker.advance(state, ids[i]);
                    assertThat(state).as("re-encoded output stays valid").isNotEqualTo(Dfa.DEAD);
                }
            }
            assertThat(g.prefix(text)).isTrue();
            assertThat(c.allowed().isEmpty()).isFalse();
            states += masks.size();
        }
        assertThat(states).isGreaterThan(500);
    }
}
