package io.moestream.runtime.chat;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Python 3 semantics of the template value model: {@code null} is None, {@link Boolean}, {@link Long}
 * (int), {@link Double} (float), {@link String} (str), {@link java.util.List} (list),
 * {@link java.util.LinkedHashMap} (dict), {@link PyTuple}, {@link Markup}, {@link Undefined},
 * {@link Namespace}, {@link PyCallable}, {@link LoopContext}. Nothing else ever reaches a template.
 */
final class PyOps {

    private PyOps() {
    }

    static String typeName(Object v) {
        if (v == null) {
            return "NoneType";
        }
        if (v instanceof Boolean) {
            return "bool";
        }
        if (v instanceof Long) {
            return "int";
        }
        if (v instanceof Double) {
            return "float";
        }
        if (v instanceof String) {
            return "str";
        }
        if (v instanceof Markup) {
            return "Markup";
        }
        if (v instanceof List) {
            return "list";
        }
        if (v instanceof Map) {
            return "dict";
        }
        if (v instanceof PyTuple) {
            return "tuple";
        }
        if (v instanceof Undefined) {
            return "Undefined";
        }
        if (v instanceof Namespace) {
            return "Namespace";
        }
        if (v instanceof LoopContext) {
            return "LoopContext";
        }
        if (v instanceof PyIterator) {
            return "generator";
        }
        if (v instanceof PyRange) {
            return "range";
        }
        if (v instanceof PyCallable c) {
            return c.typeName();
        }
        return "object";
    }

    static boolean isStr(Object v) {
        return v instanceof String || v instanceof Markup;
    }

    static boolean isNumber(Object v) {
        return v instanceof Long || v instanceof Double || v instanceof Boolean;
    }

    static boolean truthy(Object v) {
        if (v == null || v instanceof Undefined) {
            return false;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        if (v instanceof Long l) {
            return l != 0;
        }
        if (v instanceof Double d) {
            return d != 0.0;
        }
        if (v instanceof String s) {
            return !s.isEmpty();
        }
        if (v instanceof Markup m) {
            return !m.text().isEmpty();
        }
        if (v instanceof List<?> l) {
            return !l.isEmpty();
        }
        if (v instanceof Map<?, ?> m) {
            return !m.isEmpty();
        }
        if (v instanceof PyTuple t) {
            return !t.items().isEmpty();
        }
        if (v instanceof PyRange r) {
            return r.length() > 0;
        }
        return true;
    }

    // ---- str() and repr()

    static String str(Object v) {
        if (v instanceof String s) {
            return s;
        }
        if (v instanceof Markup m) {
            return m.text();
        }
        if (v instanceof Undefined) {
            return "";
        }
        return repr(v);
    }

    static String repr(Object v) {
        StringBuilder b = new StringBuilder();
        repr(v, b);
        return b.toString();
    }

    /** Appends {@code repr(v)}, charging each element and checking the size as it grows. */
    private static void repr(Object v, StringBuilder b) {
        Interpreter.chargeCurrent(1);
        Interpreter.checkCurrentSize(b.length());
        if (v instanceof List<?> l) {
            b.append('[');
            for (int i = 0; i < l.size(); i++) {
                b.append(i > 0 ? ", " : "");
                repr(l.get(i), b);
            }
            b.append(']');
        } else if (v instanceof PyTuple t) {
            b.append('(');
            for (int i = 0; i < t.items().size(); i++) {
                b.append(i > 0 ? ", " : "");
                repr(t.items().get(i), b);
            }
            b.append(t.items().size() == 1 ? ",)" : ")");
        } else if (v instanceof Map<?, ?> m) {
            b.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                b.append(first ? "" : ", ");
                repr(e.getKey(), b);
                b.append(": ");
                repr(e.getValue(), b);
                first = false;
            }
            b.append('}');
        } else {
            b.append(scalarRepr(v));
        }
    }

    private static String scalarRepr(Object v) {
        if (v == null) {
            return "None";
        }
        if (v instanceof Boolean bool) {
            return bool ? "True" : "False";
        }
        if (v instanceof Long l) {
            return l.toString();
        }
        if (v instanceof Double d) {
            return floatRepr(d);
        }
        if (v instanceof String s) {
            Interpreter.chargeCurrentChars(s.length());
            return PyStrings.repr(s);
        }
        if (v instanceof Markup m) {
            Interpreter.chargeCurrentChars(m.text().length());
            return "Markup(" + PyStrings.repr(m.text()) + ")";
        }
        if (v instanceof Macro || v instanceof LoopContext) {
            return v.toString();
        }
        if (v instanceof PyCallable c) {
            return "<" + c.typeName() + ">";
        }
        return v.toString();
    }

