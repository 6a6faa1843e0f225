package io.moestream.runtime.chat;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Python's printf-style {@code str % args} and the plain forms of {@code str.format}. */
final class PyFormat {

    private PyFormat() {
    }

    static Object percent(Object fmt, Object args) {
        String f = PyOps.str(fmt);
        boolean markup = fmt instanceof Markup;
        List<Object> items = args instanceof PyTuple t ? t.items() : List.of(args == null ? NONE : args);
        Map<?, ?> mapping = args instanceof Map<?, ?> m ? m : null;
        StringBuilder out = new StringBuilder();
        int next = 0;
        int i = 0;
        while (i < f.length()) {
            char c = f.charAt(i++);
            if (c != '%') {
                out.append(c);
                continue;
            }
            if (i >= f.length()) {
                throw TemplateException.value("incomplete format");
            }
            Object value = null;
            boolean haveValue = false;
            if (f.charAt(i) == '(') {
                int close = f.indexOf(')', i);
                if (mapping == null || close < 0) {
                    throw TemplateException.type("format requires a mapping");
                }
                Object v = PyOps.dictGet(mapping, f.substring(i + 1, close));
                if (v == PyOps.MISSING) {
                    throw new TemplateException("KeyError", PyStrings.repr(f.substring(i + 1, close)));
                }
                value = v;
                haveValue = true;
                i = close + 1;
            }
            StringBuilder flags = new StringBuilder();
            while (i < f.length() && "-+ #0".indexOf(f.charAt(i)) >= 0) {
                flags.append(f.charAt(i++));
            }
            int width = 0;
            while (i < f.length() && Character.isDigit(f.charAt(i))) {
                width = width * 10 + (f.charAt(i++) - '0');
            }
            int prec = -1;
            if (i < f.length() && f.charAt(i) == '.') {
                i++;
                prec = 0;
                while (i < f.length() && Character.isDigit(f.charAt(i))) {
                    prec = prec * 10 + (f.charAt(i++) - '0');
                }
            }
            if (i >= f.length()) {
                throw TemplateException.value("incomplete format");
            }
            char conv = f.charAt(i++);
            if (conv == '%') {
                out.append('%');
                continue;
            }
            if (!haveValue) {
                if (mapping != null && !(args instanceof PyTuple)) {
                    value = mapping;
                } else {
                    if (next >= items.size()) {
                        throw TemplateException.type("not enough arguments for format string");
                    }
                    value = items.get(next++);
                    value = value == NONE ? null : value;
                }
            }
            if (width > MAX_FIELD || prec > MAX_FIELD) {
                throw TemplateException.limit("format field wider than " + MAX_FIELD);
            }
            String s = convert(conv, value, flags.toString(), prec);
            if (markup && (conv == 's' || conv == 'r')) {
                s = value instanceof Markup ? s : Markup.escape(s);
            }
            out.append(pad(s, width, flags.toString(), conv));
        }
        if (mapping == null && next < items.size()) {
            throw TemplateException.type("not all arguments converted during string formatting");
        }
        return markup ? new Markup(out.toString()) : out.toString();
    }

    private static final Object NONE = new Object();

    /** Width and precision of one %-field; a template needing more is building a bomb. */
    private static final int MAX_FIELD = 1 << 16;

    private static String convert(char conv, Object v, String flags, int prec) {
        switch (conv) {
            case 's' -> {
                String s = PyOps.str(v);
                return prec >= 0 && prec < s.length() ? s.substring(0, prec) : s;
            }
            case 'r', 'a' -> {
                return PyOps.repr(v);
            }
            case 'd', 'i', 'u' -> {
                long l = v instanceof Double d ? (long) d.doubleValue() : PyOps.toLong(number(v, conv));
                return sign(l >= 0, flags) + Math.abs(l);
            }
            case 'x', 'X', 'o' -> {
                long l = PyOps.toLong(number(v, conv));
                String digits = conv == 'o' ? Long.toOctalString(Math.abs(l)) : Long.toHexString(Math.abs(l));
                if (flags.contains("#")) {
                    digits = (conv == 'o' ? "0o" : "0x") + digits;
                }
                digits = conv == 'X' ? digits.toUpperCase(Locale.ROOT) : digits;
                return sign(l >= 0, flags) + digits;
            }
            case 'f', 'F', 'e', 'E', 'g', 'G' -> {
                double d = PyOps.toDouble(number(v, conv));
                return sign(d >= 0 || Double.isNaN(d), flags) + fixed(Math.abs(d), conv, prec < 0 ? 6 : prec,
                        flags.contains("#"));
            }
            case 'c' -> {
                return v instanceof Long l ? Character.toString(l.intValue()) : PyOps.str(v);
            }
            default -> throw TemplateException.value("unsupported format character '" + conv + "'");
        }
    }

    private static Object number(Object v, char conv) {
        if (!PyOps.isNumber(v)) {
            throw TemplateException.type("%" + conv + " format: a real number is required, not " + PyOps.typeName(v));
        }
        return v;
    }

