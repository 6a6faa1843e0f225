package io.moestream.runtime.constrain;

import java.util.BitSet;

/**
 * One sequence's position in a {@link Grammar}: which tokens may come next ({@link #allowed}) and
 * the step after each sampled token ({@link #accept}). The end-of-sequence token is allowed only
 * once the output so far is complete, and only it may follow a complete output the grammar cannot
 * extend. Not thread-safe; one per sequence (the grammar and its masks are shared).
 */
public final class Constraint {

    private final TokenMasker masker;
    private int state; // automaton state after the accepted tokens
    private boolean ended;

    Constraint(TokenMasker masker) {
        this.masker = masker;
    }

    /** The tokens that keep the output valid, EOS included when it is complete (read only; shared). */
    public BitSet allowed() {
        if (ended) {
            throw new IllegalStateException("the constrained output already ended with EOS");
        }
        return masker.mask(state);
    }

    /**
     * Advances past {@code token}.
     *
     * @throws IllegalArgumentException when {@code token} is not {@linkplain #allowed() allowed}
     */
    public void accept(int token) {
        if (ended) {
            throw new IllegalStateException("the constrained output already ended with EOS");
        }
        if (token == masker.eos()) {
            if (!masker.accepting(state)) {
                throw new IllegalArgumentException("EOS before the constrained output is complete");
            }
            ended = true;
            return;
        }
        if (token < 0 || token >= masker.vocabSize()) {
            throw new IllegalArgumentException("token id " + token + " is outside the vocabulary");
        }
        int next = masker.advance(state, token);
        if (next == Dfa.DEAD) {
            throw new IllegalArgumentException("token " + token + " would make the output invalid");
        }
        state = next;
    }

    /** Whether the output so far is a complete valid output. */
    public boolean complete() {
        return masker.accepting(state);
    }
}
