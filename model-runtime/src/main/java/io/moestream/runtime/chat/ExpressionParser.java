package io.moestream.runtime.chat;

import io.moestream.runtime.chat.Node.Expr;
import io.moestream.runtime.chat.Token.Type;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** jinja2 3.1's expression grammar: same precedence, tuples, filters, tests, calls, slices. */
final class ExpressionParser {

    private static final Set<String> COMPARE = Set.of("==", "!=", "<", "<=", ">", ">=");

    private final TokenStream ts;

    ExpressionParser(TokenStream ts) {
        this.ts = ts;
    }

    Expr parseAssignTarget(Set<String> extraEnd, boolean withNamespace) {
        Expr target;
        if (withNamespace && ts.cur().type() == Type.NAME && ts.look().isOp(".")) {
            String ns = ts.next().value();
            ts.next();
            target = new Node.GetAttr(new Node.Name(ns, ts.cur().line()), ts.expect(Type.NAME).value());
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
                throw ts.fail("can't assign to '" + n.name() + "'");
            }
        } else if (!(target instanceof Node.GetAttr)) {
            throw ts.fail("can't assign to " + target.getClass().getSimpleName());
        }
    }



    private boolean tupleEnd(Set<String> extraEnd) {
        Token t = ts.cur();
        return t.type() == Type.VAR_END || t.type() == Type.BLOCK_END || t.isOp(")")
                || (t.type() == Type.NAME && extraEnd.contains(t.value()));
    }

    Expr parseTuple(boolean simplified, boolean withCondexpr, Set<String> extraEnd, boolean explicitParens) {
        List<Expr> args = new ArrayList<>();
        boolean isTuple = false;
        while (true) {
            if (!args.isEmpty()) {
                ts.expectOp(",");
            }
            if (tupleEnd(extraEnd)) {
                break;
            }
            args.add(simplified ? parsePrimary() : parseExpression(withCondexpr));
            if (ts.cur().isOp(",")) {
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
                throw ts.fail("Expected an expression, got " + ts.cur().describe());
            }
        }
        return new Node.TupleLit(args);
    }

    Expr parseExpression(boolean withCondexpr) {
        ts.enter();
        try {
            return withCondexpr ? parseCondexpr() : parseOr();
        } finally {
            ts.leave();
        }
    }

    private Expr parseCondexpr() {
        Expr e1 = parseOr();
        while (ts.skipName("if")) {
            Expr e2 = parseOr();
            Expr e3 = ts.skipName("else") ? parseCondexpr() : null;
            e1 = new Node.CondExpr(e2, e1, e3);
        }
        return e1;
    }

    private Expr parseOr() {
        Expr left = parseAnd();
        while (ts.skipName("or")) {
            left = new Node.Binary("or", left, parseAnd());
        }
        return left;
    }

    private Expr parseAnd() {
        Expr left = parseNot();
        while (ts.skipName("and")) {
            left = new Node.Binary("and", left, parseNot());
        }
        return left;
    }

    private Expr parseNot() {
        if (ts.skipName("not")) {
            ts.enter();
            Expr e = new Node.Unary("not", parseNot());
            ts.leave();
            return e;
        }
        return parseCompare();
    }

    private Expr parseCompare() {
        Expr first = parseMath1();
        List<String> ops = new ArrayList<>();
        List<Expr> rest = new ArrayList<>();
        while (true) {
            Token t = ts.cur();
            if (t.type() == Type.OP && COMPARE.contains(t.value())) {
                ts.next();
                ops.add(t.value());
            } else if (ts.skipName("in")) {
                ops.add("in");
            } else if (t.isName("not") && ts.look().isName("in")) {
                ts.skip(2);
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
        while (ts.cur().isOp("+") || ts.cur().isOp("-")) {
            String op = ts.next().value();
            left = new Node.Binary(op, left, parseConcat());
        }
        return left;
    }

    private Expr parseConcat() {
        Expr left = parseMath2();
        while (ts.skipOp("~")) {
            left = new Node.Binary("~", left, parseMath2());
        }
        return left;
    }

    private Expr parseMath2() {
        Expr left = parsePow();
        while (ts.cur().isOp("*") || ts.cur().isOp("/") || ts.cur().isOp("//") || ts.cur().isOp("%")) {
            String op = ts.next().value();
            left = new Node.Binary(op, left, parsePow());
        }
        return left;
    }

    private Expr parsePow() {
        Expr left = parseUnary(true);
        while (ts.skipOp("**")) {
            left = new Node.Binary("**", left, parseUnary(true));
        }
        return left;
    }

    private Expr parseUnary(boolean withFilter) {
        Expr node;
        if (ts.cur().isOp("-") || ts.cur().isOp("+")) {
            String op = ts.next().value();
            ts.enter();
            node = new Node.Unary(op, parseUnary(false));
            ts.leave();
        } else {
            node = parsePrimary();
        }
        node = parsePostfix(node);
        return withFilter ? parseFilterExpr(node) : node;
    }

    private Expr parsePrimary() {
        Token t = ts.cur();
        switch (t.type()) {
            case NAME -> {
                ts.next();
                return switch (t.value()) {
                    case "true", "True" -> new Node.Const(Boolean.TRUE);
                    case "false", "False" -> new Node.Const(Boolean.FALSE);
                    case "none", "None" -> new Node.Const(null);
                    default -> new Node.Name(t.value(), t.line());
                };
            }
            case STRING -> {
                ts.next();
                StringBuilder b = new StringBuilder(t.value());
                while (ts.cur().type() == Type.STRING) {
                    b.append(ts.next().value());
                }
                return new Node.Const(b.toString());
            }
            case INTEGER -> {
                ts.next();
                return new Node.Const(parseInt(t.value()));
            }
            case FLOAT -> {
                ts.next();
                return new Node.Const(Double.parseDouble(t.value()));
            }
            default -> { }
        }
        if (ts.skipOp("(")) {
            ts.enter();
            Expr e = parseTuple(false, true, Set.of(), true);
            ts.expectOp(")");
            ts.leave();
            return e;
        }
        if (ts.skipOp("[")) {
            ts.enter();
            List<Expr> items = new ArrayList<>();
            while (!ts.cur().isOp("]")) {
                if (!items.isEmpty()) {
                    ts.expectOp(",");
                }
                if (ts.cur().isOp("]")) {
                    break;
                }
                items.add(parseExpression(true));
            }
            ts.expectOp("]");
            ts.leave();
            return new Node.ListLit(items);
        }
        if (ts.skipOp("{")) {
            ts.enter();
            List<Expr> keys = new ArrayList<>();
            List<Expr> values = new ArrayList<>();
            while (!ts.cur().isOp("}")) {
                if (!keys.isEmpty()) {
                    ts.expectOp(",");
                }
                if (ts.cur().isOp("}")) {
                    break;
                }
                keys.add(parseExpression(true));
                ts.expectOp(":");
                values.add(parseExpression(true));
            }
            ts.expectOp("}");
            ts.leave();
            return new Node.DictLit(keys, values);
        }
        throw ts.fail("unexpected " + t.describe());
    }

    private static Object parseInt(String text) {
        if (text.length() > 70) {
            throw TemplateException.unsupported("integer literal beyond 64 bits");
        }
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
            if (ts.cur().isOp(".")) {
                ts.next();
                Token attr = ts.next();
                if (attr.type() == Type.NAME) {
                    node = new Node.GetAttr(node, attr.value());
                } else if (attr.type() == Type.INTEGER) {
                    node = new Node.GetItem(node, new Node.Const(parseInt(attr.value())));
                } else {
                    throw ts.fail("expected name or number");
                }
            } else if (ts.cur().isOp("[")) {
                ts.next();
                ts.enter();
                List<Expr> args = new ArrayList<>();
                while (!ts.cur().isOp("]")) {
                    if (!args.isEmpty()) {
                        ts.expectOp(",");
                    }
                    args.add(parseSubscribed());
                }
                ts.expectOp("]");
                ts.leave();
                node = new Node.GetItem(node, args.size() == 1 ? args.get(0) : new Node.TupleLit(args));
            } else if (ts.cur().isOp("(")) {
                node = new Node.Call(node, parseCallArgs());
            } else {
                return node;
            }
        }
    }

    private Expr parseSubscribed() {
        Expr start = null;
        if (!ts.cur().isOp(":")) {
            Expr e = parseExpression(true);
            if (!ts.cur().isOp(":")) {
                return e;
            }
            start = e;
        }
        ts.next();
        Expr stop = null;
        Expr step = null;
        if (!ts.cur().isOp(":") && !ts.cur().isOp("]") && !ts.cur().isOp(",")) {
            stop = parseExpression(true);
        }
        if (ts.skipOp(":") && !ts.cur().isOp("]") && !ts.cur().isOp(",")) {
            step = parseExpression(true);
        }
        return new Node.Slice(start, stop, step);
    }

    private Expr parseFilterExpr(Expr node) {
        while (true) {
            if (ts.cur().isOp("|")) {
                node = parseFilter(node, false);
            } else if (ts.cur().isName("is")) {
                node = parseTest(node);
            } else if (ts.cur().isOp("(")) {
                node = new Node.Call(node, parseCallArgs());
            } else {
                return node;
            }
        }
    }

    Expr parseFilter(Expr node, boolean startInline) {
        while (ts.cur().isOp("|") || startInline) {
            if (!startInline) {
                ts.next();
            }
            Token name = ts.expect(Type.NAME);
            String n = name.value();
            while (ts.skipOp(".")) {
                n += "." + ts.expect(Type.NAME).value();
            }
            Node.Args args = ts.cur().isOp("(") ? parseCallArgs() : Node.Args.NONE;
            node = new Node.Filter(node, n, args, name.line());
            startInline = false;
        }
        return node;
    }

    private Expr parseTest(Expr node) {
        ts.next();
        boolean negated = ts.skipName("not");
        Token name = ts.expect(Type.NAME);
        String n = name.value();
        while (ts.skipOp(".")) {
            n += "." + ts.expect(Type.NAME).value();
        }
        Node.Args args = Node.Args.NONE;
        Token t = ts.cur();
        if (t.isOp("(")) {
            args = parseCallArgs();
        } else if ((t.type() == Type.NAME || t.type() == Type.STRING || t.type() == Type.INTEGER
                || t.type() == Type.FLOAT || t.isOp("[") || t.isOp("{"))
                && !t.isName("else") && !t.isName("or") && !t.isName("and")) {
            if (t.isName("is")) {
                throw ts.fail("You cannot chain multiple tests with is");
            }
            Expr arg = parsePostfix(parsePrimary());
            args = new Node.Args(List.of(arg), List.of(), List.of(), null, null);
        }
        return new Node.Test(node, n, args, negated, name.line());
    }

    private Node.Args parseCallArgs() {
        ts.expectOp("(");
        ts.enter();
        List<Expr> args = new ArrayList<>();
        List<String> kwNames = new ArrayList<>();
        List<Expr> kwValues = new ArrayList<>();
        Expr star = null;
        Expr starStar = null;
        boolean requireComma = false;
        while (!ts.cur().isOp(")")) {
            if (requireComma) {
                ts.expectOp(",");
                if (ts.cur().isOp(")")) {
                    break;
                }
            }
            if (ts.skipOp("*")) {
                ensure(star == null && starStar == null);
                star = parseExpression(true);
            } else if (ts.skipOp("**")) {
                ensure(starStar == null);
                starStar = parseExpression(true);
            } else if (ts.cur().type() == Type.NAME && ts.look().isOp("=")) {
                ensure(starStar == null);
                if (kwNames.contains(ts.cur().value())) {
                    throw ts.fail("keyword argument repeated: " + ts.cur().value());
                }
                kwNames.add(ts.next().value());
                ts.next();
                kwValues.add(parseExpression(true));
            } else {
                ensure(star == null && starStar == null && kwNames.isEmpty());
                args.add(parseExpression(true));
            }
            requireComma = true;
        }
        ts.expectOp(")");
        ts.leave();
        return new Node.Args(args, kwNames, kwValues, star, starStar);
    }

    private void ensure(boolean ok) {
        if (!ok) {
            throw ts.fail("invalid syntax for function call expression");
        }
    }
}
