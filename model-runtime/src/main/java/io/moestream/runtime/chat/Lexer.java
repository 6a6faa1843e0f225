package io.moestream.runtime.chat;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits template source into tokens the way jinja2 3.1's lexer does with {@code trim_blocks} and
 * {@code lstrip_blocks} on: newlines normalized to {@code \n}, one trailing newline dropped,
 * {@code -}/{@code +} whitespace control, comments dropped, {@code raw} blocks kept as data.
 */
final class Lexer {

    private static final Pattern RAW_BEGIN = Pattern.compile("\\{%([-+]?)\\s*raw\\s*(?:-%}\\s*|%})");
    private static final Pattern RAW_END =
            Pattern.compile("\\{%([-+]?)\\s*endraw\\s*(?:\\+%}|-%}\\s*|%}\\n?)");
    private static final String[] OPERATORS = {
        "//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}",
        ">", "<", "=", ".", ":", "|", ",", ";"
    };

    private final String src;
    private final List<Token> out = new ArrayList<>();
    private int pos;
    private int line = 1;
    private boolean lineStarting = true;

    private Lexer(String source) {
        String s = source.replace("\r\n", "\n").replace('\r', '\n');
        this.src = s.endsWith("\n") ? s.substring(0, s.length() - 1) : s;
    }

    static List<Token> tokenize(String source) {
        Lexer lx = new Lexer(source);
        lx.run();
        return lx.out;
    }

    private void run() {
        while (pos < src.length()) {
            int open = findOpen(pos);
            if (open < 0) {
                emitData(src.substring(pos));
                pos = src.length();
                break;
            }
            String text = src.substring(pos, open);
            Matcher raw = RAW_BEGIN.matcher(src).region(open, src.length());
            boolean isRaw = raw.lookingAt();
            char kind = src.charAt(open + 1);
            String sign = isRaw ? raw.group(1) : sign(open + 2);
            text = stripBefore(text, sign, kind != '{' || isRaw);
            emitData(text);
            line += count(src, pos, open);
            if (isRaw) {
                pos = raw.end();
                line += count(src, open, pos);
                lexRaw();
                continue;
            }
            pos = open + 2 + sign.length();
            switch (kind) {
                case '#' -> lexComment();
                case '%' -> lexTag(Token.Type.BLOCK_BEGIN, Token.Type.BLOCK_END);
                default -> lexTag(Token.Type.VAR_BEGIN, Token.Type.VAR_END);
            }
        }
        out.add(new Token(Token.Type.EOF, "", line));
    }

    private int findOpen(int from) {
        for (int i = from; i + 1 < src.length(); i++) {
            if (src.charAt(i) == '{') {
                char c = src.charAt(i + 1);
                if (c == '{' || c == '%' || c == '#') {
                    return i;
                }
            }
        }
        return -1;
    }

    private String sign(int at) {
        if (at < src.length() && (src.charAt(at) == '-' || src.charAt(at) == '+')) {
            return String.valueOf(src.charAt(at));
        }
        return "";
    }

    /** jinja2's OptionalLStrip: {@code -} strips all whitespace, else lstrip_blocks for block tags. */
    private String stripBefore(String text, String sign, boolean blockLike) {
        if (sign.equals("-")) {
            return PyStrings.rstrip(text, null);
        }
        if (!sign.equals("+") && blockLike) {
            int lpos = text.lastIndexOf('\n') + 1;
            if ((lpos > 0 || lineStarting) && lpos < text.length() && allSpace(text, lpos)) {
                return text.substring(0, lpos);
            }
        }
        return text;
    }

    private static boolean allSpace(String s, int from) {
        for (int i = from; i < s.length(); i++) {
            if (!PyStrings.isSpace(s.charAt(i))) {
                return false;
            }
        }
        return true;
    }

    private void emitData(String text) {
        if (!text.isEmpty()) {
            out.add(new Token(Token.Type.DATA, text, line));
        }
    }

    private void lexRaw() {
        Matcher end = RAW_END.matcher(src);
        int i = pos;
        while (true) {
            i = src.indexOf("{%", i);
            if (i < 0) {
                throw TemplateException.syntax("Missing end of raw directive", line);
            }
            end.region(i, src.length());
            if (end.lookingAt()) {
                break;
            }
            i++;
        }
        String text = stripBefore(src.substring(pos, i), end.group(1), true);
        emitData(text);
        line += count(src, pos, end.end());
        pos = end.end();
        lineStarting = src.charAt(pos - 1) == '\n';
    }

