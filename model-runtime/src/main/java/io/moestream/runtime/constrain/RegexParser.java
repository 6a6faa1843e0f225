package io.moestream.runtime.constrain;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * Our regular-expression engine's front end: an ECMA-262-style pattern (literals, {@code .},
 * classes {@code [...]} with ranges and negation, {@code \d \w \s} and their negations, escapes,
 * groups, {@code |}, the quantifiers {@code * + ? {n} {n,} {n,m}} (lazy forms too: same language),
 * {@code ^} and {@code $} at the ends) to an {@link Rx} over the bytes each character is written
 * as. Backreferences, lookaround, word boundaries and flags are refused: they are not regular or
 * not needed for a match of the whole text.
 */
final class RegexParser {

    static final int MAX_COUNT = 1000;

    private final String p;
    private final String keyword;
    private final Function<CodePoints, Rx> encode;
    private int at;

    private RegexParser(String pattern, String keyword, Function<CodePoints, Rx> encode) {
        this.p = pattern;
        this.keyword = keyword;
        this.encode = encode;
    }

    /** Output that is exactly a match of {@code regex} (anchors optional), as UTF-8. */
    static Rx fullMatch(String regex) {
        Anchored a = Anchored.of(regex);
        return new RegexParser(a.body, "regex", CodePoints::utf8).parseAll();
    }

    /**
     * The contents of a JSON string (between the quotes) whose value contains a match of
     * {@code pattern}, as JSON Schema's {@code pattern} means it (a search unless anchored).
     */
    static Rx jsonStringPattern(String pattern) {
        Anchored a = Anchored.of(pattern);
        Rx body = new RegexParser(a.body, "pattern", CodePoints::jsonStringChar).parseAll();
        Rx any = Rx.star(CodePoints.of(0, CodePoints.MAX).jsonStringChar());
        return Rx.seq(a.start ? Rx.EMPTY : any, body, a.end ? Rx.EMPTY : any);
    }

    private record Anchored(String body, boolean start, boolean end) {
        static Anchored of(String regex) {
            boolean start = regex.startsWith("^");
            String body = start ? regex.substring(1) : regex;
            int backslashes = 0;
            for (int i = body.length() - 2; i >= 0 && body.charAt(i) == '\\'; i--) {
                backslashes++;
            }
            boolean end = body.endsWith("$") && backslashes % 2 == 0;
            return new Anchored(end ? body.substring(0, body.length() - 1) : body, start, end);
        }
    }

    private Rx parseAll() {
        Rx rx = alternation();
        if (at < p.length()) {
            throw error("unexpected '" + p.charAt(at) + "' at " + at);
        }
        return rx;
    }

    private UnsupportedSchemaException error(String what) {
        return new UnsupportedSchemaException(keyword, keyword + " /" + p + "/: " + what);
    }

    private Rx alternation() {
        List<Rx> options = new ArrayList<>();
        options.add(sequence());
        while (at < p.length() && p.charAt(at) == '|') {
            at++;
            options.add(sequence());
        }
        return Rx.alt(options);
    }

    private Rx sequence() {
        List<Rx> parts = new ArrayList<>();
        while (at < p.length() && p.charAt(at) != '|' && p.charAt(at) != ')') {
            parts.add(quantified(atom()));
        }
        return new Rx.Seq(parts);
    }

    private Rx quantified(Rx atom) {
        if (at >= p.length()) {
            return atom;
        }
        int min;
        int max;
        char c = p.charAt(at);
        if (c == '*' || c == '+' || c == '?') {
            at++;
            min = c == '+' ? 1 : 0;
            max = c == '?' ? 1 : -1;
        } else if (c == '{' && p.indexOf('}', at) > at && p.substring(at + 1, p.indexOf('}', at)).matches("\\d+(,\\d*)?")) {
            String[] counts = p.substring(at + 1, p.indexOf('}', at)).split(",", -1);
            at = p.indexOf('}', at) + 1;
            min = parseCount(counts[0]);
            max = counts.length == 1 ? min : counts[1].isEmpty() ? -1 : parseCount(counts[1]);
            if (max >= 0 && max < min) {
                throw error("{" + min + "," + max + "}: the maximum is below the minimum");
            }
        } else {
            return atom;
        }
        if (at < p.length() && p.charAt(at) == '?') {
            at++; // lazy: the same language
        }
        if (at < p.length() && "*+?".indexOf(p.charAt(at)) >= 0) {
            throw error("nested quantifier at " + at);
        }
        return new Rx.Repeat(atom, min, max);
    }

