package io.moestream.runtime.chat;

import io.moestream.runtime.chat.Node.Expr;
import io.moestream.runtime.chat.Node.Stmt;
import io.moestream.runtime.chat.Token.Type;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** Recursive-descent parser with jinja2 3.1's grammar (same precedence, same statement forms). */
final class Parser {

    private static final Set<String> COMPARE = Set.of("==", "!=", "<", "<=", ">", ">=");

    private final List<Token> tokens;
    private final int maxNesting;
    private int pos;
    private int nesting;
    private int loops;

    private Parser(List<Token> tokens, int maxNesting) {
        this.tokens = tokens;
        this.maxNesting = maxNesting;
    }

    static List<Stmt> parse(String source, int maxNesting) {
        Parser p = new Parser(Lexer.tokenize(source), maxNesting);
        List<Stmt> body = p.subparse(Set.of());
        if (p.cur().type() != Type.EOF) {
            throw p.fail("unexpected " + p.cur().describe());
        }
        return body;
    }

    // ---- token stream

    private Token cur() {
        return tokens.get(pos);
    }

    private Token look() {
        return tokens.get(Math.min(pos + 1, tokens.size() - 1));
    }

    private Token next() {
        Token t = tokens.get(pos);
        if (t.type() != Type.EOF) {
            pos++;
        }
        return t;
    }

    private boolean skipName(String v) {
        if (cur().isName(v)) {
            pos++;
            return true;
        }
        return false;
    }

    private boolean skipOp(String v) {
        if (cur().isOp(v)) {
            pos++;
            return true;
        }
        return false;
    }

    private Token expect(Type type) {
        if (cur().type() != type) {
            throw fail("expected " + type.name().toLowerCase() + ", got " + cur().describe());
        }
        return next();
    }

    private void expectOp(String op) {
        if (!skipOp(op)) {
            throw fail("expected '" + op + "', got " + cur().describe());
        }
    }

    private void expectName(String name) {
        if (!skipName(name)) {
            throw fail("expected '" + name + "', got " + cur().describe());
        }
    }

    private TemplateException fail(String msg) {
        return TemplateException.syntax(msg, cur().line());
    }

    private void enter() {
        if (++nesting > maxNesting) {
            throw TemplateException.limit("template nesting deeper than " + maxNesting);
        }
    }

    // ---- statements

    private List<Stmt> subparse(Set<String> endTokens) {
        List<Stmt> body = new ArrayList<>();
        while (true) {
            Token t = cur();
            switch (t.type()) {
                case DATA -> {
                    next();
                    body.add(new Node.Data(t.value()));
                }
                case VAR_BEGIN -> {
                    next();
                    body.add(new Node.Print(parseTuple(false, true, Set.of(), false)));
                    expect(Type.VAR_END);
                }
                case BLOCK_BEGIN -> {
                    next();
                    if (cur().type() == Type.NAME && endTokens.contains(cur().value())) {
                        return body;
                    }
                    body.add(parseStatement());
                    expect(Type.BLOCK_END);
                }
                case EOF -> {
                    if (!endTokens.isEmpty()) {
                        throw fail("unexpected end of template, expected one of " + endTokens);
                    }
                    return body;
                }
                default -> throw fail("unexpected " + t.describe());
            }
        }
    }

    /** Body up to one of {@code end}; leaves the end tag name as the current token unless dropped. */
    private List<Stmt> statements(Set<String> end, boolean dropNeedle) {
        skipOp(":");
        expect(Type.BLOCK_END);
        enter();
        List<Stmt> body = subparse(end);
        nesting--;
        if (dropNeedle) {
            next();
        }
        return body;
    }

