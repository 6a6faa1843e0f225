package io.moestream.runtime.chat;

import java.util.List;

/** The parsed template: statements ({@link Stmt}) over expressions ({@link Expr}), as jinja2's nodes. */
final class Node {

    private Node() {
    }

    sealed interface Expr permits Const, Name, TupleLit, ListLit, DictLit, GetAttr, GetItem, Slice, Unary,
            Binary, Compare, CondExpr, Call, Filter, Test {
    }

    record Const(Object value) implements Expr { }

    record Name(String name, int line) implements Expr { }

    record TupleLit(List<Expr> items) implements Expr { }

    record ListLit(List<Expr> items) implements Expr { }

    record DictLit(List<Expr> keys, List<Expr> values) implements Expr { }

    record GetAttr(Expr obj, String attr) implements Expr { }

    record GetItem(Expr obj, Expr key) implements Expr { }

    /** Only as the key of a {@link GetItem}; null parts are omitted. */
    record Slice(Expr start, Expr stop, Expr step) implements Expr { }

    /** {@code op} is {@code not}, {@code -} or {@code +}. */
    record Unary(String op, Expr operand) implements Expr { }

    /** Arithmetic, {@code ~}, {@code and}, {@code or}. */
    record Binary(String op, Expr left, Expr right) implements Expr { }

    /** A Python comparison chain {@code a < b == c}; ops include {@code in} and {@code notin}. */
    record Compare(Expr first, List<String> ops, List<Expr> rest) implements Expr { }

    /** {@code then if test else otherwise}; {@code otherwise} null when there is no else. */
    record CondExpr(Expr test, Expr then, Expr otherwise) implements Expr { }

    record Args(List<Expr> positional, List<String> keywordNames, List<Expr> keywordValues, Expr star,
            Expr starStar) {
        static final Args NONE = new Args(List.of(), List.of(), List.of(), null, null);
    }

    record Call(Expr fn, Args args) implements Expr { }

    /** {@code operand|name(args)}; operand null inside a filter block or set block. */
    record Filter(Expr operand, String name, Args args, int line) implements Expr { }

    record Test(Expr operand, String name, Args args, boolean negated, int line) implements Expr { }

    sealed interface Stmt permits Data, Print, For, If, Set, SetBlock, MacroDef, CallBlock, FilterBlock, With,
            Block, Break, Continue, Unsupported {
    }

    record Data(String text) implements Stmt { }

    record Print(Expr expr) implements Stmt { }

    record For(Expr target, Expr iter, Expr filter, boolean recursive, List<Stmt> body, List<Stmt> orElse)
            implements Stmt { }

    record If(Expr test, List<Stmt> body, List<Stmt> orElse) implements Stmt { }

    /** {@code target} is a {@link Name}, a {@link TupleLit} of targets or a namespace {@link GetAttr}. */
    record Set(Expr target, Expr value) implements Stmt { }

    /** {@code filter} applies to the rendered body (operand-less {@link Filter} chain), or null. */
    record SetBlock(Expr target, Expr filter, List<Stmt> body) implements Stmt { }

    /** {@code catchVarargs}/{@code catchKwargs}/{@code usesCaller}: the body mentions that special name. */
    record MacroDef(String name, List<String> params, List<Expr> defaults, List<Stmt> body, boolean catchVarargs,
            boolean catchKwargs, boolean usesCaller) implements Stmt { }

    record CallBlock(Call call, MacroDef caller) implements Stmt { }

    record FilterBlock(Expr filter, List<Stmt> body) implements Stmt { }

    record With(List<Expr> targets, List<Expr> values, List<Stmt> body) implements Stmt { }

    record Block(String name, List<Stmt> body) implements Stmt { }

    record Break() implements Stmt { }

    record Continue() implements Stmt { }

    /** A statement jinja2 parses but this renderer cannot run (include, import, extends, ...). */
    record Unsupported(String construct) implements Stmt { }
}
