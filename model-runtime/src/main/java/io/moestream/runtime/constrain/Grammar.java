package io.moestream.runtime.constrain;

import io.moestream.runtime.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * A compiled output constraint: the byte automaton of a JSON Schema, a regular expression or a
 * choice list. Compiling is done once per distinct constraint ({@link #jsonSchema}, {@link #regex},
 * {@link #choice} keep the last {@value #CACHE_SIZE} by the SHA-256 of their kind and text);
 * a grammar is immutable in meaning and safe to share between threads and sequences.
 */
public final class Grammar {

    static final int CACHE_SIZE = 64;

    private static final Map<String, Grammar> CACHE = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Grammar> eldest) {
            return size() > CACHE_SIZE;
        }
    };

    private final String hash;
    private final Dfa dfa;
    private final int nfaStates;
    private final Map<Tokenizer, TokenMasker> maskers = new WeakHashMap<>();

    private Grammar(String hash, Rx rx) {
        Nfa nfa = new Nfa(rx);
        this.hash = hash;
        this.nfaStates = nfa.size();
        this.dfa = new Dfa(nfa);
    }

    /**
     * Output that is compact JSON valid against {@code schema} (a JSON Schema in the supported subset).
     *
     * @throws UnsupportedSchemaException naming the keyword when the schema leaves the subset or is malformed
     */
    public static Grammar jsonSchema(String schema) {
        return cached("json-schema", schema, () -> JsonSchemaCompiler.compile(schema));
    }

    /** Output that, as a whole, matches {@code regex} (ECMA-262 syntax, the subset {@link RegexParser} handles). */
    public static Grammar regex(String regex) {
        return cached("regex", regex, () -> RegexParser.fullMatch(regex));
    }

    /** Output that is exactly one of {@code choices} (at least one, none empty). */
    public static Grammar choice(List<String> choices) {
        if (choices.isEmpty() || choices.stream().anyMatch(String::isEmpty)) {
            throw new UnsupportedSchemaException("choice", "a choice list needs at least one choice and no empty choice");
        }
        return cached("choice", String.join("\u0000", choices),
                () -> Rx.alt(choices.stream().map(Rx::literal).toList()));
    }

    private static Grammar cached(String kind, String text, java.util.function.Supplier<Rx> compile) {
        String hash = sha256(kind + "\u0000" + text);
        synchronized (CACHE) {
            Grammar g = CACHE.get(hash);
            if (g != null) {
                return g;
            }
        }
        Grammar g = new Grammar(hash, compile.get());
        synchronized (CACHE) {
            return CACHE.computeIfAbsent(hash, h -> g);
        }
    }

    private static String sha256(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** SHA-256 (hex) of the constraint's kind and text: the cache key. */
    public String hash() {
        return hash;
    }

    /** States of the byte NFA the constraint expanded to (a size measure). */
    public int nfaStates() {
        return nfaStates;
    }

    /** Deterministic states built so far (the automaton grows as generation visits it). */
    public int dfaStates() {
        return dfa.states();
    }

    Dfa dfa() {
        return dfa;
    }

    /** A fresh per-sequence constraint over {@code tokenizer}'s vocabulary, at the start of the output. */
    public Constraint start(Tokenizer tokenizer) {
        TokenMasker masker;
        synchronized (maskers) {
            masker = maskers.computeIfAbsent(tokenizer, t -> new TokenMasker(dfa, TokenTrie.of(t), t.eosId()));
        }
        return new Constraint(masker);
    }

    /** Whether the whole byte string {@code text} is a complete output (used by tests and tools). */
    public boolean matches(byte[] text) {
        int s = walk(text);
        return s != Dfa.DEAD && dfa.accepting(s);
    }

    /** Whether {@code text} can still be completed to an output (a valid prefix). */
    public boolean prefix(byte[] text) {
        return walk(text) != Dfa.DEAD;
    }

    private int walk(byte[] text) {
        int s = 0;
        for (int i = 0; i < text.length && s != Dfa.DEAD; i++) {
            s = dfa.step(s, text[i] & 0xFF);
        }
        return s;
    }
}
