package io.moestream.runtime.chat;

import io.moestream.runtime.chat.Node.Expr;
import io.moestream.runtime.chat.Node.Stmt;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Walks the parsed template over the value model ({@link PyOps}) within {@link RenderLimits}: every
 * loop iteration and call is a step, macro calls and recursive loops nest, output is capped.
 */
final class Interpreter {

    private enum Signal { NORMAL, BREAK, CONTINUE }

    /** An output buffer capped at the render's output limit. */
    private final class Out {
        final StringBuilder sb = new StringBuilder();

        void append(String s) {
            if ((long) sb.length() + s.length() > limits.maxOutputChars()) {
                throw TemplateException.limit("output longer than " + limits.maxOutputChars() + " characters");
            }
            sb.append(s);
        }
    }

    /**
     * The render running on this thread, so that the recursive value operations (repr, equality,
     * ordering, hashing) charge their work too: shared sublists make those exponential otherwise.
     */
    private static final ThreadLocal<Interpreter> CURRENT = new ThreadLocal<>();

    private final RenderLimits limits;
    private long steps;
    private long work;
    private int depth;

    Interpreter(RenderLimits limits) {
        this.limits = limits;
    }

    String render(List<Stmt> body, Scope scope) {
        Interpreter outer = CURRENT.get();
        CURRENT.set(this);
        try {
            Out out = new Out();
            exec(body, scope, out);
            return out.sb.toString();
        } finally {
            if (outer == null) {
                CURRENT.remove();
            } else {
                CURRENT.set(outer);
            }
        }
    }

    /** Charges the render running on this thread (none outside a render). */
    static void chargeCurrent(long n) {
        Interpreter in = CURRENT.get();
        if (in != null) {
            in.charge(n);
        }
    }

    /** {@link #chargeChars} on the render running on this thread. */
    static void chargeCurrentChars(long n) {
        chargeCurrent((n >> 4) + 1);
    }

    /** Checks a size against the output limit of the render running on this thread. */
    static void checkCurrentSize(long size) {
        Interpreter in = CURRENT.get();
        if (in != null) {
            in.checkSize(size);
        }
    }

    int maxSize() {
        return limits.maxOutputChars();
    }

    void checkSize(long size) {
        PyArith.checkSize(size, limits.maxOutputChars());
    }

    private void step() {
        if (++steps > limits.maxSteps()) {
            throw TemplateException.limit("more than " + limits.maxSteps() + " loop iterations and calls");
        }
    }

    /** Charges {@code n} units of work (elements or characters gone through). */
    void charge(long n) {
        work += n;
        if (work > limits.maxWork()) {
            throw TemplateException.limit("more than " + limits.maxWork()
                    + " units of work processed (an element, or 16 characters, each)");
        }
    }

    /**
     * Charges going through {@code n} characters: a unit per 16, since scanning or copying a
     * character costs a small fraction of an element operation.
     */
    void chargeChars(long n) {
        charge((n >> 4) + 1);
    }

    /** Charges building a string of {@code n} characters by copying: a unit per 64. */
    private void chargeCopy(long n) {
        charge((n >> 6) + 1);
    }

    /** Charges the size of a value about to be gone through by a filter or method. */
    void chargeSize(Object v) {
        if (PyOps.isStr(v)) {
            chargeChars(PyOps.str(v).length());
        } else if (v instanceof List<?> l) {
            charge(l.size());
        } else if (v instanceof Map<?, ?> m) {
            charge(m.size());
        } else if (v instanceof PyTuple t) {
            charge(t.items().size());
        } else if (v instanceof PyRange r) {
            charge(r.length());
        }
    }

    /** Indexing a str counts code points: as much work as the string is long. */
    private void chargeIfStr(Object v) {
        if (PyOps.isStr(v)) {
            chargeChars(PyOps.str(v).length());
        }
    }

    private void enter() {
        if (++depth > limits.maxDepth()) {
            throw TemplateException.limit("macro calls or recursive loops nested deeper than " + limits.maxDepth());
        }
    }

    // ---- statements

    private Signal exec(List<Stmt> body, Scope scope, Out out) {
        for (Stmt st : body) {
            Signal s = exec(st, scope, out);
            if (s != Signal.NORMAL) {
                return s;
            }
        }
        return Signal.NORMAL;
    }

