package io.moestream.runtime.chat;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The methods of str, dict, list and tuple a template may call (the read-only ones), with Python semantics. */
final class Methods {

    private Methods() {
    }

    /** A method bound to its receiver, as {@code message.get} evaluates to before the call. */
    record Bound(Object self, String name) implements PyCallable {
        @Override
        public Object call(Interpreter in, List<Object> args, Map<String, Object> kwargs) {
            return invoke(in, self, name, new Args(name, args, kwargs));
        }

        @Override
        public String typeName() {
            return "builtin_function_or_method";
        }
    }

    /** Positional and keyword arguments of one call, read by position or name. */
    static final class Args {
        private final String fn;
        private final List<Object> pos;
        private final Map<String, Object> kw;

        Args(String fn, List<Object> pos, Map<String, Object> kw) {
            this.fn = fn;
            this.pos = pos;
            this.kw = kw;
        }

        int size() {
            return pos.size() + kw.size();
        }

        boolean has(int i, String name) {
            return i < pos.size() || kw.containsKey(name);
        }

        Object get(int i, String name, Object dflt) {
            if (i < pos.size()) {
                return pos.get(i);
            }
            return kw.getOrDefault(name, dflt);
        }

        Object required(int i, String name) {
            if (!has(i, name)) {
                throw TemplateException.type(fn + "() missing required argument '" + name + "'");
            }
            return get(i, name, null);
        }

        String str(int i, String name, String dflt) {
            Object v = get(i, name, dflt);
            if (v == null || v instanceof Undefined) {
                return dflt == null ? null : PyOps.str(v);
            }
            if (!PyOps.isStr(v)) {
                throw TemplateException.type(fn + "() argument '" + name + "' must be str, not " + PyOps.typeName(v));
            }
            return PyOps.str(v);
        }

        long integer(int i, String name, long dflt) {
            Object v = get(i, name, dflt);
            if (v instanceof Long || v instanceof Boolean) {
                return PyOps.toLong(v);
            }
            if (v == null) {
                return dflt;
            }
            throw TemplateException.type("'" + PyOps.typeName(v) + "' object cannot be interpreted as an integer");
        }

        List<Object> positional() {
            return pos;
        }

        Map<String, Object> keywords() {
            return kw;
        }

        void atMost(int n) {
            if (size() > n) {
                throw TemplateException.type(fn + "() takes at most " + n + " arguments (" + size() + " given)");
            }
        }
    }

    static Object invoke(Interpreter in, Object self, String name, Args a) {
        in.chargeSize(self);
        a.positional().forEach(in::chargeSize);
        if (self instanceof Markup && StrMethods.KEEPS_MARKUP.contains(name)) {
            // markupsafe escapes the plain-string arguments of Markup's methods, and keeps the result Markup
            List<Object> pos = new ArrayList<>();
            a.positional().forEach(x -> pos.add(escapeArg(x)));
            Map<String, Object> kw = new LinkedHashMap<>();
            a.keywords().forEach((k, x) -> kw.put(k, escapeArg(x)));
            Object r = StrMethods.call(in, PyOps.str(self), name, new Args(name, pos, kw));
            return r instanceof String s ? new Markup(s) : r;
        }
        if (PyOps.isStr(self)) {
            return StrMethods.call(in, PyOps.str(self), name, a);
        }
        if (self instanceof Map<?, ?> m) {
            return dict(m, name, a);
        }
        if (self instanceof Double d && name.equals("is_integer")) {
            return d == Math.rint(d) && !Double.isInfinite(d);
        }
        List<?> seq = self instanceof PyTuple t ? t.items() : (List<?>) self;
        switch (name) {
            case "index" -> {
                a.atMost(3);
                Object x = a.required(0, "value");
                for (int i = 0; i < seq.size(); i++) {
                    if (PyOps.eq(seq.get(i), x)) {
                        return (long) i;
                    }
                }
                throw TemplateException.value(PyOps.repr(x) + " is not in list");
            }
            case "count" -> {
                a.atMost(1);
                Object x = a.required(0, "value");
                return seq.stream().filter(o -> PyOps.eq(o, x)).count();
            }
            case "copy" -> {
                return new ArrayList<>(seq);
            }
            default -> throw new IllegalStateException(name);
        }
    }

    private static Object escapeArg(Object x) {
        return x instanceof String s ? Markup.escape(s) : x instanceof List<?> l ? escapeItems(l) : x;
    }

    private static List<Object> escapeItems(List<?> items) {
        List<Object> out = new ArrayList<>();
        items.forEach(x -> out.add(x instanceof String s ? Markup.escape(s) : x));
        return out;
    }

    private static Object dict(Map<?, ?> m, String name, Args a) {
        switch (name) {
            case "get" -> {
                a.atMost(2);
                Object v = PyOps.dictGet(m, a.required(0, "key"));
                return v == PyOps.MISSING ? a.get(1, "default", null) : v;
            }
            case "items" -> {
                a.atMost(0);
                List<Object> out = new ArrayList<>(m.size());
                m.forEach((k, v) -> out.add(new PyTuple(java.util.Arrays.asList(k, v))));
                return out;
            }
            case "keys" -> {
                a.atMost(0);
                return new ArrayList<Object>(m.keySet());
            }
            case "values" -> {
                a.atMost(0);
                return new ArrayList<Object>(m.values());
            }
            case "copy" -> {
                return new LinkedHashMap<Object, Object>(m);
            }
            case "fromkeys" -> {
                Map<Object, Object> out = new LinkedHashMap<>();
                for (Object k : PyOps.iterate(a.required(0, "iterable"))) {
                    out.put(k, a.get(1, "value", null));
                }
                return out;
            }
            default -> throw new IllegalStateException(name);
        }
    }
}