    /** Python's {@code repr(float)}: the shortest digits that round-trip, Python's exponent rules. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) {
            return "nan";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "inf" : "-inf";
        }
        if (d == 0) {
            return (1 / d < 0) ? "-0.0" : "0.0";
        }
        BigDecimal exact = new BigDecimal(d);
        BigDecimal shortest = exact;
        for (int p = 1; p <= 17; p++) {
            BigDecimal r = exact.round(new MathContext(p, RoundingMode.HALF_EVEN));
            if (Double.parseDouble(r.toString()) == d) {
                shortest = r;
                break;
            }
        }
        String digits = shortest.unscaledValue().abs().toString();
        int exp = digits.length() - 1 - shortest.scale();
        digits = digits.replaceAll("0+$", "");
        if (digits.isEmpty()) {
            digits = "0";
        }
        String sign = d < 0 ? "-" : "";
        if (exp < -4 || exp >= 16) {
            String mant = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            String e = String.valueOf(Math.abs(exp));
            return sign + mant + "e" + (exp < 0 ? "-" : "+") + (e.length() < 2 ? "0" + e : e);
        }
        if (exp < 0) {
            return sign + "0." + "0".repeat(-exp - 1) + digits;
        }
        if (digits.length() <= exp + 1) {
            return sign + digits + "0".repeat(exp + 1 - digits.length()) + ".0";
        }
        return sign + digits.substring(0, exp + 1) + "." + digits.substring(exp + 1);
    }

    // ---- equality and ordering

    static boolean eq(Object a, Object b) {
        if (a == b) {
            return true;
        }
        Interpreter.chargeCurrent(1);
        if (a == null || b == null) {
            return false;
        }
        if (a instanceof Undefined || b instanceof Undefined) {
            return a instanceof Undefined && b instanceof Undefined;
        }
        if (isNumber(a) && isNumber(b)) {
            if (a instanceof Double || b instanceof Double) {
                return toDouble(a) == toDouble(b);
            }
            return toLong(a) == toLong(b);
        }
        if (isStr(a) && isStr(b)) {
            return str(a).equals(str(b));
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
            return seqEq(x, y);
        }
        if (a instanceof PyTuple x && b instanceof PyTuple y) {
            return seqEq(x.items(), y.items());
        }
        if (a instanceof PyRange x && b instanceof PyRange y) {
            return seqEq(x.toList(), y.toList());
        }
        if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
            if (x.size() != y.size()) {
                return false;
            }
            for (Map.Entry<?, ?> e : x.entrySet()) {
                if (!y.containsKey(e.getKey()) || !eq(e.getValue(), y.get(e.getKey()))) {
                    return false;
                }
            }
            return true;
        }
        return a.equals(b);
    }

    private static boolean seqEq(List<?> x, List<?> y) {
        if (x.size() != y.size()) {
            return false;
        }
        for (int i = 0; i < x.size(); i++) {
            if (!eq(x.get(i), y.get(i))) {
                return false;
            }
        }
        return true;
    }

    /** Python ordering ({@code <}); TypeError across unordered types. */
    static int compare(Object a, Object b, String op) {
        Interpreter.chargeCurrent(1);
        if (a instanceof Undefined u) {
            throw u.error();
        }
        if (b instanceof Undefined u) {
            throw u.error();
        }
        if (isNumber(a) && isNumber(b)) {
            if (a instanceof Double || b instanceof Double) {
                return Double.compare(toDouble(a), toDouble(b));
            }
            return Long.compare(toLong(a), toLong(b));
        }
        if (isStr(a) && isStr(b)) {
            return compareCodePoints(str(a), str(b));
        }
        List<?> x = a instanceof List<?> l ? l : a instanceof PyTuple t ? t.items() : null;
        List<?> y = b instanceof List<?> l ? l : b instanceof PyTuple t ? t.items() : null;
        if (x != null && y != null && (a instanceof List) == (b instanceof List)) {
            for (int i = 0; i < Math.min(x.size(), y.size()); i++) {
                if (!eq(x.get(i), y.get(i))) {
                    return compare(x.get(i), y.get(i), op);
                }
            }
            return Integer.compare(x.size(), y.size());
        }
        throw TemplateException.type("'" + op + "' not supported between instances of '" + typeName(a) + "' and '"
                + typeName(b) + "'");
    }

    static int compareCodePoints(String a, String b) {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            int x = a.codePointAt(i);
            int y = b.codePointAt(j);
            if (x != y) {
                return Integer.compare(x, y);
            }
            i += Character.charCount(x);
            j += Character.charCount(y);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }

    static long toLong(Object v) {
        if (v instanceof Boolean b) {
            return b ? 1 : 0;
        }
        return (Long) v;
    }

    static double toDouble(Object v) {
        if (v instanceof Double d) {
            return d;
        }
        return toLong(v);
    }

    // ---- containers

