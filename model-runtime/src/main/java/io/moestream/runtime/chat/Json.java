package io.moestream.runtime.chat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The {@code tojson} filter as transformers replaces it: Python's
 * {@code json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)}, byte for
 * byte (Python float repr, {@code ", "}/{@code ": "} separators, non-ASCII raw unless asked).
 */
final class Json {

    private final boolean ensureAscii;
    private final String indent;
    private final String itemSep;
    private final String keySep;
    private final boolean sortKeys;
    private final Interpreter in;
    private final StringBuilder out = new StringBuilder();

    private Json(boolean ensureAscii, String indent, String itemSep, String keySep, boolean sortKeys, Interpreter in) {
        this.ensureAscii = ensureAscii;
        this.indent = indent;
        this.itemSep = itemSep;
        this.keySep = keySep;
        this.sortKeys = sortKeys;
        this.in = in;
    }

    static String dumps(Object v, Methods.Args a, Interpreter in) {
        a.atMost(4);
        boolean ascii = PyOps.truthy(a.get(0, "ensure_ascii", false));
        Object ind = a.get(1, "indent", null);
        Object seps = a.get(2, "separators", null);
        boolean sort = PyOps.truthy(a.get(3, "sort_keys", false));
        String indent = null;
        if (ind instanceof Long || ind instanceof Boolean) {
            indent = " ".repeat((int) Math.max(0, Math.min(PyOps.toLong(ind), 1024)));
        } else if (PyOps.isStr(ind)) {
            indent = PyOps.str(ind);
        } else if (ind != null) {
            throw TemplateException.type("indent must be an int or a str");
        }
        String itemSep = indent == null ? ", " : ",";
        String keySep = ": ";
        if (seps != null) {
            List<Object> pair = PyOps.iterate(seps);
            if (pair.size() != 2) {
                throw TemplateException.value("separators must be an (item_separator, key_separator) pair");
            }
            itemSep = PyOps.str(pair.get(0));
            keySep = PyOps.str(pair.get(1));
        }
        Json j = new Json(ascii, indent, itemSep, keySep, sort, in);
        j.write(v, 0);
        return j.out.toString();
    }

    private void write(Object v, int level) {
        in.checkSize(out.length());
        in.charge(1);
        if (v == null) {
            out.append("null");
        } else if (v instanceof Boolean b) {
            out.append(b ? "true" : "false");
        } else if (v instanceof Long l) {
            out.append(l);
        } else if (v instanceof Double d) {
            out.append(floatJson(d));
        } else if (PyOps.isStr(v)) {
            string(PyOps.str(v));
        } else if (v instanceof List<?> || v instanceof PyTuple) {
            List<?> items = v instanceof PyTuple t ? t.items() : (List<?>) v;
            if (items.isEmpty()) {
                out.append("[]");
                return;
            }
            out.append('[');
            for (int i = 0; i < items.size(); i++) {
                separator(i, level + 1);
                write(items.get(i), level + 1);
            }
            close(level, ']');
        } else if (v instanceof Map<?, ?> m) {
            if (m.isEmpty()) {
                out.append("{}");
                return;
            }
            List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());
            if (sortKeys) {
                entries.sort((x, y) -> PyOps.compare(x.getKey(), y.getKey(), "<"));
            }
            out.append('{');
            for (int i = 0; i < entries.size(); i++) {
                separator(i, level + 1);
                string(key(entries.get(i).getKey()));
                out.append(keySep);
                write(entries.get(i).getValue(), level + 1);
            }
            close(level, '}');
        } else {
            throw TemplateException.type("Object of type " + PyOps.typeName(v) + " is not JSON serializable");
        }
    }

    private void separator(int i, int level) {
        if (i > 0) {
            out.append(itemSep);
        }
        if (indent != null) {
            out.append('\n').append(indent.repeat(level));
        }
    }

    private void close(int level, char c) {
        if (indent != null) {
            out.append('\n').append(indent.repeat(level));
        }
        out.append(c);
    }

    private static String key(Object k) {
        if (PyOps.isStr(k)) {
            return PyOps.str(k);
        }
        if (k == null) {
            return "null";
        }
        if (k instanceof Boolean b) {
            return b ? "true" : "false";
        }
        if (k instanceof Long l) {
            return l.toString();
        }
        if (k instanceof Double d) {
            return floatJson(d);
        }
        throw TemplateException.type("keys must be str, int, float, bool or None, not " + PyOps.typeName(k));
    }

    private static String floatJson(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        return PyOps.floatRepr(d);
    }

    private void string(String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20 || (ensureAscii && c > 0x7e)) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }
}