    private static String sign(boolean nonNegative, String flags) {
        if (!nonNegative) {
            return "-";
        }
        return flags.contains("+") ? "+" : flags.contains(" ") ? " " : "";
    }

    /** {@code %f}, {@code %e} and {@code %g} of a non-negative double, rounded from its exact value. */
    static String fixed(double d, char conv, int prec, boolean alt) {
        if (Double.isNaN(d)) {
            return Character.isUpperCase(conv) ? "NAN" : "nan";
        }
        if (Double.isInfinite(d)) {
            return Character.isUpperCase(conv) ? "INF" : "inf";
        }
        BigDecimal x = new BigDecimal(d);
        switch (Character.toLowerCase(conv)) {
            case 'f' -> {
                return x.setScale(prec, RoundingMode.HALF_EVEN).toPlainString();
            }
            case 'e' -> {
                return sci(x, prec, conv == 'E');
            }
            default -> {
                int p = prec == 0 ? 1 : prec;
                if (d == 0) {
                    return alt ? "0." + "0".repeat(p - 1) : "0";
                }
                BigDecimal r = x.round(new java.math.MathContext(p, RoundingMode.HALF_EVEN));
                int exp = r.precision() - r.scale() - 1;
                String s;
                if (exp < -4 || exp >= p) {
                    s = sci(x, p - 1, conv == 'G');
                    if (!alt) {
                        int e = s.indexOf(conv == 'G' ? 'E' : 'e');
                        String mant = s.substring(0, e);
                        if (mant.contains(".")) {
                            mant = mant.replaceAll("0+$", "").replaceAll("\\.$", "");
                        }
                        s = mant + s.substring(e);
                    }
                } else {
                    s = x.setScale(Math.max(0, p - 1 - exp), RoundingMode.HALF_EVEN).toPlainString();
                    if (!alt && s.contains(".")) {
                        s = s.replaceAll("0+$", "").replaceAll("\\.$", "");
                    }
                }
                return s;
            }
        }
    }

    private static String sci(BigDecimal x, int prec, boolean upper) {
        if (x.signum() == 0) {
            return "0" + (prec > 0 ? "." + "0".repeat(prec) : "") + (upper ? "E+00" : "e+00");
        }
        BigDecimal r = x.round(new java.math.MathContext(prec + 1, RoundingMode.HALF_EVEN));
        int exp = r.precision() - r.scale() - 1;
        String digits = r.unscaledValue().toString();
        digits = (digits + "0".repeat(prec + 1)).substring(0, prec + 1);
        String mant = prec > 0 ? digits.charAt(0) + "." + digits.substring(1) : digits;
        String e = String.valueOf(Math.abs(exp));
        return mant + (upper ? "E" : "e") + (exp < 0 ? "-" : "+") + (e.length() < 2 ? "0" + e : e);
    }

    private static String pad(String s, int width, String flags, char conv) {
        int len = PyStrings.length(s);
        if (len >= width) {
            return s;
        }
        if (flags.contains("-")) {
            return s + " ".repeat(width - len);
        }
        if (flags.contains("0") && "diuxXofFeEgG".indexOf(conv) >= 0) {
            int signLen = !s.isEmpty() && "+- ".indexOf(s.charAt(0)) >= 0 ? 1 : 0;
            return s.substring(0, signLen) + "0".repeat(width - len) + s.substring(signLen);
        }
        return " ".repeat(width - len) + s;
    }

    /** {@code str.format} with {@code {}}, {@code {0}}, {@code {name}} fields and no format specs. */
    static String format(String fmt, List<Object> args, Map<String, Object> kwargs) {
        StringBuilder out = new StringBuilder();
        int auto = 0;
        int i = 0;
        while (i < fmt.length()) {
            char c = fmt.charAt(i);
            if (c == '{' && i + 1 < fmt.length() && fmt.charAt(i + 1) == '{') {
                out.append('{');
                i += 2;
            } else if (c == '}' && i + 1 < fmt.length() && fmt.charAt(i + 1) == '}') {
                out.append('}');
                i += 2;
            } else if (c == '{') {
                int close = fmt.indexOf('}', i);
                if (close < 0) {
                    throw TemplateException.value("expected '}' before end of string");
                }
                String field = fmt.substring(i + 1, close);
                if (field.contains(":") || field.contains("!") || field.contains(".") || field.contains("[")) {
                    throw TemplateException.unsupported("str.format field '{" + field + "}'");
                }
                Object v;
                if (field.isEmpty()) {
                    v = arg(args, auto++);
                } else if (field.chars().allMatch(Character::isDigit)) {
                    v = arg(args, Integer.parseInt(field));
                } else if (kwargs.containsKey(field)) {
                    v = kwargs.get(field);
                } else {
                    throw new TemplateException("KeyError", PyStrings.repr(field));
                }
                out.append(PyOps.str(v));
                i = close + 1;
            } else if (c == '}') {
                throw TemplateException.value("Single '}' encountered in format string");
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    private static Object arg(List<Object> args, int i) {
        if (i >= args.size()) {
            throw new TemplateException("IndexError", "Replacement index " + i + " out of range");
        }
        return args.get(i);
    }
}