    private Stmt parseStatement() {
        Token t = cur();
        if (t.type() != Type.NAME) {
            throw fail("tag name expected");
        }
        return switch (t.value()) {
            case "for" -> parseFor();
            case "if" -> parseIf();
            case "set" -> parseSet();
            case "macro" -> parseMacro();
            case "call" -> parseCallBlock();
            case "filter" -> {
                next();
                Expr f = parseFilter(null, true);
                yield new Node.FilterBlock(f, statements(Set.of("endfilter"), true));
            }
            case "with" -> parseWith();
            case "block" -> parseBlock();
            case "break", "continue" -> {
                if (loops == 0) {
                    throw fail("'" + t.value() + "' outside loop");
                }
                next();
                yield t.value().equals("break") ? new Node.Break() : new Node.Continue();
            }
            case "generation" -> {
                next();
                yield new Node.Block("generation", statements(Set.of("endgeneration"), true));
            }
            case "autoescape" -> {
                next();
                parseExpression(true);
                statements(Set.of("endautoescape"), true);
                yield new Node.Unsupported("{% autoescape %}");
            }
            case "include", "import", "from", "extends" -> {
                next();
                while (cur().type() != Type.BLOCK_END && cur().type() != Type.EOF) {
                    next();
                }
                yield new Node.Unsupported("{% " + t.value() + " %} (templates have no loader)");
            }
            case "print" -> {
                next();
                yield new Node.Print(parseTuple(false, true, Set.of(), false));
            }
            default -> throw fail("Encountered unknown tag '" + t.value() + "'");
        };
    }

    private Stmt parseFor() {
        next();
        Expr target = parseAssignTarget(Set.of("in"), false);
        expectName("in");
        Expr iter = parseTuple(false, false, Set.of("recursive"), false);
        Expr filter = skipName("if") ? parseExpression(true) : null;
        boolean recursive = skipName("recursive");
        loops++;
        List<Stmt> body = statements(Set.of("endfor", "else"), false);
        loops--;
        List<Stmt> orElse = next().value().equals("endfor") ? List.of() : statements(Set.of("endfor"), true);
        return new Node.For(target, iter, filter, recursive, body, orElse);
    }

    private Stmt parseIf() {
        next();
        Expr test = parseTuple(false, false, Set.of(), false);
        List<Stmt> body = statements(Set.of("elif", "else", "endif"), false);
        Token t = next();
        List<Stmt> orElse = switch (t.value()) {
            case "elif" -> List.of(parseElif());
            case "else" -> statements(Set.of("endif"), true);
            default -> List.of();
        };
        return new Node.If(test, body, orElse);
    }

    /** An {@code elif} is an {@code if} nested in the else branch; the current token is the {@code elif}. */
    private Stmt parseElif() {
        pos--;
        return parseIf();
    }

    private Stmt parseSet() {
        next();
        Expr target = parseAssignTarget(Set.of(), true);
        if (skipOp("=")) {
            return new Node.Set(target, parseTuple(false, true, Set.of(), false));
        }
        Expr filter = cur().isOp("|") ? parseFilter(null, false) : null;
        return new Node.SetBlock(target, filter, statements(Set.of("endset"), true));
    }

    private Node.MacroDef signatureAndBody(String name, String endTag, boolean signature) {
        List<String> params = new ArrayList<>();
        List<Expr> defaults = new ArrayList<>();
        if (signature) {
            expectOp("(");
            while (!cur().isOp(")")) {
                if (!params.isEmpty()) {
                    expectOp(",");
                }
                params.add(expect(Type.NAME).value());
                if (skipOp("=")) {
                    defaults.add(parseExpression(true));
                } else if (!defaults.isEmpty()) {
                    throw fail("non-default argument follows default argument");
                }
            }
            expectOp(")");
        }
        if (endTag == null) {
            return new Node.MacroDef(name, params, defaults, List.of(), false, false, false);
        }
        int from = pos;
        int outerLoops = loops;
        loops = 0;
        List<Stmt> body = statements(Set.of(endTag), true);
        loops = outerLoops;
        return new Node.MacroDef(name, params, defaults, body, mentions(from, "varargs"), mentions(from, "kwargs"),
                mentions(from, "caller"));
    }

    /** Whether a name token occurs between {@code from} and the current position (jinja2's find_undeclared). */
    private boolean mentions(int from, String name) {
        for (int i = from; i < pos; i++) {
            if (tokens.get(i).isName(name)) {
                return true;
            }
        }
        return false;
    }

    private Stmt parseMacro() {
        next();
        String name = expect(Type.NAME).value();
        return signatureAndBody(name, "endmacro", true);
    }

    private Stmt parseCallBlock() {
        next();
        Node.MacroDef sig = signatureAndBody("caller", null, cur().isOp("("));
        Expr call = parseExpression(true);
        if (!(call instanceof Node.Call c)) {
            throw fail("expected call");
        }
        int outerLoops = loops;
        loops = 0;
        List<Stmt> body = statements(Set.of("endcall"), true);
        loops = outerLoops;
        return new Node.CallBlock(c, new Node.MacroDef("caller", sig.params(), sig.defaults(), body, false, false,
                false));
    }

