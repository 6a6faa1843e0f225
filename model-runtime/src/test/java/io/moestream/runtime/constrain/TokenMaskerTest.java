package io.moestream.runtime.constrain;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.BitSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The trie walk on a hand-made vocabulary: shared prefixes, duplicate tokens, an empty token, and an EOS with bytes. */
class TokenMaskerTest {

    private static final String[] TOKENS = {"a", "ab", "abc", "b", "c", "ab", "", "bc", "abd", "é", "\u00e9x", "a"};
    private static final int EOS = 11; // bytes "a", but still only allowed where the output is complete

    private static BitSet bits(int... ids) {
        BitSet b = new BitSet();
        for (int id : ids) {
            b.set(id);
        }
        return b;
    }

    @Test
    void masksFollowTheAutomatonAndEosOnlyWhereComplete() {
        byte[][] bytes = new byte[TOKENS.length][];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = TOKENS[i].getBytes(StandardCharsets.UTF_8);
        }
        TokenTrie trie = TokenTrie.of(bytes);
        Grammar g = Grammar.choice(List.of("abc", "ab", "éx"));
        TokenMasker masker = new TokenMasker(g.dfa(), trie, EOS);
        int start = 0;
        // "a", "ab" (twice), "abc", "é", "éx"; not "abd", not "", and not EOS although its bytes fit
        assertThat(masker.mask(start)).isEqualTo(bits(0, 1, 2, 5, 9, 10));
        int afterAb = masker.advance(start, 1);
        // "ab" is complete: EOS, or "c"
        assertThat(masker.mask(afterAb)).isEqualTo(bits(4, EOS));
        int afterAbc = masker.advance(afterAb, 4);
        assertThat(masker.mask(afterAbc)).isEqualTo(bits(EOS));
        assertThat(masker.advance(start, 6)).isEqualTo(Dfa.DEAD); // an empty token never advances
        assertThat(masker.advance(start, 8)).isEqualTo(Dfa.DEAD);
    }
}
