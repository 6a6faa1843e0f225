package io.moestream.runtime.chat;

import io.moestream.runtime.chat.Node.Expr;
import io.moestream.runtime.chat.Node.Stmt;
import io.moestream.runtime.chat.Token.Type;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** Recursive-descent parser of jinja2 3.1's statements; expressions go to {@link ExpressionParser}. */
final class Parser {

    private final TokenStream ts;
    private final ExpressionParser ex;
    private int loops;

    private Parser(TokenStream ts) {
        this.ts = ts;
        this.ex = new ExpressionParser(ts);
    }

    static List<Stmt> parse(String source, int maxNesting) {
        Parser p = new Parser(new TokenStream(Lexer.tokenize(source), maxNesting));
        List<Stmt> body = p.subparse(Set.of());
        if (p.ts.cur().type() != Type.EOF) {
            throw p.ts.fail("unexpected " + p.ts.cur().describe());
        }
        return body;
    }

    private List<Stmt> subparse(Set<String> endTokens) {
        List<Stmt> body = new ArrayList<>();
        while (true) {
            Token t = ts.cur();
            switch (t.type()) {
                case DATA -> {
                    ts.next();
                    body.add(new Node.Data(t.value()));
                }
                case VAR_BEGIN -> {
                    ts.next();
                    body.add(new Node.Print(ex.parseTuple(false, true, Set.of(), false)));
                    ts.expect(Type.VAR_END);
                }
                case BLOCK_BEGIN -> {
                    ts.next();
                    if (ts.cur().type() == Type.NAME && endTokens.contains(ts.cur().value())) {
                        return body;
                    }
                    body.add(parseStatement());
                    ts.expect(Type.BLOCK_END);
                }
                case EOF -> {
                    if (!endTokens.isEmpty()) {
                        throw ts.fail("unexpected end of template, expected one of " + endTokens);
                    }
                    return body;
                }
                default -> throw ts.fail("unexpected " + t.describe());
            }
        }
    }

    /** Body up to one of {@code end}; leaves the end tag name as the current token unless dropped. */
    private List<Stmt> statements(Set<String> end, boolean dropNeedle) {
        ts.skipOp(":");
        ts.expect(Type.BLOCK_END);
        ts.enter();
        List<Stmt> body = subparse(end);
        ts.leave();
        if (dropNeedle) {
            ts.next();
        }
        return body;
    }

    private Stmt parseStatement() {
        Token t = ts.cur();
        if (t.type() != Type.NAME) {
            throw ts.fail("tag name expected");
        }
        return switch (t.value()) {
            case "for" -> parseFor();
            case "if" -> parseIf();
            case "set" -> parseSet();
            case "macro" -> parseMacro();
            case "call" -> parseCallBlock();
            case "filter" -> {
                ts.next();
                Expr f = ex.parseFilter(null, true);
                yield new Node.FilterBlock(f, statements(Set.of("endfilter"), true));
            }
            case "with" -> parseWith();
            case "block" -> parseBlock();
            case "break", "continue" -> {
                if (loops == 0) {
                    throw ts.fail("'" + t.value() + "' outside loop");
                }
                ts.next();
                yield t.value().equals("break") ? new Node.Break() : new Node.Continue();
            }
            case "generation" -> {
                ts.next();
                yield new Node.Block("generation", statements(Set.of("endgeneration"), true));
            }
            case "autoescape" -> {
                ts.next();
                ex.parseExpression(true);
                statements(Set.of("endautoescape"), true);
                yield new Node.Unsupported("{% autoescape %}");
            }
            case "include", "import", "from", "extends" -> {
                ts.next();
                while (ts.cur().type() != Type.BLOCK_END && ts.cur().type() != Type.EOF) {
                    ts.next();
                }
                yield new Node.Unsupported("{% " + t.value() + " %} (templates have no loader)");
            }
            case "print" -> {
                ts.next();
                yield new Node.Print(ex.parseTuple(false, true, Set.of(), false));
            }
            default -> throw ts.fail("Encountered unknown tag '" + t.value() + "'");
        };
    }

