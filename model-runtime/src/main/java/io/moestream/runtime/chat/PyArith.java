package io.moestream.runtime.chat;

import java.util.ArrayList;
import java.util.List;

/** Python arithmetic on template values ({@code + - * / // % **}, unary minus), sized by the limits. */
final class PyArith {

    private PyArith() {
    }

    static Object binary(String op, Object a, Object b, int maxSize) {
        if (a instanceof Undefined u) {
            throw u.error();
        }
        if (b instanceof Undefined u) {
            throw u.error();
        }
        return switch (op) {
            case "+" -> add(a, b, maxSize);
            case "-" -> numeric(op, a, b);
            case "*" -> mul(a, b, maxSize);
            case "/" -> {
                checkNumbers(op, a, b);
                double y = PyOps.toDouble(b);
                if (y == 0) {
                    throw new TemplateException("ZeroDivisionError", "division by zero");
                }
                yield PyOps.toDouble(a) / y;
            }
            case "//" -> floorDiv(a, b);
            case "%" -> PyOps.isStr(a) ? PyFormat.percent(a, b) : mod(a, b);
            case "**" -> pow(a, b, maxSize);
            default -> throw new IllegalStateException(op);
        };
    }

    private static void checkNumbers(String op, Object a, Object b) {
        if (!PyOps.isNumber(a) || !PyOps.isNumber(b)) {
            throw unsupported(op, a, b);
        }
    }

    private static TemplateException unsupported(String op, Object a, Object b) {
        return TemplateException.type("unsupported operand type(s) for " + op + ": '" + PyOps.typeName(a)
                + "' and '" + PyOps.typeName(b) + "'");
    }

    private static Object add(Object a, Object b, int maxSize) {
        if (PyOps.isStr(a) && PyOps.isStr(b)) {
            String s = PyOps.str(a);
            String t = PyOps.str(b);
            checkSize((long) s.length() + t.length(), maxSize);
            if (a instanceof Markup || b instanceof Markup) {
                return new Markup((a instanceof Markup ? s : Markup.escape(s)) + (b instanceof Markup ? t
                        : Markup.escape(t)));
            }
            return s + t;
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
            checkSize((long) x.size() + y.size(), maxSize);
            List<Object> out = new ArrayList<>(x);
            out.addAll(y);
            return out;
        }
        if (a instanceof PyTuple x && b instanceof PyTuple y) {
            List<Object> out = new ArrayList<>(x.items());
            out.addAll(y.items());
            return new PyTuple(out);
        }
        if (PyOps.isStr(a) || PyOps.isStr(b)) {
            if (PyOps.isStr(a)) {
                throw TemplateException.type("can only concatenate str (not \"" + PyOps.typeName(b) + "\") to str");
            }
            throw unsupported("+", a, b);
        }
        return numeric("+", a, b);
    }

    private static Object numeric(String op, Object a, Object b) {
        checkNumbers(op, a, b);
        if (a instanceof Double || b instanceof Double) {
            double x = PyOps.toDouble(a);
            double y = PyOps.toDouble(b);
            return op.equals("+") ? x + y : x - y;
        }
        try {
            long x = PyOps.toLong(a);
            long y = PyOps.toLong(b);
            return op.equals("+") ? Math.addExact(x, y) : Math.subtractExact(x, y);
        } catch (ArithmeticException e) {
            throw TemplateException.limit("integer beyond 64 bits");
        }
    }

    private static Object mul(Object a, Object b, int maxSize) {
        if ((PyOps.isStr(a) || a instanceof List || a instanceof PyTuple) && isInt(b)) {
            return repeat(a, PyOps.toLong(b), maxSize);
        }
        if (isInt(a) && (PyOps.isStr(b) || b instanceof List || b instanceof PyTuple)) {
            return repeat(b, PyOps.toLong(a), maxSize);
        }
        checkNumbers("*", a, b);
        if (a instanceof Double || b instanceof Double) {
            return PyOps.toDouble(a) * PyOps.toDouble(b);
        }
        try {
            return Math.multiplyExact(PyOps.toLong(a), PyOps.toLong(b));
        } catch (ArithmeticException e) {
            throw TemplateException.limit("integer beyond 64 bits");
        }
    }

