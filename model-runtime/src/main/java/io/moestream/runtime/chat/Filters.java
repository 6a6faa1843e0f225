package io.moestream.runtime.chat;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** jinja2 3.1's builtin filters, with transformers' {@code tojson}. */
final class Filters {

    private static final Pattern WORD_BEGINNING = Pattern.compile("([-\\s({\\[<]+)");
    private static final Pattern WORD = Pattern.compile("\\w+", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern FLOAT_TEXT =
            Pattern.compile("[+-]?(?:\\d+(?:_\\d+)*)?(?:\\.(?:\\d+(?:_\\d+)*)?)?(?:e[+-]?\\d+)?");

    private Filters() {
    }

    static boolean exists(String name) {
        return switch (name) {
            case "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
                    "first", "float", "forceescape", "format", "indent", "int", "items", "join", "last", "length",
                    "list", "lower", "map", "max", "min", "pprint", "reject", "rejectattr", "replace", "reverse",
                    "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title",
                    "tojson", "trim", "truncate", "unique", "upper", "wordcount", "groupby" -> true;
            default -> false;
        };
    }

    /** Parameter names (after the value) of the filters with a fixed signature, as jinja2 declares them. */
    private static final Map<String, List<String>> SIGNATURES = Map.ofEntries(
            Map.entry("default", List.of("default_value", "boolean")),
            Map.entry("d", List.of("default_value", "boolean")),
            Map.entry("tojson", List.of("ensure_ascii", "indent", "separators", "sort_keys")),
            Map.entry("trim", List.of("chars")),
            Map.entry("replace", List.of("old", "new", "count")),
            Map.entry("join", List.of("d", "attribute")),
            Map.entry("attr", List.of("name")),
            Map.entry("int", List.of("default", "base")),
            Map.entry("float", List.of("default")),
            Map.entry("round", List.of("precision", "method")),
            Map.entry("sum", List.of("attribute", "start")),
            Map.entry("min", List.of("case_sensitive", "attribute")),
            Map.entry("max", List.of("case_sensitive", "attribute")),
            Map.entry("sort", List.of("reverse", "case_sensitive", "attribute")),
            Map.entry("dictsort", List.of("case_sensitive", "by", "reverse")),
            Map.entry("unique", List.of("case_sensitive", "attribute")),
            Map.entry("groupby", List.of("attribute", "default", "case_sensitive")),
            Map.entry("batch", List.of("linecount", "fill_with")),
            Map.entry("slice", List.of("slices", "fill_with")),
            Map.entry("center", List.of("width")),
            Map.entry("indent", List.of("width", "first", "blank")),
            Map.entry("truncate", List.of("length", "killwords", "end", "leeway")));

    /** Filters that take the value only. */
    private static final java.util.Set<String> NO_ARGS = java.util.Set.of("length", "count", "string", "safe",
            "escape", "e", "forceescape", "upper", "lower", "capitalize", "title", "first", "last", "list", "items",
            "reverse", "abs", "wordcount", "pprint", "striptags");

    /** Python's argument binding errors: too many positionals, unknown or repeated keywords. */
    private static void checkSignature(String name, List<Object> pos, Map<String, Object> kw) {
        List<String> params = NO_ARGS.contains(name) ? List.of() : SIGNATURES.get(name);
        if (params == null) {
            return;
        }
        if (pos.size() > params.size()) {
            throw TemplateException.type(name + "() takes at most " + params.size() + " arguments after the value ("
                    + pos.size() + " given)");
        }
        for (String k : kw.keySet()) {
            int i = params.indexOf(k);
            if (i < 0) {
                throw TemplateException.type(name + "() got an unexpected keyword argument '" + k + "'");
            }
            if (i < pos.size()) {
                throw TemplateException.type(name + "() got multiple values for argument '" + k + "'");
            }
        }
    }

    static Object apply(Interpreter in, String name, Object v, List<Object> pos, Map<String, Object> kw) {
        checkSignature(name, pos, kw);
        Methods.Args a = new Methods.Args(name, pos, kw);
        switch (name) {
            case "default", "d" -> {
                Object dflt = a.get(0, "default_value", "");
                boolean bool = PyOps.truthy(a.get(1, "boolean", false));
                return v instanceof Undefined || (bool && !PyOps.truthy(v)) ? dflt : v;
            }
            case "length", "count" -> {
                return PyOps.len(v);
            }
            case "string" -> {
                return v instanceof Markup ? v : PyOps.str(v);
            }
            case "safe" -> {
                return v instanceof Markup ? v : new Markup(PyOps.str(v));
            }
            case "escape", "e" -> {
                return Markup.escapeValue(v);
            }
            case "forceescape" -> {
                return new Markup(Markup.escape(PyOps.str(v)));
            }
            case "tojson" -> {
                return Json.dumps(v, a, in);
            }
            case "trim" -> {
                return keepMarkup(v, PyStrings.strip(PyOps.str(v), a.str(0, "chars", null)));
            }
            case "upper" -> {
                return keepMarkup(v, PyStrings.upper(PyOps.str(v)));
            }
            case "lower" -> {
                return keepMarkup(v, PyStrings.lower(PyOps.str(v)));
            }
            case "capitalize" -> {
                return keepMarkup(v, PyStrings.capitalize(PyOps.str(v)));
            }
            case "title" -> {
                return keepMarkup(v, title(PyOps.str(v)));
            }
            case "replace" -> {
                Object old = a.required(0, "old");
                Object rep = a.required(1, "new");
                Object count = a.get(2, "count", null);
                Map<String, Object> k = new LinkedHashMap<>();
                List<Object> args = new ArrayList<>(List.of(PyOps.str(old), PyOps.str(rep)));
                if (count != null) {
                    args.add(count);
                }
                return StrMethods.call(in, PyOps.str(v), "replace", new Methods.Args("replace", args, k));
            }
            case "first" -> {
                List<Object> items = PyOps.iterate(v);
                return items.isEmpty() ? Undefined.hint("No first item, sequence was empty.") : items.get(0);
            }
            case "last" -> {
                if (v instanceof PyIterator) {
                    throw TemplateException.type("'generator' object is not reversible");
                }
                List<Object> items = PyOps.iterate(v);
                return items.isEmpty() ? Undefined.hint("No last item, sequence was empty.")
                        : items.get(items.size() - 1);
            }
            case "join", "select", "reject", "selectattr", "rejectattr", "map", "sum", "min", "max", "sort", "dictsort",
                    "unique", "groupby", "batch", "slice" -> {
                return SequenceFilters.apply(in, name, v, pos, kw);
            }
            case "list" -> {
                return PyOps.iterate(v);
            }
            case "items" -> {
                return new PyIterator(() -> {
                    List<Object> out = new ArrayList<>();
                    if (v instanceof Undefined) {
                        return out;
                    }
                    if (!(v instanceof Map<?, ?> m)) {
                        throw TemplateException.type("Can only get item pairs from a mapping.");
                    }
                    m.forEach((k, x) -> out.add(new PyTuple(java.util.Arrays.asList(k, x))));
                    return out;
                });
            }
            case "reverse" -> {
                if (PyOps.isStr(v)) {
                    return Access.slice(v, null, null, -1L);
                }
                List<Object> items = PyOps.iterate(v);
                java.util.Collections.reverse(items);
                return v instanceof List || v instanceof PyTuple || v instanceof Map ? PyIterator.of(items) : items;
            }
            case "attr" -> {
                String attr = PyOps.str(a.required(0, "name"));
                Object r = Access.getattr(v, attr);
                return r;
            }
            case "abs" -> {
                if (v instanceof Double d) {
                    return Math.abs(d);
                }
                if (v instanceof Long || v instanceof Boolean) {
                    return Math.abs(PyOps.toLong(v));
                }
                throw TemplateException.type("bad operand type for abs(): '" + PyOps.typeName(v) + "'");
            }
            case "int" -> {
                return toInt(v, a);
            }
            case "float" -> {
                return toFloat(v, a.get(0, "default", 0.0));
            }
            case "round" -> {
                return round(v, a);
            }
            case "center" -> {
                List<Object> args = new ArrayList<>(List.of(a.get(0, "width", 80L)));
                return StrMethods.call(in, PyOps.str(v), "center", new Methods.Args("center", args, Map.of()));
            }
            case "indent" -> {
                return indent(in, v, a);
            }
            case "truncate" -> {
                return truncate(PyOps.str(v), a);
            }
            case "wordcount" -> {
                Matcher m = WORD.matcher(PyOps.str(v));
                long n = 0;
                while (m.find()) {
                    n++;
                }
                return n;
            }
            case "format" -> {
                Object args = !kw.isEmpty() ? new LinkedHashMap<Object, Object>(kw) : new PyTuple(pos);
                return PyFormat.percent(v instanceof Markup ? v : PyOps.str(v), args);
            }
            case "striptags" -> {
                return stripTags(in, PyOps.str(v));
            }
            case "pprint" -> {
                return PyOps.repr(v);
            }
            default -> throw new TemplateException("TemplateRuntimeError", "No filter named '" + name + "'."
                    + (isKnownElsewhere(name) ? " (jinja2 has it; this renderer does not support it)" : ""));
        }
    }

    private static boolean isKnownElsewhere(String name) {
        return switch (name) {
            case "random", "filesizeformat", "urlencode", "urlize", "wordwrap", "xmlattr" -> true;
            default -> false;
        };
    }

    /**
     * markupsafe's {@code striptags}: comments, then tags, removed one at a time from the start (each
     * removal charged as a copy), whitespace collapsed, the basic HTML entities unescaped.
     */
    private static String stripTags(Interpreter in, String text) {
        StringBuilder v = new StringBuilder(text);
        int start;
        while ((start = v.indexOf("<!--")) >= 0) {
            int end = v.indexOf("-->", start);
            if (end < 0) {
                break;
            }
            v.delete(start, end + 3);
            in.chargeChars(v.length());
        }
        while ((start = v.indexOf("<")) >= 0) {
            int end = v.indexOf(">", start);
            if (end < 0) {
                break;
            }
            v.delete(start, end + 1);
            in.chargeChars(v.length());
        }
        String collapsed = String.join(" ", PyStrings.split(v.toString(), null, -1).stream().map(Object::toString)
                .toList());
        return unescapeEntities(collapsed);
    }

    private static final Pattern ENTITY = Pattern.compile("&(#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[a-zA-Z]{2,6};)");

    /** The entities markupsafe's {@code unescape} meets in practice: numeric ones and amp/lt/gt/quot/apos/nbsp. */
    private static String unescapeEntities(String s) {
        Matcher m = ENTITY.matcher(s);
        StringBuilder b = new StringBuilder();
        while (m.find()) {
            String e = m.group(1);
            String r = switch (e) {
                case "amp;" -> "&";
                case "lt;" -> "<";
                case "gt;" -> ">";
                case "quot;" -> "\"";
                case "apos;" -> "'";
                case "nbsp;" -> "\u00a0";
                default -> {
                    if (!e.startsWith("#")) {
                        yield m.group();
                    }
                    boolean hex = e.charAt(1) == 'x' || e.charAt(1) == 'X';
                    int cp = Integer.parseInt(e.substring(hex ? 2 : 1, e.length() - 1), hex ? 16 : 10);
                    yield Character.isValidCodePoint(cp) && cp != 0 ? Character.toString(cp) : "\ufffd";
                }
            };
            m.appendReplacement(b, Matcher.quoteReplacement(r));
        }
        m.appendTail(b);
        return b.toString();
    }

    private static Object keepMarkup(Object original, String result) {
        return original instanceof Markup ? new Markup(result) : result;
    }

    /** jinja2's {@code title}: capitalize every word, words split by whitespace and -([{<. */
    private static String title(String s) {
        StringBuilder b = new StringBuilder();
        Matcher m = WORD_BEGINNING.matcher(s);
        int last = 0;
        List<String> parts = new ArrayList<>();
        while (m.find()) {
            parts.add(s.substring(last, m.start()));
            parts.add(m.group());
            last = m.end();
        }
        parts.add(s.substring(last));
        for (String item : parts) {
            if (!item.isEmpty()) {
                int c = item.codePointAt(0);
                b.append(PyStrings.upper(Character.toString(c)))
                        .append(PyStrings.lower(item.substring(Character.charCount(c))));
            }
        }
        return b.toString();
    }

    private static Object toInt(Object v, Methods.Args a) {
        Object dflt = a.get(0, "default", 0L);
        long base = a.integer(1, "base", 10);
        if (v instanceof Long) {
            return v;
        }
        if (v instanceof Boolean b) {
            return b ? 1L : 0L;
        }
        if (v instanceof Double d) {
            return Double.isFinite(d) ? (long) d.doubleValue() : dflt;
        }
        if (PyOps.isStr(v)) {
            String s = PyStrings.strip(PyOps.str(v), null).replace("_", "");
            try {
                return parseIntLiteral(s, (int) base);
            } catch (NumberFormatException e) {
                try {
                    double d = Double.parseDouble(s);
                    return Double.isFinite(d) ? (long) d : dflt;
                } catch (NumberFormatException e2) {
                    return dflt;
                }
            }
        }
        return dflt;
    }

    /** Python's {@code int(s, base)}: sign, then a 0x/0o/0b prefix matching the base (any for base 0). */
    private static long parseIntLiteral(String s, int base) {
        boolean neg = s.startsWith("-");
        String body = s.startsWith("-") || s.startsWith("+") ? s.substring(1) : s;
        String lower = body.toLowerCase(java.util.Locale.ROOT);
        int b = base;
        for (String[] p : new String[][] {{"0x", "16"}, {"0o", "8"}, {"0b", "2"}}) {
            int pb = Integer.parseInt(p[1]);
            if (lower.startsWith(p[0]) && (base == 0 || base == pb)) {
                body = body.substring(2);
                b = pb;
            }
        }
        if (b == 0) {
            b = 10;
        }
        long v = Long.parseLong(body, b);
        return neg ? -v : v;
    }

    private static Object toFloat(Object v, Object dflt) {
        if (v instanceof Double) {
            return v;
        }
        if (v instanceof Long || v instanceof Boolean) {
            return (double) PyOps.toLong(v);
        }
        if (PyOps.isStr(v)) {
            String s = PyStrings.strip(PyOps.str(v), null).toLowerCase(java.util.Locale.ROOT);
            if (s.matches("[+-]?(inf|infinity|nan)")) {
                return s.contains("nan") ? Double.NaN
                        : s.startsWith("-") ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY;
            }
            try {
                if (FLOAT_TEXT.matcher(s).matches() && s.matches(".*\\d.*")) {
                    return Double.parseDouble(s.replace("_", ""));
                }
            } catch (NumberFormatException e) {
                return dflt;
            }
        }
        return dflt;
    }

    private static Object round(Object v, Methods.Args a) {
        long precision = a.integer(0, "precision", 0);
        String method = PyOps.str(a.get(1, "method", "common"));
        if (!PyOps.isNumber(v)) {
            throw TemplateException.type("type " + PyOps.typeName(v) + " doesn't define __round__ method");
        }
        if (method.equals("common")) {
            if (!(v instanceof Double d)) {
                return PyOps.toLong(v);
            }
            if (!Double.isFinite(d) || precision > 400) {
                return d;
            }
            if (precision < -400) {
                return 0.0 * d;
            }
            return new BigDecimal(d).setScale((int) precision, RoundingMode.HALF_EVEN).doubleValue();
        }
        if (!method.equals("ceil") && !method.equals("floor")) {
            throw TemplateException.runtime("method must be common, ceil or floor");
        }
        double scale = Math.pow(10, precision);
        double x = PyOps.toDouble(v) * scale;
        return (method.equals("ceil") ? Math.ceil(x) : Math.floor(x)) / scale;
    }

    private static Object indent(Interpreter in, Object v, Methods.Args a) {
        Object w = a.get(0, "width", 4L);
        String ind = PyOps.isStr(w) ? PyOps.str(w) : " ".repeat((int) Math.max(0, Math.min(PyOps.toLong(w),
                in.maxSize())));
        boolean first = PyOps.truthy(a.get(1, "first", false));
        boolean blank = PyOps.truthy(a.get(2, "blank", false));
        String s = PyOps.str(v) + "\n";
        List<Object> lines = PyStrings.splitlines(s, false);
        StringBuilder rv = new StringBuilder();
        if (blank) {
            for (int i = 0; i < lines.size(); i++) {
                rv.append(i > 0 ? "\n" + ind : "").append(lines.get(i));
            }
        } else {
            rv.append(lines.get(0));
            for (int i = 1; i < lines.size(); i++) {
                String line = (String) lines.get(i);
                rv.append('\n').append(line.isEmpty() ? "" : ind + line);
                in.checkSize(rv.length());
            }
        }
        String out = first ? ind + rv : rv.toString();
        return keepMarkup(v, out);
    }

    private static Object truncate(String s, Methods.Args a) {
        long length = a.integer(0, "length", 255);
        boolean killwords = PyOps.truthy(a.get(1, "killwords", false));
        String end = PyOps.str(a.get(2, "end", "..."));
        long leeway = a.get(3, "leeway", null) == null ? 5 : a.integer(3, "leeway", 5);
        int n = PyStrings.length(s);
        if (length < PyStrings.length(end)) {
            throw TemplateException.value("expected length >= " + PyStrings.length(end) + ", got " + length);
        }
        if (n <= length + leeway) {
            return s;
        }
        int cut = (int) (length - PyStrings.length(end));
        String head = s.substring(0, s.offsetByCodePoints(0, cut));
        if (killwords) {
            return head + end;
        }
        int sp = head.lastIndexOf(' ');
        return (sp < 0 ? head : head.substring(0, sp)) + end;
    }
}