    private void lexComment() {
        int i = pos;
        while (true) {
            if (i + 1 >= src.length()) {
                throw TemplateException.syntax("Missing end of comment tag", line);
            }
            if ((src.charAt(i) == '-' || src.charAt(i) == '+') && src.startsWith("#}", i + 1)) {
                int end = i + 3;
                if (src.charAt(i) == '-') {
                    end = skipSpace(end);
                }
                finishTag(end);
                return;
            }
            if (src.startsWith("#}", i)) {
                int end = i + 2;
                if (end < src.length() && src.charAt(end) == '\n') {
                    end++;
                }
                finishTag(end);
                return;
            }
            i++;
        }
    }

    private void finishTag(int end) {
        line += count(src, pos, end);
        pos = end;
        lineStarting = src.charAt(end - 1) == '\n';
    }

    private int skipSpace(int i) {
        while (i < src.length() && PyStrings.isSpace(src.charAt(i))) {
            i++;
        }
        return i;
    }

    private void lexTag(Token.Type begin, Token.Type endType) {
        boolean block = begin == Token.Type.BLOCK_BEGIN;
        out.add(new Token(begin, "", line));
        Deque<Character> balance = new ArrayDeque<>();
        while (true) {
            if (pos >= src.length()) {
                throw TemplateException.syntax("unexpected end of template, expected '"
                        + (block ? "%}" : "}}") + "'", line);
            }
            if (balance.isEmpty()) {
                int end = tagEnd(block);
                if (end >= 0) {
                    out.add(new Token(endType, "", line));
                    finishTag(end);
                    return;
                }
            }
            char c = src.charAt(pos);
            if (PyStrings.isSpace(c)) {
                int e = skipSpace(pos);
                line += count(src, pos, e);
                pos = e;
            } else if (Literals.scanFloat(src, pos) >= 0) {
                int e = Literals.scanFloat(src, pos);
                add(Token.Type.FLOAT, src.substring(pos, e).replace("_", ""), e);
            } else if (Literals.scanInteger(src, pos) >= 0) {
                int e = Literals.scanInteger(src, pos);
                add(Token.Type.INTEGER, src.substring(pos, e).replace("_", ""), e);
            } else if (Character.isUnicodeIdentifierStart(src.codePointAt(pos)) || c == '_') {
                int e = pos + Character.charCount(src.codePointAt(pos));
                while (e < src.length() && Character.isUnicodeIdentifierPart(src.codePointAt(e))
                        && !Character.isIdentifierIgnorable(src.codePointAt(e))) {
                    e += Character.charCount(src.codePointAt(e));
                }
                add(Token.Type.NAME, src.substring(pos, e), e);
            } else if ((c == '\'' || c == '"') && Literals.scanString(src, pos) >= 0) {
                int e = Literals.scanString(src, pos);
                int startLine = line;
                line += count(src, pos, e);
                String body = src.substring(pos + 1, e - 1);
                out.add(new Token(Token.Type.STRING, PyStrings.unescapeLiteral(body), startLine));
                pos = e;
            } else {
                String op = operatorAt(pos);
                if (op == null) {
                    throw TemplateException.syntax("unexpected char '" + c + "'", line);
                }
                balanceOp(balance, op);
                add(Token.Type.OP, op, pos + op.length());
            }
        }
    }

    private int tagEnd(boolean block) {
        if (block) {
            if (src.startsWith("+%}", pos)) {
                return pos + 3;
            }
            if (src.startsWith("-%}", pos)) {
                return skipSpace(pos + 3);
            }
            if (src.startsWith("%}", pos)) {
                int e = pos + 2;
                return e < src.length() && src.charAt(e) == '\n' ? e + 1 : e;
            }
            return -1;
        }
        if (src.startsWith("-}}", pos)) {
            return skipSpace(pos + 3);
        }
        return src.startsWith("}}", pos) ? pos + 2 : -1;
    }

    private void balanceOp(Deque<Character> balance, String op) {
        switch (op) {
            case "{" -> balance.push('}');
            case "(" -> balance.push(')');
            case "[" -> balance.push(']');
            case "}", ")", "]" -> {
                if (balance.isEmpty()) {
                    throw TemplateException.syntax("unexpected '" + op + "'", line);
                }
                char expected = balance.pop();
                if (expected != op.charAt(0)) {
                    throw TemplateException.syntax("unexpected '" + op + "', expected '" + expected + "'", line);
                }
            }
            default -> { }
        }
    }

    private String operatorAt(int at) {
        for (String op : OPERATORS) {
            if (src.startsWith(op, at)) {
                return op;
            }
        }
        return null;
    }

    private void add(Token.Type type, String value, int end) {
        out.add(new Token(type, value, line));
        pos = end;
    }

    private static int count(String s, int from, int to) {
        int n = 0;
        for (int i = from; i < to; i++) {
            if (s.charAt(i) == '\n') {
                n++;
            }
        }
        return n;
    }
}