    private Signal exec(Stmt st, Scope scope, Out out) {
        if (st instanceof Node.Data d) {
            out.append(d.text());
        } else if (st instanceof Node.Print p) {
            out.append(PyOps.str(eval(p.expr(), scope)));
        } else if (st instanceof Node.If f) {
            return exec(PyOps.truthy(eval(f.test(), scope)) ? f.body() : f.orElse(), scope, out);
        } else if (st instanceof Node.For f) {
            runLoop(f, eval(f.iter(), scope), scope, out, 1);
        } else if (st instanceof Node.Set s) {
            assign(s.target(), eval(s.value(), scope), scope);
        } else if (st instanceof Node.SetBlock s) {
            Object v = capture(s.body(), new Scope(scope));
            assign(s.target(), s.filter() == null ? v : applyFilters(s.filter(), v, scope), scope);
        } else if (st instanceof Node.MacroDef m) {
            scope.set(m.name(), new Macro(m, scope));
        } else if (st instanceof Node.CallBlock c) {
            Object caller = new Macro(c.caller(), scope);
            out.append(PyOps.str(call(c.call(), scope, Map.of("caller", caller))));
        } else if (st instanceof Node.FilterBlock f) {
            Object v = capture(f.body(), new Scope(scope));
            out.append(PyOps.str(applyFilters(f.filter(), v, scope)));
        } else if (st instanceof Node.With w) {
            Scope inner = new Scope(scope);
            for (int i = 0; i < w.targets().size(); i++) {
                assign(w.targets().get(i), eval(w.values().get(i), scope), inner);
            }
            return exec(w.body(), inner, out);
        } else if (st instanceof Node.Block b) {
            return exec(b.body(), new Scope(scope), out);
        } else if (st instanceof Node.Break) {
            return Signal.BREAK;
        } else if (st instanceof Node.Continue) {
            return Signal.CONTINUE;
        } else if (st instanceof Node.Unsupported u) {
            throw TemplateException.unsupported(u.construct());
        }
        return Signal.NORMAL;
    }

    private String capture(List<Stmt> body, Scope scope) {
        Out o = new Out();
        exec(body, scope, o);
        return o.sb.toString();
    }

    private void runLoop(Node.For f, Object iterable, Scope scope, Out out, int loopDepth) {
        List<Object> items = PyOps.iterate(iterable);
        if (f.filter() != null) {
            List<Object> kept = new ArrayList<>();
            for (Object item : items) {
                step();
                Scope probe = new Scope(scope);
                assign(f.target(), item, probe);
                if (PyOps.truthy(eval(f.filter(), probe))) {
                    kept.add(item);
                }
            }
            items = kept;
        }
        LoopContext.Recurse recurse = !f.recursive() ? null : (more, d) -> {
            enter();
            try {
                Out o = new Out();
                runLoop(f, more, scope, o, d);
                return o.sb.toString();
            } finally {
                depth--;
            }
        };
        LoopContext loop = new LoopContext(items, loopDepth, recurse);
        for (int i = 0; i < items.size(); i++) {
            step();
            loop.index0 = i;
            Scope it = new Scope(scope);
            it.set("loop", loop);
            assign(f.target(), items.get(i), it);
            if (exec(f.body(), it, out) == Signal.BREAK) {
                break;
            }
        }
        if (items.isEmpty()) {
            exec(f.orElse(), new Scope(scope), out);
        }
    }

    private void assign(Expr target, Object value, Scope scope) {
        if (target instanceof Node.Name n) {
            scope.set(n.name(), value);
        } else if (target instanceof Node.TupleLit t) {
            List<Object> values = PyOps.iterate(value);
            if (values.size() != t.items().size()) {
                throw TemplateException.value(values.size() < t.items().size()
                        ? "not enough values to unpack (expected " + t.items().size() + ", got " + values.size() + ")"
                        : "too many values to unpack (expected " + t.items().size() + ")");
            }
            for (int i = 0; i < values.size(); i++) {
                assign(t.items().get(i), values.get(i), scope);
            }
        } else if (target instanceof Node.GetAttr g && g.obj() instanceof Node.Name n) {
            Object ns = scope.get(n.name());
            if (!(ns instanceof Namespace namespace)) {
                throw TemplateException.runtime("cannot assign attribute on non-namespace object");
            }
            namespace.attrs.put(g.attr(), value);
        } else {
            throw TemplateException.runtime("cannot assign to " + target.getClass().getSimpleName());
        }
    }