    private Stmt parseWith() {
        next();
        List<Expr> targets = new ArrayList<>();
        List<Expr> values = new ArrayList<>();
        while (cur().type() != Type.BLOCK_END) {
            if (!targets.isEmpty()) {
                expectOp(",");
            }
            targets.add(parseAssignTarget(Set.of(), false));
            expectOp("=");
            values.add(parseExpression(true));
        }
        return new Node.With(targets, values, statements(Set.of("endwith"), true));
    }

    private Stmt parseBlock() {
        next();
        String name = expect(Type.NAME).value();
        skipName("scoped");
        skipName("required");
        List<Stmt> body = statements(Set.of("endblock"), true);
        skipName(name);
        return new Node.Block(name, body);
    }

    private Expr parseAssignTarget(Set<String> extraEnd, boolean withNamespace) {
        Expr target;
        if (withNamespace && cur().type() == Type.NAME && look().isOp(".")) {
            String ns = next().value();
            next();
            target = new Node.GetAttr(new Node.Name(ns, cur().line()), expect(Type.NAME).value());
        } else {
            target = parseTuple(true, false, extraEnd, false);
        }
        checkAssignable(target);
        return target;
    }

    private void checkAssignable(Expr target) {
        if (target instanceof Node.TupleLit t) {
            t.items().forEach(this::checkAssignable);
        } else if (target instanceof Node.Name n) {
            if (List.of("true", "false", "none", "True", "False", "None").contains(n.name())) {
                throw fail("can't assign to '" + n.name() + "'");
            }
        } else if (!(target instanceof Node.GetAttr)) {
            throw fail("can't assign to " + target.getClass().getSimpleName());
        }
    }

    // ---- expressions

    private boolean tupleEnd(Set<String> extraEnd) {
        Token t = cur();
        return t.type() == Type.VAR_END || t.type() == Type.BLOCK_END || t.isOp(")")
                || (t.type() == Type.NAME && extraEnd.contains(t.value()));
    }

    private Expr parseTuple(boolean simplified, boolean withCondexpr, Set<String> extraEnd, boolean explicitParens) {
        List<Expr> args = new ArrayList<>();
        boolean isTuple = false;
        while (true) {
            if (!args.isEmpty()) {
                expectOp(",");
            }
            if (tupleEnd(extraEnd)) {
                break;
            }
            args.add(simplified ? parsePrimary() : parseExpression(withCondexpr));
            if (cur().isOp(",")) {
                isTuple = true;
            } else {
                break;
            }
        }
        if (!isTuple) {
            if (!args.isEmpty()) {
                return args.get(0);
            }
            if (!explicitParens) {
                throw fail("Expected an expression, got " + cur().describe());
            }
        }
        return new Node.TupleLit(args);
    }

    private Expr parseExpression(boolean withCondexpr) {
        enter();
        try {
            return withCondexpr ? parseCondexpr() : parseOr();
        } finally {
            nesting--;
        }
    }

    private Expr parseCondexpr() {
        Expr e1 = parseOr();
        while (skipName("if")) {
            Expr e2 = parseOr();
            Expr e3 = skipName("else") ? parseCondexpr() : null;
            e1 = new Node.CondExpr(e2, e1, e3);
        }
        return e1;
    }

    private Expr parseOr() {
        Expr left = parseAnd();
        while (skipName("or")) {
            left = new Node.Binary("or", left, parseAnd());
        }
        return left;
    }

    private Expr parseAnd() {
        Expr left = parseNot();
        while (skipName("and")) {
            left = new Node.Binary("and", left, parseNot());
        }
        return left;
    }

    private Expr parseNot() {
        if (skipName("not")) {
            enter();
            Expr e = new Node.Unary("not", parseNot());
            nesting--;
            return e;
        }
        return parseCompare();
    }

    private Expr parseCompare() {
        Expr first = parseMath1();
        List<String> ops = new ArrayList<>();
        List<Expr> rest = new ArrayList<>();
        while (true) {
            Token t = cur();
            if (t.type() == Type.OP && COMPARE.contains(t.value())) {
                next();
                ops.add(t.value());
            } else if (skipName("in")) {
                ops.add("in");
            } else if (t.isName("not") && look().isName("in")) {
                pos += 2;
                ops.add("notin");
            } else {
                break;
            }
            rest.add(parseMath1());
        }
        return ops.isEmpty() ? first : new Node.Compare(first, ops, rest);
    }

