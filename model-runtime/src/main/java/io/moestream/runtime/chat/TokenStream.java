package io.moestream.runtime.chat;

import io.moestream.runtime.chat.Token.Type;
import java.util.List;

/** The token list a parse walks, with jinja2's stream helpers and the syntax-nesting bound. */
final class TokenStream {

    private final List<Token> tokens;
    private final int maxNesting;
    private int pos;
    private int nesting;

    TokenStream(List<Token> tokens, int maxNesting) {
        this.tokens = tokens;
        this.maxNesting = maxNesting;
    }

    Token cur() {
        return tokens.get(pos);
    }

    Token look() {
        return tokens.get(Math.min(pos + 1, tokens.size() - 1));
    }

    Token next() {
        Token t = tokens.get(pos);
        if (t.type() != Type.EOF) {
            pos++;
        }
        return t;
    }

    void skip(int n) {
        for (int i = 0; i < n; i++) {
            next();
        }
    }

    /** Steps back one token (an {@code elif} re-read as an {@code if}). */
    void back() {
        pos--;
    }

    int position() {
        return pos;
    }

    boolean skipName(String v) {
        if (cur().isName(v)) {
            pos++;
            return true;
        }
        return false;
    }

    boolean skipOp(String v) {
        if (cur().isOp(v)) {
            pos++;
            return true;
        }
        return false;
    }

    Token expect(Type type) {
        if (cur().type() != type) {
            throw fail("expected " + type.name().toLowerCase() + ", got " + cur().describe());
        }
        return next();
    }

    void expectOp(String op) {
        if (!skipOp(op)) {
            throw fail("expected '" + op + "', got " + cur().describe());
        }
    }

    void expectName(String name) {
        if (!skipName(name)) {
            throw fail("expected '" + name + "', got " + cur().describe());
        }
    }

    TemplateException fail(String msg) {
        return TemplateException.syntax(msg, cur().line());
    }

    /** One level deeper in the template's syntax; past the limit the parse stops. */
    void enter() {
        if (++nesting > maxNesting) {
            throw TemplateException.limit("template nesting deeper than " + maxNesting);
        }
    }

    void leave() {
        nesting--;
    }

    /** Whether a name token occurs between {@code from} and the current position (jinja2's find_undeclared). */
    boolean mentions(int from, String name) {
        for (int i = from; i < pos; i++) {
            if (tokens.get(i).isName(name)) {
                return true;
            }
        }
        return false;
    }
}