    /** Runs a macro body: parameters bound (defaults evaluated in the macro's own scope), output returned. */
    String invokeMacro(Node.MacroDef def, Scope s, Object[] values) {
        step();
        enter();
        try {
            int firstDefault = def.params().size() - def.defaults().size();
            for (int i = 0; i < values.length; i++) {
                Object v = values[i];
                if (v == PyOps.MISSING) {
                    v = i >= firstDefault ? eval(def.defaults().get(i - firstDefault), s)
                            : Undefined.hint("parameter '" + def.params().get(i) + "' was not provided");
                }
                s.set(def.params().get(i), v);
            }
            return capture(def.body(), s);
        } finally {
            depth--;
        }
    }

    // ---- expressions

    Object eval(Expr e, Scope scope) {
        if (e instanceof Node.Const c) {
            return c.value();
        }
        if (e instanceof Node.Name n) {
            Object v = scope.get(n.name());
            return v == PyOps.MISSING ? Undefined.named(n.name()) : v;
        }
        if (e instanceof Node.GetAttr g) {
            Object obj = eval(g.obj(), scope);
            chargeIfStr(obj);
            return Access.getattr(obj, g.attr());
        }
        if (e instanceof Node.GetItem g) {
            Object obj = eval(g.obj(), scope);
            if (g.key() instanceof Node.Slice s) {
                chargeSize(obj);
                return Access.slice(obj, evalOpt(s.start(), scope), evalOpt(s.stop(), scope),
                        evalOpt(s.step(), scope));
            }
            chargeIfStr(obj);
            return Access.getitem(obj, eval(g.key(), scope));
        }
        if (e instanceof Node.Binary b) {
            return binary(b, scope);
        }
        if (e instanceof Node.Compare c) {
            return compare(c, scope);
        }
        if (e instanceof Node.Unary u) {
            Object v = eval(u.operand(), scope);
            return switch (u.op()) {
                case "not" -> !PyOps.truthy(v);
                case "-" -> PyArith.negate(v);
                default -> PyArith.plus(v);
            };
        }
        if (e instanceof Node.CondExpr c) {
            if (PyOps.truthy(eval(c.test(), scope))) {
                return eval(c.then(), scope);
            }
            return c.otherwise() == null
                    ? Undefined.hint("the inline if-expression evaluated to false and no else section was defined.")
                    : eval(c.otherwise(), scope);
        }
        if (e instanceof Node.Call c) {
            return call(c, scope, Map.of());
        }
        if (e instanceof Node.Filter f) {
            return filterNode(f, f.operand() == null ? null : eval(f.operand(), scope), scope);
        }
        if (e instanceof Node.Test t) {
            Object v = eval(t.operand(), scope);
            List<Object> pos = new ArrayList<>();
            Map<String, Object> kw = new LinkedHashMap<>();
            evalArgs(t.args(), scope, pos, kw);
            chargeSize(v);
            return Tests.apply(this, t.name(), v, pos, kw) != t.negated();
        }
        if (e instanceof Node.TupleLit t) {
            List<Object> items = new ArrayList<>();
            t.items().forEach(x -> items.add(eval(x, scope)));
            return new PyTuple(items);
        }
        if (e instanceof Node.ListLit l) {
            List<Object> items = new ArrayList<>();
            l.items().forEach(x -> items.add(eval(x, scope)));
            return items;
        }
        if (e instanceof Node.DictLit d) {
            Map<Object, Object> m = new LinkedHashMap<>();
            for (int i = 0; i < d.keys().size(); i++) {
                Object k = eval(d.keys().get(i), scope);
                if (k instanceof List || k instanceof Map) {
                    throw TemplateException.type("unhashable type: '" + PyOps.typeName(k) + "'");
                }
                PyOps.dictPut(m, k, eval(d.values().get(i), scope));
            }
            return m;
        }
        throw TemplateException.unsupported(e.getClass().getSimpleName());
    }

