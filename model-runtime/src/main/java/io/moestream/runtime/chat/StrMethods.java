package io.moestream.runtime.chat;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** Python's {@code str} methods, counting code points (not UTF-16 units) wherever Python counts. */
final class StrMethods {

    /** Methods whose result markupsafe keeps as Markup when called on Markup. */
    static final Set<String> KEEPS_MARKUP = Set.of("capitalize", "center", "lower", "ljust", "lstrip", "replace",
            "rjust", "rstrip", "strip", "swapcase", "title", "upper", "zfill", "expandtabs", "removeprefix",
            "removesuffix", "format", "join");

    private StrMethods() {
    }

    static Object call(Interpreter in, String s, String name, Methods.Args a) {
        switch (name) {
            case "strip", "lstrip", "rstrip" -> {
                a.atMost(1);
                String chars = a.str(0, "chars", null);
                return name.equals("strip") ? PyStrings.strip(s, chars)
                        : name.equals("lstrip") ? PyStrings.lstrip(s, chars) : PyStrings.rstrip(s, chars);
            }
            case "split", "rsplit" -> {
                a.atMost(2);
                String sep = a.str(0, "sep", null);
                long max = a.integer(1, "maxsplit", -1);
                return name.equals("split") ? PyStrings.split(s, sep, max) : PyStrings.rsplit(s, sep, max);
            }
            case "splitlines" -> {
                return PyStrings.splitlines(s, PyOps.truthy(a.get(0, "keepends", false)));
            }
            case "startswith", "endswith" -> {
                a.atMost(3);
                Object prefix = a.required(0, name.equals("startswith") ? "prefix" : "suffix");
                String sub = range(s, a);
                List<Object> options = prefix instanceof PyTuple t ? t.items() : List.of(prefix);
                for (Object o : options) {
                    if (!PyOps.isStr(o)) {
                        throw TemplateException.type(name + " first arg must be str or a tuple of str, not "
                                + PyOps.typeName(o));
                    }
                    String p = PyOps.str(o);
                    if (name.equals("startswith") ? sub.startsWith(p) : sub.endsWith(p)) {
                        return true;
                    }
                }
                return false;
            }
            case "replace" -> {
                a.atMost(3);
                String old = a.str(0, "old", null);
                String rep = a.str(1, "new", null);
                if (old == null || rep == null) {
                    throw TemplateException.type("replace() takes at least 2 arguments");
                }
                long count = a.integer(2, "count", -1);
                return replace(in, s, old, rep, count);
            }
            case "upper" -> {
                return PyStrings.upper(s);
            }
            case "lower", "casefold" -> {
                return PyStrings.lower(s);
            }
            case "title" -> {
                return PyStrings.title(s);
            }
            case "capitalize" -> {
                return PyStrings.capitalize(s);
            }
            case "swapcase" -> {
                StringBuilder b = new StringBuilder();
                s.codePoints().forEach(c -> b.appendCodePoint(Character.isUpperCase(c) ? Character.toLowerCase(c)
                        : Character.toUpperCase(c)));
                return b.toString();
            }
            case "find", "rfind", "index", "rindex", "count" -> {
                return search(s, name, a);
            }
            case "join" -> {
                a.atMost(1);
                StringBuilder b = new StringBuilder();
                boolean first = true;
                for (Object o : PyOps.iterate(a.required(0, "iterable"))) {
                    if (!PyOps.isStr(o)) {
                        throw TemplateException.type("sequence item: expected str instance, " + PyOps.typeName(o)
                                + " found");
                    }
                    b.append(first ? "" : s).append(PyOps.str(o));
                    first = false;
                    in.checkSize(b.length());
                }
                return b.toString();
            }
            case "format" -> {
                return PyFormat.format(s, a.positional(), a.keywords());
            }
            case "center", "ljust", "rjust" -> {
                long width = a.integer(0, "width", 0);
                String fill = a.str(1, "fillchar", " ");
                int n = PyStrings.length(s);
                if (width <= n) {
                    return s;
                }
                in.checkSize(width);
                int padding = (int) (width - n);
                if (name.equals("ljust")) {
                    return s + fill.repeat(padding);
                }
                if (name.equals("rjust")) {
                    return fill.repeat(padding) + s;
                }
                int left = padding / 2 + (padding & (int) width & 1);
                return fill.repeat(left) + s + fill.repeat(padding - left);
            }
            case "zfill" -> {
                long width = a.integer(0, "width", 0);
                int n = PyStrings.length(s);
                if (width <= n) {
                    return s;
                }
                in.checkSize(width);
                int sign = !s.isEmpty() && (s.charAt(0) == '+' || s.charAt(0) == '-') ? 1 : 0;
                return s.substring(0, sign) + "0".repeat((int) (width - n)) + s.substring(sign);
            }
            case "partition", "rpartition" -> {
                String sep = a.str(0, "sep", null);
                if (sep == null || sep.isEmpty()) {
                    throw TemplateException.value("empty separator");
                }
                int i = name.equals("partition") ? s.indexOf(sep) : s.lastIndexOf(sep);
                if (i < 0) {
                    return name.equals("partition") ? new PyTuple(List.of(s, "", "")) : new PyTuple(List.of("", "", s));
                }
                return new PyTuple(List.of(s.substring(0, i), sep, s.substring(i + sep.length())));
            }
            case "removeprefix" -> {
                String p = a.str(0, "prefix", "");
                return s.startsWith(p) ? s.substring(p.length()) : s;
            }
            case "removesuffix" -> {
                String p = a.str(0, "suffix", "");
                return !p.isEmpty() && s.endsWith(p) ? s.substring(0, s.length() - p.length()) : s;
            }
            case "isdigit", "isdecimal", "isnumeric" -> {
                return !s.isEmpty() && s.codePoints().allMatch(Character::isDigit);
            }
            case "isalpha" -> {
                return !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
            }
            case "isalnum" -> {
                return !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit);
            }
            case "isspace" -> {
                return !s.isEmpty() && s.codePoints().allMatch(PyStrings::isSpace);
            }
            case "isascii" -> {
                return s.chars().allMatch(c -> c < 128);
            }
            case "islower", "isupper" -> {
                boolean cased = false;
                for (int c : s.codePoints().toArray()) {
                    if (Character.isUpperCase(c) || Character.isTitleCase(c)) {
                        if (name.equals("islower")) {
                            return false;
                        }
                        cased = true;
                    } else if (Character.isLowerCase(c)) {
                        if (name.equals("isupper")) {
                            return false;
                        }
                        cased = true;
                    }
                }
                return cased;
            }
            case "istitle" -> {
                return !s.isEmpty() && PyStrings.title(s).equals(s) && s.codePoints().anyMatch(Character::isLetter);
            }
            case "expandtabs" -> {
                long size = a.integer(0, "tabsize", 8);
                StringBuilder b = new StringBuilder();
                int col = 0;
                for (int c : s.codePoints().toArray()) {
                    if (c == '\t') {
                        long n = size <= 0 ? 0 : size - col % size;
                        in.checkSize(b.length() + n);
                        b.append(" ".repeat((int) n));
                        col += (int) n;
                    } else {
                        b.appendCodePoint(c);
                        col = c == '\n' || c == '\r' ? 0 : col + 1;
                    }
                    in.checkSize(b.length());
                }
                return b.toString();
            }
            default -> throw TemplateException.unsupported("str." + name + "()");
        }
    }

    /** The part of {@code s} between the optional start/end arguments 1 and 2 (code point indexes). */
    private static String range(String s, Methods.Args a) {
        int n = PyStrings.length(s);
        Object st = a.get(1, "start", null);
        Object en = a.get(2, "end", null);
        int from = st == null ? 0 : clamp(PyOps.toLong(st), n);
        int to = en == null ? n : clamp(PyOps.toLong(en), n);
        if (from >= to) {
            return from > n ? "\u0000" : "";
        }
        return s.substring(s.offsetByCodePoints(0, from), s.offsetByCodePoints(0, to));
    }

    private static int clamp(long i, int n) {
        long j = i < 0 ? Math.max(0, i + n) : Math.min(i, n);
        return (int) j;
    }

    private static Object search(String s, String name, Methods.Args a) {
        String sub = a.str(0, "sub", null);
        if (sub == null) {
            throw TemplateException.type(name + "() missing required argument 'sub'");
        }
        int n = PyStrings.length(s);
        int from = a.get(1, "start", null) == null ? 0 : clamp(PyOps.toLong(a.get(1, "start", null)), n);
        int to = a.get(2, "end", null) == null ? n : clamp(PyOps.toLong(a.get(2, "end", null)), n);
        if (from > to) {
            return name.equals("count") ? 0L : notFound(name);
        }
        String part = s.substring(s.offsetByCodePoints(0, from), s.offsetByCodePoints(0, to));
        if (name.equals("count")) {
            if (sub.isEmpty()) {
                return (long) PyStrings.length(part) + 1;
            }
            long c = 0;
            for (int i = part.indexOf(sub); i >= 0; i = part.indexOf(sub, i + sub.length())) {
                c++;
            }
            return c;
        }
        int i = name.startsWith("r") ? part.lastIndexOf(sub) : part.indexOf(sub);
        if (i < 0) {
            return notFound(name);
        }
        return (long) (from + part.codePointCount(0, i));
    }

    private static Object notFound(String name) {
        if (name.endsWith("index")) {
            throw TemplateException.value("substring not found");
        }
        return -1L;
    }

    private static String replace(Interpreter in, String s, String old, String rep, long count) {
        if (old.isEmpty()) {
            List<String> parts = new ArrayList<>();
            s.codePoints().forEach(c -> parts.add(Character.toString(c)));
            StringBuilder b = new StringBuilder();
            long done = 0;
            for (String p : parts) {
                if (count < 0 || done < count) {
                    b.append(rep);
                    done++;
                }
                b.append(p);
                in.checkSize(b.length());
            }
            if (count < 0 || done < count) {
                b.append(rep);
            }
            return b.toString();
        }
        StringBuilder b = new StringBuilder();
        int i = 0;
        long done = 0;
        while (count < 0 || done < count) {
            int j = s.indexOf(old, i);
            if (j < 0) {
                break;
            }
            b.append(s, i, j).append(rep);
            in.checkSize(b.length());
            i = j + old.length();
            done++;
        }
        return b.append(s.substring(i)).toString();
    }
}