    /** Python's {@code iter()} materialized; dicts give their keys, strings their characters. */
    static List<Object> iterate(Object v) {
        if (v instanceof List<?> l) {
            return new ArrayList<>(l);
        }
        if (v instanceof PyTuple t) {
            return new ArrayList<>(t.items());
        }
        if (v instanceof Map<?, ?> m) {
            return new ArrayList<>(m.keySet());
        }
        if (v instanceof Undefined) {
            return new ArrayList<>();
        }
        if (v instanceof PyIterator it) {
            return it.drain();
        }
        if (v instanceof PyRange r) {
            return r.toList();
        }
        if (isStr(v)) {
            String s = str(v);
            List<Object> out = new ArrayList<>(s.length());
            s.codePoints().forEach(c -> out.add(Character.toString(c)));
            return out;
        }
        throw TemplateException.type("'" + typeName(v) + "' object is not iterable");
    }

    static boolean isIterable(Object v) {
        return v instanceof List || v instanceof PyTuple || v instanceof Map || v instanceof Undefined || isStr(v)
                || v instanceof PyIterator || v instanceof LoopContext || v instanceof PyRange;
    }

    static long len(Object v) {
        if (isStr(v)) {
            return PyStrings.length(str(v));
        }
        if (v instanceof List<?> l) {
            return l.size();
        }
        if (v instanceof PyTuple t) {
            return t.items().size();
        }
        if (v instanceof Map<?, ?> m) {
            return m.size();
        }
        if (v instanceof Undefined) {
            return 0;
        }
        if (v instanceof PyRange r) {
            return r.length();
        }
        if (v instanceof Namespace) {
            throw TemplateException.type("object of type 'Namespace' has no len()");
        }
        throw TemplateException.type("object of type '" + typeName(v) + "' has no len()");
    }

    static boolean contains(Object container, Object item) {
        if (isStr(container)) {
            if (!isStr(item)) {
                throw TemplateException.type("'in <string>' requires string as left operand, not " + typeName(item));
            }
            return str(container).contains(str(item));
        }
        if (container instanceof Map<?, ?> m) {
            return dictGet(m, item) != MISSING;
        }
        if (container instanceof List || container instanceof PyTuple || container instanceof Undefined
                || container instanceof PyIterator || container instanceof PyRange) {
            for (Object o : iterate(container)) {
                if (eq(o, item)) {
                    return true;
                }
            }
            return false;
        }
        throw TemplateException.type("argument of type '" + typeName(container) + "' is not iterable");
    }

    static final Object MISSING = new Object();

    private static final Object NONE_KEY = new Object();

    /**
     * A Java key with Python's hash equality for hashable values (1 == 1.0 == True, Markup == str,
     * tuples by content); TypeError for lists and dicts, as Python's {@code hash()}.
     */
    static Object hashKey(Object v) {
        Interpreter.chargeCurrent(1);
        if (v == null) {
            return NONE_KEY;
        }
        if (v instanceof Boolean || v instanceof Long) {
            return toLong(v);
        }
        if (v instanceof Double d) {
            return d == Math.rint(d) && Math.abs(d) < 9.0e18 ? (Object) (long) d.doubleValue() : d;
        }
        if (v instanceof Markup m) {
            return m.text();
        }
        if (v instanceof PyTuple t) {
            return t.items().stream().map(PyOps::hashKey).toList();
        }
        if (v instanceof List || v instanceof Map) {
            throw TemplateException.type("unhashable type: '" + typeName(v) + "'");
        }
        return v;
    }

    /** {@code d[k] = v}: a key equal to an existing one (1, 1.0, True) keeps the first key, as in Python. */
    static void dictPut(Map<Object, Object> m, Object key, Object value) {
        Object k = key instanceof Markup mk ? mk.text() : key;
        if (isNumber(k) && !m.containsKey(k)) {
            for (Object existing : m.keySet()) {
                if (isNumber(existing) && eq(existing, k)) {
                    m.put(existing, value);
                    return;
                }
            }
        }
        m.put(k, value);
    }

    /** Dict lookup with Python's key equality for the common cases (str and int keys). */
    static Object dictGet(Map<?, ?> m, Object key) {
        Object k = key instanceof Markup mk ? mk.text() : key;
        if (m.containsKey(k)) {
            return m.get(k);
        }
        if (k instanceof Boolean || k instanceof Double || k instanceof Long) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (isNumber(e.getKey()) && eq(e.getKey(), k)) {
                    return e.getValue();
                }
            }
        }
        return MISSING;
    }

    /** Index normalization for {@code x[i]}: negative counts from the end; -1 when out of range. */
    static int index(long i, int size) {
        long j = i < 0 ? i + size : i;
        return j < 0 || j >= size ? -1 : (int) j;
    }
}