    private static boolean isInt(Object v) {
        return v instanceof Long || v instanceof Boolean;
    }

    private static Object repeat(Object seq, long n, int maxSize) {
        long count = Math.max(0, n);
        if (PyOps.isStr(seq)) {
            String s = PyOps.str(seq);
            checkSize(s.length() * count, maxSize);
            String r = s.repeat((int) count);
            return seq instanceof Markup ? new Markup(r) : r;
        }
        List<?> items = seq instanceof PyTuple t ? t.items() : (List<?>) seq;
        checkSize(items.size() * count, maxSize);
        List<Object> out = new ArrayList<>();
        for (long i = 0; i < count; i++) {
            out.addAll(items);
        }
        return seq instanceof PyTuple ? new PyTuple(out) : out;
    }

    static void checkSize(long size, int maxSize) {
        if (size > maxSize) {
            throw TemplateException.limit("a value of " + size + " elements exceeds the output limit of " + maxSize);
        }
    }

    private static Object floorDiv(Object a, Object b) {
        checkNumbers("//", a, b);
        if (a instanceof Double || b instanceof Double) {
            double y = PyOps.toDouble(b);
            if (y == 0) {
                throw new TemplateException("ZeroDivisionError", "float floor division by zero");
            }
            return Math.floor(PyOps.toDouble(a) / y);
        }
        long y = PyOps.toLong(b);
        if (y == 0) {
            throw new TemplateException("ZeroDivisionError", "integer division or modulo by zero");
        }
        return Math.floorDiv(PyOps.toLong(a), y);
    }

    private static Object mod(Object a, Object b) {
        checkNumbers("%", a, b);
        if (a instanceof Double || b instanceof Double) {
            double x = PyOps.toDouble(a);
            double y = PyOps.toDouble(b);
            if (y == 0) {
                throw new TemplateException("ZeroDivisionError", "float modulo");
            }
            double r = x % y;
            if (r != 0 && (r < 0) != (y < 0)) {
                r += y;
            }
            return r;
        }
        long y = PyOps.toLong(b);
        if (y == 0) {
            throw new TemplateException("ZeroDivisionError", "integer division or modulo by zero");
        }
        return Math.floorMod(PyOps.toLong(a), y);
    }

    private static Object pow(Object a, Object b, int maxSize) {
        checkNumbers("**", a, b);
        if (a instanceof Double || b instanceof Double || PyOps.toLong(b) < 0) {
            return Math.pow(PyOps.toDouble(a), PyOps.toDouble(b));
        }
        long base = PyOps.toLong(a);
        long e = PyOps.toLong(b);
        long r = 1;
        try {
            for (long i = 0; i < e; i++) {
                r = Math.multiplyExact(r, base);
                if (r == 0 || r == 1 && base == 1) {
                    break;
                }
                if (i > 64 && (base == -1)) {
                    return e % 2 == 0 ? 1L : -1L;
                }
            }
        } catch (ArithmeticException ex) {
            throw TemplateException.limit("integer beyond 64 bits");
        }
        return r;
    }

    static Object negate(Object v) {
        if (v instanceof Undefined u) {
            throw u.error();
        }
        if (v instanceof Double d) {
            return -d;
        }
        if (v instanceof Long || v instanceof Boolean) {
            long l = PyOps.toLong(v);
            if (l == Long.MIN_VALUE) {
                throw TemplateException.limit("integer beyond 64 bits");
            }
            return -l;
        }
        throw TemplateException.type("bad operand type for unary -: '" + PyOps.typeName(v) + "'");
    }

    static Object plus(Object v) {
        if (v instanceof Undefined u) {
            throw u.error();
        }
        if (v instanceof Boolean b) {
            return b ? 1L : 0L;
        }
        if (v instanceof Long || v instanceof Double) {
            return v;
        }
        throw TemplateException.type("bad operand type for unary +: '" + PyOps.typeName(v) + "'");
    }
}