    private int parseCount(String s) {
        if (s.length() > 4 || Integer.parseInt(s) > MAX_COUNT) {
            throw error("repetition counts above " + MAX_COUNT + " are not supported");
        }
        return Integer.parseInt(s);
    }

    private Rx atom() {
        char c = p.charAt(at);
        switch (c) {
            case '(' -> {
                at++;
                if (p.startsWith("?:", at)) {
                    at += 2;
                } else if (p.startsWith("?", at)) {
                    throw error("lookaround and named or flagged groups (?...) are not supported");
                }
                Rx inner = alternation();
                if (at >= p.length() || p.charAt(at) != ')') {
                    throw error("unclosed group");
                }
                at++;
                return inner;
            }
            case '[' -> {
                return encode.apply(charClass());
            }
            case '.' -> {
                at++;
                return encode.apply(CodePoints.DOT);
            }
            case '\\' -> {
                return encode.apply(escape(false));
            }
            case '^', '$' -> throw error("anchor '" + c + "' is only supported at the start/end of the pattern");
            case '*', '+', '?', '{' -> throw error("quantifier '" + c + "' with nothing to repeat at " + at);
            default -> {
                int cp = p.codePointAt(at);
                at += Character.charCount(cp);
                return encode.apply(CodePoints.of(cp, cp));
            }
        }
    }

    private CodePoints charClass() {
        at++; // [
        boolean negate = at < p.length() && p.charAt(at) == '^';
        if (negate) {
            at++;
        }
        CodePoints set = CodePoints.none();
        while (at < p.length() && p.charAt(at) != ']') {
            CodePoints lo = classAtom();
            if (at + 1 < p.length() && p.charAt(at) == '-' && p.charAt(at + 1) != ']' && single(lo)) {
                at++;
                CodePoints hi = classAtom();
                if (!single(hi) || hi.ranges()[0] < lo.ranges()[0]) {
                    throw error("bad class range at " + at);
                }
                set = set.union(CodePoints.of(lo.ranges()[0], hi.ranges()[0]));
            } else {
                set = set.union(lo);
            }
        }
        if (at >= p.length()) {
            throw error("unclosed character class");
        }
        at++; // ]
        return negate ? set.negate() : set;
    }

    private static boolean single(CodePoints s) {
        return s.ranges().length == 2 && s.ranges()[0] == s.ranges()[1];
    }

    private CodePoints classAtom() {
        if (p.charAt(at) == '\\') {
            return escape(true);
        }
        int cp = p.codePointAt(at);
        at += Character.charCount(cp);
        return CodePoints.of(cp, cp);
    }

    private CodePoints escape(boolean inClass) {
        at++; // backslash
        if (at >= p.length()) {
            throw error("trailing backslash");
        }
        char c = p.charAt(at++);
        return switch (c) {
            case 'd' -> CodePoints.DIGIT;
            case 'D' -> CodePoints.DIGIT.negate();
            case 'w' -> CodePoints.WORD;
            case 'W' -> CodePoints.WORD.negate();
            case 's' -> CodePoints.SPACE;
            case 'S' -> CodePoints.SPACE.negate();
            case 'n' -> CodePoints.of('\n', '\n');
            case 't' -> CodePoints.of('\t', '\t');
            case 'r' -> CodePoints.of('\r', '\r');
            case 'f' -> CodePoints.of('\f', '\f');
            case 'v' -> CodePoints.of(0x0B, 0x0B);
            case '0' -> CodePoints.of(0, 0);
            case 'u', 'x' -> {
                int len = c == 'u' ? 4 : 2;
                if (at + len > p.length() || !p.substring(at, at + len).matches("[0-9a-fA-F]+")) {
                    throw error("\\" + c + " needs " + len + " hex digits");
                }
                int cp = Integer.parseInt(p.substring(at, at + len), 16);
                at += len;
                yield CodePoints.of(cp, cp);
            }
            case 'b' -> {
                if (inClass) {
                    yield CodePoints.of('\b', '\b');
                }
                throw error("word boundaries (\\b) are not supported");
            }
            default -> {
                if (Character.isLetterOrDigit(c)) {
                    throw error("escape \\" + c + " is not supported (backreferences, \\p{...}, \\B, ...)");
                }
                yield CodePoints.of(c, c);
            }
        };
    }
}