    private Expr parseMath1() {
        Expr left = parseConcat();
        while (cur().isOp("+") || cur().isOp("-")) {
            String op = next().value();
            left = new Node.Binary(op, left, parseConcat());
        }
        return left;
    }

    private Expr parseConcat() {
        Expr left = parseMath2();
        while (skipOp("~")) {
            left = new Node.Binary("~", left, parseMath2());
        }
        return left;
    }

    private Expr parseMath2() {
        Expr left = parsePow();
        while (cur().isOp("*") || cur().isOp("/") || cur().isOp("//") || cur().isOp("%")) {
            String op = next().value();
            left = new Node.Binary(op, left, parsePow());
        }
        return left;
    }

    private Expr parsePow() {
        Expr left = parseUnary(true);
        while (skipOp("**")) {
            left = new Node.Binary("**", left, parseUnary(true));
        }
        return left;
    }

    private Expr parseUnary(boolean withFilter) {
        Expr node;
        if (cur().isOp("-") || cur().isOp("+")) {
            String op = next().value();
            enter();
            node = new Node.Unary(op, parseUnary(false));
            nesting--;
        } else {
            node = parsePrimary();
        }
        node = parsePostfix(node);
        return withFilter ? parseFilterExpr(node) : node;
    }

    private Expr parsePrimary() {
        Token t = cur();
        switch (t.type()) {
            case NAME -> {
                next();
                return switch (t.value()) {
                    case "true", "True" -> new Node.Const(Boolean.TRUE);
                    case "false", "False" -> new Node.Const(Boolean.FALSE);
                    case "none", "None" -> new Node.Const(null);
                    default -> new Node.Name(t.value(), t.line());
                };
            }
            case STRING -> {
                next();
                StringBuilder b = new StringBuilder(t.value());
                while (cur().type() == Type.STRING) {
                    b.append(next().value());
                }
                return new Node.Const(b.toString());
            }
            case INTEGER -> {
                next();
                return new Node.Const(parseInt(t.value()));
            }
            case FLOAT -> {
                next();
                return new Node.Const(Double.parseDouble(t.value()));
            }
            default -> { }
        }
        if (skipOp("(")) {
            enter();
            Expr e = parseTuple(false, true, Set.of(), true);
            expectOp(")");
            nesting--;
            return e;
        }
        if (skipOp("[")) {
            enter();
            List<Expr> items = new ArrayList<>();
            while (!cur().isOp("]")) {
                if (!items.isEmpty()) {
                    expectOp(",");
                }
                if (cur().isOp("]")) {
                    break;
                }
                items.add(parseExpression(true));
            }
            expectOp("]");
            nesting--;
            return new Node.ListLit(items);
        }
        if (skipOp("{")) {
            enter();
            List<Expr> keys = new ArrayList<>();
            List<Expr> values = new ArrayList<>();
            while (!cur().isOp("}")) {
                if (!keys.isEmpty()) {
                    expectOp(",");
                }
                if (cur().isOp("}")) {
                    break;
                }
                keys.add(parseExpression(true));
                expectOp(":");
                values.add(parseExpression(true));
            }
            expectOp("}");
            nesting--;
            return new Node.DictLit(keys, values);
        }
        throw fail("unexpected " + t.describe());
    }

    private static Object parseInt(String text) {
        BigInteger v;
        String lower = text.toLowerCase();
        if (lower.startsWith("0x")) {
            v = new BigInteger(text.substring(2), 16);
        } else if (lower.startsWith("0o")) {
            v = new BigInteger(text.substring(2), 8);
        } else if (lower.startsWith("0b")) {
            v = new BigInteger(text.substring(2), 2);
        } else {
            v = new BigInteger(text);
        }
        if (v.bitLength() > 63) {
            throw TemplateException.unsupported("integer literal beyond 64 bits");
        }
        return v.longValue();
    }

