package io.moestream.runtime.chat;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/** jinja2's filters over sequences: joining, selecting, mapping, ordering, grouping, chunking. */
final class SequenceFilters {

    private SequenceFilters() {
    }

    static Object apply(Interpreter in, String name, Object v, List<Object> pos, Map<String, Object> kw) {
        Methods.Args a = new Methods.Args(name, pos, kw);
        switch (name) {
            case "join" -> {
                return join(in, v, a);
            }
            case "select", "reject", "selectattr", "rejectattr" -> {
                return new PyIterator(() -> PyOps.truthy(v) ? selectOrReject(in, name, v, pos, kw) : new ArrayList<>());
            }
            case "map" -> {
                return new PyIterator(() -> PyOps.truthy(v) ? map(in, v, pos, kw) : new ArrayList<>());
            }
            case "sum" -> {
                Object total = a.get(1, "start", 0L);
                if (PyOps.isStr(total)) {
                    throw TemplateException.type("sum() can't sum strings [use ''.join(seq) instead]");
                }
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
            default -> throw new IllegalStateException(name);
        }
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
        Object grouper = attrGet(group.get(0), attr, dflt);
        return new PyTuple(java.util.Arrays.asList(grouper, group), List.of("grouper", "list"));
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
}