    private Stmt parseFor() {
        ts.next();
        Expr target = ex.parseAssignTarget(Set.of("in"), false);
        if (names(target).contains("loop")) {
            throw ts.fail("Can't assign to special loop variable in for-loop target");
        }
        ts.expectName("in");
        Expr iter = ex.parseTuple(false, false, Set.of("recursive"), false);
        Expr filter = ts.skipName("if") ? ex.parseExpression(true) : null;
        boolean recursive = ts.skipName("recursive");
        loops++;
        List<Stmt> body = statements(Set.of("endfor", "else"), false);
        loops--;
        List<Stmt> orElse = ts.next().value().equals("endfor") ? List.of() : statements(Set.of("endfor"), true);
        return new Node.For(target, iter, filter, recursive, body, orElse);
    }

    private static List<String> names(Expr target) {
        if (target instanceof Node.Name n) {
            return List.of(n.name());
        }
        List<String> out = new ArrayList<>();
        if (target instanceof Node.TupleLit t) {
            t.items().forEach(x -> out.addAll(names(x)));
        }
        return out;
    }

    private Stmt parseIf() {
        ts.next();
        Expr test = ex.parseTuple(false, false, Set.of(), false);
        List<Stmt> body = statements(Set.of("elif", "else", "endif"), false);
        Token t = ts.next();
        List<Stmt> orElse = switch (t.value()) {
            case "elif" -> List.of(parseElif());
            case "else" -> statements(Set.of("endif"), true);
            default -> List.of();
        };
        return new Node.If(test, body, orElse);
    }

    /** An {@code elif} is an {@code if} nested in the else branch; the current token is the {@code elif}. */
    private Stmt parseElif() {
        ts.back();
        return parseIf();
    }

    private Stmt parseSet() {
        ts.next();
        Expr target = ex.parseAssignTarget(Set.of(), true);
        if (ts.skipOp("=")) {
            return new Node.Set(target, ex.parseTuple(false, true, Set.of(), false));
        }
        Expr filter = ts.cur().isOp("|") ? ex.parseFilter(null, false) : null;
        return new Node.SetBlock(target, filter, statements(Set.of("endset"), true));
    }

    private Node.MacroDef signatureAndBody(String name, String endTag, boolean signature) {
        List<String> params = new ArrayList<>();
        List<Expr> defaults = new ArrayList<>();
        if (signature) {
            ts.expectOp("(");
            while (!ts.cur().isOp(")")) {
                if (!params.isEmpty()) {
                    ts.expectOp(",");
                }
                params.add(ts.expect(Type.NAME).value());
                if (ts.skipOp("=")) {
                    defaults.add(ex.parseExpression(true));
                } else if (!defaults.isEmpty()) {
                    throw ts.fail("non-default argument follows default argument");
                }
            }
            ts.expectOp(")");
        }
        if (endTag == null) {
            return new Node.MacroDef(name, params, defaults, List.of(), false, false, false);
        }
        int from = ts.position();
        int outerLoops = loops;
        loops = 0;
        List<Stmt> body = statements(Set.of(endTag), true);
        loops = outerLoops;
        return new Node.MacroDef(name, params, defaults, body, ts.mentions(from, "varargs"),
                ts.mentions(from, "kwargs"), ts.mentions(from, "caller"));
    }


    private Stmt parseMacro() {
        ts.next();
        String name = ts.expect(Type.NAME).value();
        return signatureAndBody(name, "endmacro", true);
    }

    private Stmt parseCallBlock() {
        ts.next();
        Node.MacroDef sig = signatureAndBody("caller", null, ts.cur().isOp("("));
        Expr call = ex.parseExpression(true);
        if (!(call instanceof Node.Call c)) {
            throw ts.fail("expected call");
        }
        int outerLoops = loops;
        loops = 0;
        List<Stmt> body = statements(Set.of("endcall"), true);
        loops = outerLoops;
        return new Node.CallBlock(c, new Node.MacroDef("caller", sig.params(), sig.defaults(), body, false, false,
                false));
    }

    private Stmt parseWith() {
        ts.next();
        List<Expr> targets = new ArrayList<>();
        List<Expr> values = new ArrayList<>();
        while (ts.cur().type() != Type.BLOCK_END) {
            if (!targets.isEmpty()) {
                ts.expectOp(",");
            }
            targets.add(ex.parseAssignTarget(Set.of(), false));
            ts.expectOp("=");
            values.add(ex.parseExpression(true));
        }
        return new Node.With(targets, values, statements(Set.of("endwith"), true));
    }

    private Stmt parseBlock() {
        ts.next();
        String name = ts.expect(Type.NAME).value();
        ts.skipName("scoped");
        ts.skipName("required");
        List<Stmt> body = statements(Set.of("endblock"), true);
        ts.skipName(name);
        return new Node.Block(name, body);
    }
}