    private Expr parsePostfix(Expr node) {
        while (true) {
            if (cur().isOp(".")) {
                next();
                Token attr = next();
                if (attr.type() == Type.NAME) {
                    node = new Node.GetAttr(node, attr.value());
                } else if (attr.type() == Type.INTEGER) {
                    node = new Node.GetItem(node, new Node.Const(parseInt(attr.value())));
                } else {
                    throw fail("expected name or number");
                }
            } else if (cur().isOp("[")) {
                next();
                enter();
                List<Expr> args = new ArrayList<>();
                while (!cur().isOp("]")) {
                    if (!args.isEmpty()) {
                        expectOp(",");
                    }
                    args.add(parseSubscribed());
                }
                expectOp("]");
                nesting--;
                node = new Node.GetItem(node, args.size() == 1 ? args.get(0) : new Node.TupleLit(args));
            } else if (cur().isOp("(")) {
                node = new Node.Call(node, parseCallArgs());
            } else {
                return node;
            }
        }
    }

    private Expr parseSubscribed() {
        Expr start = null;
        if (!cur().isOp(":")) {
            Expr e = parseExpression(true);
            if (!cur().isOp(":")) {
                return e;
            }
            start = e;
        }
        next();
        Expr stop = null;
        Expr step = null;
        if (!cur().isOp(":") && !cur().isOp("]") && !cur().isOp(",")) {
            stop = parseExpression(true);
        }
        if (skipOp(":") && !cur().isOp("]") && !cur().isOp(",")) {
            step = parseExpression(true);
        }
        return new Node.Slice(start, stop, step);
    }

    private Expr parseFilterExpr(Expr node) {
        while (true) {
            if (cur().isOp("|")) {
                node = parseFilter(node, false);
            } else if (cur().isName("is")) {
                node = parseTest(node);
            } else if (cur().isOp("(")) {
                node = new Node.Call(node, parseCallArgs());
            } else {
                return node;
            }
        }
    }

    private Expr parseFilter(Expr node, boolean startInline) {
        while (cur().isOp("|") || startInline) {
            if (!startInline) {
                next();
            }
            Token name = expect(Type.NAME);
            String n = name.value();
            while (skipOp(".")) {
                n += "." + expect(Type.NAME).value();
            }
            Node.Args args = cur().isOp("(") ? parseCallArgs() : Node.Args.NONE;
            node = new Node.Filter(node, n, args, name.line());
            startInline = false;
        }
        return node;
    }

    private Expr parseTest(Expr node) {
        next();
        boolean negated = skipName("not");
        Token name = expect(Type.NAME);
        String n = name.value();
        while (skipOp(".")) {
            n += "." + expect(Type.NAME).value();
        }
        Node.Args args = Node.Args.NONE;
        Token t = cur();
        if (t.isOp("(")) {
            args = parseCallArgs();
        } else if ((t.type() == Type.NAME || t.type() == Type.STRING || t.type() == Type.INTEGER
                || t.type() == Type.FLOAT || t.isOp("[") || t.isOp("{"))
                && !t.isName("else") && !t.isName("or") && !t.isName("and")) {
            if (t.isName("is")) {
                throw fail("You cannot chain multiple tests with is");
            }
            Expr arg = parsePostfix(parsePrimary());
            args = new Node.Args(List.of(arg), List.of(), List.of(), null, null);
        }
        return new Node.Test(node, n, args, negated, name.line());
    }

    private Node.Args parseCallArgs() {
        expectOp("(");
        enter();
        List<Expr> args = new ArrayList<>();
        List<String> kwNames = new ArrayList<>();
        List<Expr> kwValues = new ArrayList<>();
        Expr star = null;
        Expr starStar = null;
        boolean requireComma = false;
        while (!cur().isOp(")")) {
            if (requireComma) {
                expectOp(",");
                if (cur().isOp(")")) {
                    break;
                }
            }
            if (skipOp("*")) {
                ensure(star == null && starStar == null);
                star = parseExpression(true);
            } else if (skipOp("**")) {
                ensure(starStar == null);
                starStar = parseExpression(true);
            } else if (cur().type() == Type.NAME && look().isOp("=")) {
                ensure(starStar == null);
                kwNames.add(next().value());
                next();
                kwValues.add(parseExpression(true));
            } else {
                ensure(star == null && starStar == null && kwNames.isEmpty());
                args.add(parseExpression(true));
            }
            requireComma = true;
        }
        expectOp(")");
        nesting--;
        return new Node.Args(args, kwNames, kwValues, star, starStar);
    }

    private void ensure(boolean ok) {
        if (!ok) {
            throw fail("invalid syntax for function call expression");
        }
    }
}
