package io.moestream.runtime.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The regex split that runs before BPE, selected by {@code tokenizer.ggml.pre}.
 *
 * <p>The regexes are llama.cpp's, written for java.util.regex: {@code \s} becomes
 * {@code \p{IsWhite_Space}} because Java's {@code \s} is ASCII-only while llama.cpp's is Unicode.
 * java.util.regex matches by code point, so a surrogate pair (an emoji) is one character to
 * {@code [^\s\p{L}\p{N}]} and is never split in half. The gpt-2 regex ends with a bare
 * {@code \s+} as llama.cpp's hand-written gpt-2 splitter does (whitespace followed by a newline and
 * then a letter would otherwise match nothing and be dropped).
 */
public enum PreTokenizer {
    GPT2("gpt-2",
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"),
    QWEN2("qwen2",
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
                    + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");

    private final String ggufName;
    private final Pattern pattern;

    PreTokenizer(String ggufName, String regex) {
        this.ggufName = ggufName;
        this.pattern = Pattern.compile(regex.replace("\\s", "\\p{IsWhite_Space}").replace("\\S", "\\P{IsWhite_Space}"));
    }

    /** The {@code tokenizer.ggml.pre} value. */
    public String ggufName() {
        return ggufName;
    }

    /** The pre-tokenizer for a {@code tokenizer.ggml.pre} value; fails naming an unknown one. */
    public static PreTokenizer forName(String pre) {
        for (PreTokenizer p : values()) {
            if (p.ggufName.equals(pre)) {
                return p;
            }
        }
        throw new IllegalArgumentException("unsupported tokenizer.ggml.pre '" + pre + "' (supported: gpt-2, qwen2)");
    }

    /** The pieces of {@code text}, in order; their concatenation is {@code text}. */
    public List<String> split(String text) {
        List<String> out = new ArrayList<>();
        Matcher m = pattern.matcher(text);
        int last = 0;
        while (m.find()) {
            if (m.start() > last) {
                out.add(text.substring(last, m.start())); // never expected; keeps the text lossless
            }
            out.add(m.group());
            last = m.end();
        }
        if (last < text.length()) {
            out.add(text.substring(last));
        }
        return out;
    }
}
