package io.moestream.runtime.chat;

import java.time.LocalDateTime;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The global functions a chat template sees: jinja2's defaults ({@code range}, {@code dict},
 * {@code namespace}, {@code cycler}, {@code joiner}, {@code lipsum}) and transformers' additions
 * ({@code raise_exception}, {@code strftime_now}).
 */
final class Globals {

    /** jinja2's sandbox refuses ranges longer than this (MAX_RANGE). */
    static final long MAX_RANGE = 100_000;

    private Globals() {
    }

    static Map<String, Object> create(LocalDateTime now) {
        Map<String, Object> g = new LinkedHashMap<>();
        g.put("range", (PyCallable) (in, args, kw) -> range(args, kw));
        g.put("dict", (PyCallable) (in, args, kw) -> dict(args, kw));
        g.put("namespace", (PyCallable) (in, args, kw) -> namespace(args, kw));
        g.put("cycler", (PyCallable) (in, args, kw) -> new Cycler(args));
        g.put("joiner", (PyCallable) (in, args, kw) -> joiner(args, kw));
        g.put("lipsum", (PyCallable) (in, args, kw) -> {
            throw TemplateException.unsupported("lipsum()");
        });
        g.put("raise_exception", (PyCallable) (in, args, kw) -> {
            throw new TemplateException("TemplateError", args.isEmpty() ? "" : PyOps.str(args.get(0)));
        });
        g.put("strftime_now", (PyCallable) (in, args, kw) -> {
            if (args.size() != 1 || !PyOps.isStr(args.get(0))) {
                throw TemplateException.type("strftime_now() takes one format string");
            }
            return Strftime.format(now, PyOps.str(args.get(0)));
        });
        return g;
    }

    private static Object range(List<Object> args, Map<String, Object> kw) {
        if (!kw.isEmpty() || args.isEmpty() || args.size() > 3) {
            throw TemplateException.type("range expected 1 to 3 integer arguments");
        }
        long[] v = new long[args.size()];
        for (int i = 0; i < v.length; i++) {
            Object a = args.get(i);
            if (!(a instanceof Long || a instanceof Boolean)) {
                throw TemplateException.type("'" + PyOps.typeName(a) + "' object cannot be interpreted as an integer");
            }
            v[i] = PyOps.toLong(a);
        }
        long start = v.length == 1 ? 0 : v[0];
        long stop = v.length == 1 ? v[0] : v[1];
        long step = v.length == 3 ? v[2] : 1;
        if (step == 0) {
            throw TemplateException.value("range() arg 3 must not be zero");
        }
        PyRange r = new PyRange(start, stop, step);
        if (r.length() > MAX_RANGE) {
            throw new TemplateException("OverflowError",
                    "Range too big. The sandbox blocks ranges larger than MAX_RANGE (" + MAX_RANGE + ").");
        }
        return r;
    }

    private static Object dict(List<Object> args, Map<String, Object> kw) {
        Map<Object, Object> out = new LinkedHashMap<>();
        if (args.size() > 1) {
            throw TemplateException.type("dict expected at most 1 argument, got " + args.size());
        }
        if (!args.isEmpty()) {
            putPairs(out, args.get(0));
        }
        out.putAll(kw);
        return out;
    }

    private static void putPairs(Map<Object, Object> out, Object source) {
        if (source instanceof Map<?, ?> m) {
            out.putAll(m);
            return;
        }
        for (Object pair : PyOps.iterate(source)) {
            List<Object> kv = PyOps.iterate(pair);
            if (kv.size() != 2) {
                throw TemplateException.value("dictionary update sequence element has length " + kv.size()
                        + "; 2 is required");
            }
            out.put(kv.get(0), kv.get(1));
        }
    }

    private static Object namespace(List<Object> args, Map<String, Object> kw) {
        Namespace ns = new Namespace();
        Map<Object, Object> init = new LinkedHashMap<>();
        for (Object a : args) {
            putPairs(init, a);
        }
        init.putAll(kw);
        init.forEach((k, v) -> ns.attrs.put(PyOps.str(k), v));
        return ns;
    }

    private static Object joiner(List<Object> args, Map<String, Object> kw) {
        String sep = args.isEmpty() ? PyOps.str(kw.getOrDefault("sep", ", ")) : PyOps.str(args.get(0));
        boolean[] used = {false};
        return (PyCallable) (in, a, k) -> {
            if (!used[0]) {
                used[0] = true;
                return "";
            }
            return sep;
        };
    }

    /** jinja2's {@code cycler(*items)}: {@code next()}, {@code current}, {@code reset()}. */
    static final class Cycler {
        private final List<Object> items;
        private int pos;

        Cycler(List<Object> items) {
            if (items.isEmpty()) {
                throw TemplateException.runtime("at least one item has to be provided");
            }
            this.items = List.copyOf(items.stream().map(x -> x == null ? NONE : x).toList());
        }

        private static final Object NONE = new Object();

        private Object at(int i) {
            Object v = items.get(i);
            return v == NONE ? null : v;
        }

        Object attr(String name) {
            return switch (name) {
                case "current" -> at(pos);
                case "next" -> (PyCallable) (in, a, k) -> {
                    Object v = at(pos);
                    pos = (pos + 1) % items.size();
                    return v;
                };
                case "reset" -> (PyCallable) (in, a, k) -> {
                    pos = 0;
                    return null;
                };
                default -> PyOps.MISSING;
            };
        }
    }
}
