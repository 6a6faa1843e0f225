package io.moestream.runtime.chat;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Comparator;
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
    private static final Pattern TAGS = Pattern.compile("<!--.*?-->|<[^>]*>", Pattern.DOTALL);

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

    static Object apply(Interpreter in, String name, Object v, List<Object> pos, Map<String, Object> kw) {
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
            case "join" -> {
                return join(in, v, a);
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
            case "select", "reject", "selectattr", "rejectattr" -> {
                return new PyIterator(() -> PyOps.truthy(v) ? selectOrReject(in, name, v, pos, kw) : new ArrayList<>());
            }
            case "map" -> {
                return new PyIterator(() -> PyOps.truthy(v) ? map(in, v, pos, kw) : new ArrayList<>());
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
            case "sum" -> {
                Object total = a.get(1, "start", 0L);
                Object attr = a.get(0, "attribute", null);
                for (Object x : PyOps.iterate(v)) {
                    total = PyArith.binary("+", total, attr == null ? x : attrGet(x, attr, null), in.maxSize());
                }
                return total;
            }
            case "min", "max" -> {
                boolean cs = PyOps.truthy(a.get(0, "case_sensitive", false));
                Object attr = a.get(1, "attribute", null);
                List<Object> items = PyOps.iterate(v);
                if (items.isEmpty()) {
                    return Undefined.hint("No aggregated item, sequence was empty.");
                }
                Comparator<Object> cmp = keyComparator(attr, cs);
                Object best = items.get(0);
                for (Object x : items.subList(1, items.size())) {
                    int c = cmp.compare(x, best);
                    if (name.equals("min") ? c < 0 : c > 0) {
                        best = x;
                    }
                }
                return best;
            }
            case "sort" -> {
                boolean reverse = PyOps.truthy(a.get(0, "reverse", false));
                boolean cs = PyOps.truthy(a.get(1, "case_sensitive", false));
                Object attr = a.get(2, "attribute", null);
                List<Object> items = PyOps.iterate(v);
                in.charge(items.size() * (64L - Long.numberOfLeadingZeros(items.size())));
                Comparator<Object> cmp = keyComparator(attr, cs);
                items.sort(reverse ? cmp.reversed() : cmp);
                return items;
            }
            case "dictsort" -> {
                if (!(v instanceof Map<?, ?> m)) {
                    throw TemplateException.type("dictsort filter needs a mapping");
                }
                boolean cs = PyOps.truthy(a.get(0, "case_sensitive", false));
                String by = PyOps.str(a.get(1, "by", "key"));
                boolean reverse = PyOps.truthy(a.get(2, "reverse", false));
                int idx = by.equals("key") ? 0 : by.equals("value") ? 1 : -1;
                if (idx < 0) {
                    throw TemplateException.value("You can only sort by either \"key\" or \"value\"");
                }
                List<Object> items = new ArrayList<>();
                in.charge(m.size() * (64L - Long.numberOfLeadingZeros(m.size())));
                m.forEach((k, x) -> items.add(new PyTuple(java.util.Arrays.asList(k, x))));
                Comparator<Object> cmp = (p, q) -> PyOps.compare(ci(((PyTuple) p).items().get(idx), cs),
                        ci(((PyTuple) q).items().get(idx), cs), "<");
                items.sort(reverse ? cmp.reversed() : cmp);
                return items;
            }
            case "unique" -> {
                boolean cs = PyOps.truthy(a.get(0, "case_sensitive", false));
                Object attr = a.get(1, "attribute", null);
                java.util.Set<Object> seen = new java.util.HashSet<>();
                List<Object> out = new ArrayList<>();
                for (Object x : PyOps.iterate(v)) {
                    if (seen.add(PyOps.hashKey(ci(attr == null ? x : attrGet(x, attr, null), cs)))) {
                        out.add(x);
                    }
                }
                return PyIterator.of(out);
            }
            case "groupby" -> {
                return groupby(in, v, a);
            }
            case "batch", "slice" -> {
                return name.equals("batch") ? batch(v, a) : slices(in, v, a);
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
                String s = TAGS.matcher(PyOps.str(v)).replaceAll("");
                s = String.join(" ", PyStrings.split(s, null, -1).stream().map(Object::toString).toList());
                return s.replace("&lt;", "<").replace("&gt;", ">").replace("&#34;", "\"").replace("&#39;", "'")
                        .replace("&quot;", "\"").replace("&amp;", "&");
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

    private static Object join(Interpreter in, Object v, Methods.Args a) {
        String sep = PyOps.str(a.get(0, "d", ""));
        Object attr = a.get(1, "attribute", null);
        StringBuilder b = new StringBuilder();
        boolean first = true;
        for (Object x : PyOps.iterate(v)) {
            Object item = attr == null ? x : attrGet(x, attr, null);
            b.append(first ? "" : sep).append(PyOps.str(item));
            first = false;
            in.checkSize(b.length());
        }
        return b.toString();
    }

    /** jinja2's make_attrgetter: dotted path, integer parts index, missing gives {@code dflt} if set. */
    static Object attrGet(Object item, Object attribute, Object dflt) {
        if (attribute instanceof Long || attribute instanceof Boolean) {
            return Access.getitem(item, attribute);
        }
        Object cur = item;
        for (String part : PyOps.str(attribute).split("\\.", -1)) {
            Object key = part.matches("\\d+") ? (Object) Long.parseLong(part) : part;
            cur = Access.getitem(cur, key);
            if (dflt != null && cur instanceof Undefined) {
                cur = dflt;
            }
        }
        return cur;
    }

    private static Object ci(Object v, boolean caseSensitive) {
        return !caseSensitive && PyOps.isStr(v) ? PyStrings.lower(PyOps.str(v)) : v;
    }

    private static Comparator<Object> keyComparator(Object attr, boolean cs) {
        if (attr == null) {
            return (p, q) -> PyOps.compare(ci(p, cs), ci(q, cs), "<");
        }
        String[] attrs = PyOps.str(attr).split(",");
        return (p, q) -> {
            for (String at : attrs) {
                int c = PyOps.compare(ci(attrGet(p, at.strip(), null), cs), ci(attrGet(q, at.strip(), null), cs), "<");
                if (c != 0) {
                    return c;
                }
            }
            return 0;
        };
    }

    private static List<Object> selectOrReject(Interpreter in, String name, Object v, List<Object> pos,
            Map<String, Object> kw) {
        boolean byAttr = name.endsWith("attr");
        boolean keep = name.startsWith("select");
        int off = 0;
        Object attr = null;
        if (byAttr) {
            if (pos.isEmpty()) {
                throw TemplateException.type("Missing parameter for attribute name");
            }
            attr = pos.get(0);
            off = 1;
        }
        String test = pos.size() > off ? PyOps.str(pos.get(off)) : null;
        List<Object> testArgs = pos.size() > off + 1 ? pos.subList(off + 1, pos.size()) : List.of();
        List<Object> out = new ArrayList<>();
        for (Object x : PyOps.iterate(v)) {
            Object probe = byAttr ? attrGet(x, attr, null) : x;
            boolean ok = test == null ? PyOps.truthy(probe) : Tests.apply(in, test, probe, testArgs, kw);
            if (ok == keep) {
                out.add(x);
            }
        }
        return out;
    }

    private static List<Object> map(Interpreter in, Object v, List<Object> pos, Map<String, Object> kw) {
        List<Object> out = new ArrayList<>();
        if (pos.isEmpty() && kw.containsKey("attribute")) {
            Object attr = kw.get("attribute");
            Object dflt = kw.get("default");
            for (Object x : PyOps.iterate(v)) {
                out.add(attrGet(x, attr, dflt));
            }
        } else {
            if (pos.isEmpty()) {
                throw TemplateException.runtime("map requires a filter argument");
            }
            String f = PyOps.str(pos.get(0));
            List<Object> rest = pos.subList(1, pos.size());
            for (Object x : PyOps.iterate(v)) {
                out.add(in.filter(f, x, rest, kw));
            }
        }
        return out;
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

    /** Sorted by the attribute, then grouped: {@code (grouper, list)} named tuples, as jinja2's groupby. */
    private static Object groupby(Interpreter in, Object v, Methods.Args a) {
        Object attr = a.required(0, "attribute");
        Object dflt = a.get(1, "default", null);
        boolean cs = PyOps.truthy(a.get(2, "case_sensitive", false));
        List<Object> items = PyOps.iterate(v);
        in.charge(items.size() * (64L - Long.numberOfLeadingZeros(items.size())));
        items.sort((p, q) -> PyOps.compare(ci(attrGet(p, attr, dflt), cs), ci(attrGet(q, attr, dflt), cs), "<"));
        List<Object> out = new ArrayList<>();
        List<Object> group = null;
        Object key = null;
        for (Object x : items) {
            Object k = ci(attrGet(x, attr, dflt), cs);
            if (group == null || !PyOps.eq(k, key)) {
                if (group != null) {
                    out.add(groupTuple(group, attr, dflt));
                }
                group = new ArrayList<>();
                key = k;
            }
            group.add(x);
        }
        if (group != null) {
            out.add(groupTuple(group, attr, dflt));
        }
        return out;
    }

    private static PyTuple groupTuple(List<Object> group, Object attr, Object dflt) {
        return new PyTuple(java.util.Arrays.asList(attrGet(group.get(0), attr, dflt), group), List.of("grouper", "list"));
    }

    private static Object batch(Object v, Methods.Args a) {
        long n = a.integer(0, "linecount", 1);
        if (n <= 0) {
            throw TemplateException.value("batch size must be positive");
        }
        Object fill = a.get(1, "fill_with", null);
        boolean hasFill = a.has(1, "fill_with") && fill != null;
        List<Object> out = new ArrayList<>();
        List<Object> cur = new ArrayList<>();
        for (Object x : PyOps.iterate(v)) {
            if (cur.size() == n) {
                out.add(cur);
                cur = new ArrayList<>();
            }
            cur.add(x);
        }
        if (!cur.isEmpty()) {
            while (hasFill && cur.size() < n) {
                cur.add(fill);
            }
            out.add(cur);
        }
        return PyIterator.of(out);
    }

    private static Object slices(Interpreter in, Object v, Methods.Args a) {
        long slices = a.integer(0, "slices", 1);
        if (slices <= 0) {
            throw TemplateException.value("slice count must be positive");
        }
        in.charge(slices);
        Object fill = a.get(1, "fill_with", null);
        List<Object> seq = PyOps.iterate(v);
        int length = seq.size();
        int per = (int) (length / slices);
        int extra = (int) (length % slices);
        int offset = 0;
        List<Object> out = new ArrayList<>();
        for (int i = 0; i < slices; i++) {
            int start = offset + i * per;
            if (i < extra) {
                offset++;
            }
            int end = offset + (i + 1) * per;
            List<Object> tmp = new ArrayList<>(seq.subList(start, end));
            if (fill != null && i >= extra) {
                tmp.add(fill);
            }
            out.add(tmp);
        }
        return PyIterator.of(out);
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