    private Object evalOpt(Expr e, Scope scope) {
        return e == null ? null : eval(e, scope);
    }

    private Object binary(Node.Binary b, Scope scope) {
        Object left = eval(b.left(), scope);
        switch (b.op()) {
            case "and" -> {
                return PyOps.truthy(left) ? eval(b.right(), scope) : left;
            }
            case "or" -> {
                return PyOps.truthy(left) ? left : eval(b.right(), scope);
            }
            case "~" -> {
                String l = PyOps.str(left);
                String r = PyOps.str(eval(b.right(), scope));
                checkSize((long) l.length() + r.length());
                chargeCopy((long) l.length() + r.length());
                return l + r;
            }
            default -> {
                Object result = PyArith.binary(b.op(), left, eval(b.right(), scope), limits.maxOutputChars());
                if (PyOps.isStr(result)) {
                    chargeCopy(PyOps.str(result).length());
                } else {
                    chargeSize(result);
                }
                return result;
            }
        }
    }

    private Object compare(Node.Compare c, Scope scope) {
        Object left = eval(c.first(), scope);
        for (int i = 0; i < c.ops().size(); i++) {
            Object right = eval(c.rest().get(i), scope);
            String op = c.ops().get(i);
            chargeSize(left);
            chargeSize(right);
            boolean ok = switch (op) {
                case "==" -> PyOps.eq(left, right);
                case "!=" -> !PyOps.eq(left, right);
                case "<" -> PyOps.compare(left, right, op) < 0;
                case "<=" -> PyOps.compare(left, right, op) <= 0;
                case ">" -> PyOps.compare(left, right, op) > 0;
                case ">=" -> PyOps.compare(left, right, op) >= 0;
                case "in" -> PyOps.contains(right, left);
                default -> !PyOps.contains(right, left);
            };
            if (!ok) {
                return false;
            }
            left = right;
        }
        return true;
    }

    private void evalArgs(Node.Args a, Scope scope, List<Object> pos, Map<String, Object> kw) {
        for (Expr x : a.positional()) {
            pos.add(eval(x, scope));
        }
        if (a.star() != null) {
            pos.addAll(PyOps.iterate(eval(a.star(), scope)));
        }
        for (int i = 0; i < a.keywordNames().size(); i++) {
            kw.put(a.keywordNames().get(i), eval(a.keywordValues().get(i), scope));
        }
        if (a.starStar() != null) {
            Object m = eval(a.starStar(), scope);
            if (!(m instanceof Map<?, ?> map)) {
                throw TemplateException.type("argument after ** must be a mapping, not " + PyOps.typeName(m));
            }
            map.forEach((k, v) -> kw.put(PyOps.str(k), v));
        }
    }

    private Object call(Node.Call c, Scope scope, Map<String, Object> extraKw) {
        Object fn = eval(c.fn(), scope);
        List<Object> pos = new ArrayList<>();
        Map<String, Object> kw = new LinkedHashMap<>();
        evalArgs(c.args(), scope, pos, kw);
        kw.putAll(extraKw);
        if (fn instanceof Undefined u) {
            throw u.error();
        }
        if (!(fn instanceof PyCallable callable)) {
            throw TemplateException.type("'" + PyOps.typeName(fn) + "' object is not callable");
        }
        step();
        return callable.call(this, pos, kw);
    }

    private Object filterNode(Node.Filter f, Object operand, Scope scope) {
        List<Object> pos = new ArrayList<>();
        Map<String, Object> kw = new LinkedHashMap<>();
        evalArgs(f.args(), scope, pos, kw);
        return filter(f.name(), operand, pos, kw);
    }

    /** A filter chain parsed without an operand ({@code {% filter %}}, {@code {% set x | f %}}). */
    private Object applyFilters(Expr chain, Object value, Scope scope) {
        Node.Filter f = (Node.Filter) chain;
        Object operand = f.operand() == null ? value : applyFilters(f.operand(), value, scope);
        return filterNode(f, operand, scope);
    }

    Object filter(String name, Object value, List<Object> pos, Map<String, Object> kw) {
        step();
        chargeSize(value);
        return Filters.apply(this, name, value, pos, kw);
    }
}
