package io.moestream.runtime.chat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * jinja2's {@code ImmutableSandboxedEnvironment.getattr/getitem}: {@code a.b} tries the attribute then
 * the item, {@code a[b]} the item then the attribute; a missing one is {@link Undefined}; dunder
 * names and mutating methods are unsafe (an Undefined that raises {@code SecurityError} when used).
 */
final class Access {

    private static final Set<String> STR_METHODS = Set.of("capitalize", "casefold", "center", "count", "endswith",
            "find", "format", "index", "isalnum", "isalpha", "isdecimal", "isdigit", "islower", "isnumeric", "isspace",
            "istitle", "isupper", "join", "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix",
            "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines",
            "startswith", "strip", "swapcase", "title", "upper", "zfill", "expandtabs", "format_map", "isascii",
            "isidentifier", "isprintable", "encode", "maketrans", "translate", "escape", "striptags", "unescape");
    private static final Set<String> DICT_METHODS = Set.of("get", "items", "keys", "values", "copy", "fromkeys");
    private static final Set<String> DICT_MUTATORS = Set.of("clear", "pop", "popitem", "setdefault", "update");
    private static final Set<String> LIST_METHODS = Set.of("index", "count", "copy");
    private static final Set<String> LIST_MUTATORS =
            Set.of("append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort");
    private static final Set<String> LOOP_ATTRS = Set.of("index", "index0", "revindex", "revindex0", "first", "last",
            "length", "depth", "depth0", "previtem", "nextitem", "cycle", "changed");

    private Access() {
    }

    static Object getattr(Object obj, String name) {
        if (obj instanceof Undefined u) {
            throw u.error();
        }
        Object attr = attribute(obj, name);
        if (attr != PyOps.MISSING) {
            return attr;
        }
        Object item = item(obj, name);
        return item != PyOps.MISSING ? item : Undefined.missing(obj, name);
    }

    static Object getitem(Object obj, Object key) {
        if (obj instanceof Undefined u) {
            throw u.error();
        }
        Object item = item(obj, key);
        if (item != PyOps.MISSING) {
            return item;
        }
        if (key instanceof String s) {
            Object attr = attribute(obj, s);
            if (attr != PyOps.MISSING) {
                return attr;
            }
        }
        return Undefined.missing(obj, key);
    }

    /** Python attribute lookup restricted to the value model; MISSING when there is none. */
    private static Object attribute(Object obj, String name) {
        if (name.startsWith("__") && name.endsWith("__") && name.length() > 4) {
            return Undefined.unsafe(obj, name);
        }
        if (PyOps.isStr(obj)) {
            return STR_METHODS.contains(name) ? new Methods.Bound(obj, name) : PyOps.MISSING;
        }
        if (obj instanceof Map) {
            if (DICT_MUTATORS.contains(name)) {
                return Undefined.unsafe(obj, name);
            }
            return DICT_METHODS.contains(name) ? new Methods.Bound(obj, name) : PyOps.MISSING;
        }
        if (obj instanceof PyTuple t && t.field(name) != PyOps.MISSING) {
            return t.field(name);
        }
        if (obj instanceof List || obj instanceof PyTuple) {
            if (obj instanceof List && LIST_MUTATORS.contains(name)) {
                return Undefined.unsafe(obj, name);
            }
            return LIST_METHODS.contains(name) ? new Methods.Bound(obj, name) : PyOps.MISSING;
        }
        if (obj instanceof Namespace ns) {
            return ns.attrs.containsKey(name) ? ns.attrs.get(name) : PyOps.MISSING;
        }
        if (obj instanceof LoopContext loop) {
            return LOOP_ATTRS.contains(name) ? loop.attr(name) : PyOps.MISSING;
        }
        if (obj instanceof Macro m) {
            return m.attr(name);
        }
        if (obj instanceof Globals.Cycler c) {
            return c.attr(name);
        }
        if (obj instanceof Double d && name.equals("is_integer")) {
            return new Methods.Bound(obj, name);
        }
        return PyOps.MISSING;
    }

    private static Object item(Object obj, Object key) {
        if (obj instanceof Map<?, ?> m) {
            return PyOps.dictGet(m, key);
        }
        List<?> seq = obj instanceof List<?> l ? l : obj instanceof PyTuple t ? t.items()
                : obj instanceof PyRange r ? r.toList() : null;
        if (seq != null || PyOps.isStr(obj)) {
            if (key instanceof Node.Slice) {
                throw new IllegalStateException("slices are evaluated by the interpreter");
            }
            if (!(key instanceof Long || key instanceof Boolean)) {
                return PyOps.MISSING;
            }
            long i = PyOps.toLong(key);
            if (seq != null) {
                int j = PyOps.index(i, seq.size());
                return j < 0 ? PyOps.MISSING : seq.get(j);
            }
            String s = PyOps.str(obj);
            int n = PyStrings.length(s);
            int j = PyOps.index(i, n);
            if (j < 0) {
                return PyOps.MISSING;
            }
            int at = s.offsetByCodePoints(0, j);
            return Character.toString(s.codePointAt(at));
        }
        return PyOps.MISSING;
    }

    /** {@code seq[start:stop:step]} with Python's clamping rules, counting code points in strings. */
    static Object slice(Object obj, Object start, Object stop, Object step) {
        if (obj instanceof Undefined u) {
            throw u.error();
        }
        long st = step == null ? 1 : sliceIndex(step);
        if (st == 0) {
            throw TemplateException.value("slice step cannot be zero");
        }
        boolean isString = PyOps.isStr(obj);
        if (isString && st == 1) {
            String s = PyOps.str(obj);
            int n = PyStrings.length(s);
            int lo = (int) (start == null ? 0 : clamp(sliceIndex(start), n, 0, n));
            int hi = (int) (stop == null ? n : clamp(sliceIndex(stop), n, 0, n));
            String r = lo >= hi ? "" : s.substring(s.offsetByCodePoints(0, lo), s.offsetByCodePoints(0, hi));
            return obj instanceof Markup ? new Markup(r) : r;
        }
        List<Object> items;
        if (isString || obj instanceof List || obj instanceof PyTuple || obj instanceof PyRange) {
            items = PyOps.iterate(obj);
        } else {
            return Undefined.hint("'" + PyOps.typeName(obj) + "' object is not subscriptable");
        }
        int n = items.size();
        long lo;
        long hi;
        if (st > 0) {
            lo = start == null ? 0 : clamp(sliceIndex(start), n, 0, n);
            hi = stop == null ? n : clamp(sliceIndex(stop), n, 0, n);
        } else {
            lo = start == null ? n - 1 : clamp(sliceIndex(start), n, -1, n - 1);
            hi = stop == null ? -1 : clamp(sliceIndex(stop), n, -1, n - 1);
        }
        List<Object> out = new ArrayList<>();
        for (long i = lo; st > 0 ? i < hi : i > hi; i += st) {
            out.add(items.get((int) i));
        }
        if (isString) {
            StringBuilder b = new StringBuilder();
            out.forEach(c -> b.append((String) c));
            return obj instanceof Markup ? new Markup(b.toString()) : b.toString();
        }
        return obj instanceof PyTuple ? new PyTuple(out) : out;
    }

    private static long sliceIndex(Object v) {
        if (v instanceof Long || v instanceof Boolean) {
            return PyOps.toLong(v);
        }
        throw TemplateException.type("slice indices must be integers or None or have an __index__ method");
    }

    private static long clamp(long i, int n, long lo, long hi) {
        long j = i < 0 ? i + n : i;
        return Math.max(lo, Math.min(hi, j));
    }
}
