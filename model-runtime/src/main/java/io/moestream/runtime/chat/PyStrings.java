package io.moestream.runtime.chat;

import java.util.ArrayList;
import java.util.List;

/** Python 3 {@code str} semantics over Java strings: whitespace, strip, split, literals, repr. */
final class PyStrings {

    private PyStrings() {
    }

    /** Python's {@code str.isspace()} for one character. */
    static boolean isSpace(int c) {
        return switch (c) {
            case ' ', '\t', '\n', 0x0b, '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0, 0x1680, 0x2028, 0x2029,
                    0x202f, 0x205f, 0x3000 -> true;
            default -> c >= 0x2000 && c <= 0x200a;
        };
    }

    static int length(String s) {
        return s.codePointCount(0, s.length());
    }

    static String strip(String s, String chars) {
        return lstrip(rstrip(s, chars), chars);
    }

    static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length()) {
            int c = s.codePointAt(i);
            if (!stripped(c, chars)) {
                break;
            }
            i += Character.charCount(c);
        }
        return s.substring(i);
    }

    static String rstrip(String s, String chars) {
        int e = s.length();
        while (e > 0) {
            int c = s.codePointBefore(e);
            if (!stripped(c, chars)) {
                break;
            }
            e -= Character.charCount(c);
        }
        return s.substring(0, e);
    }

    private static boolean stripped(int c, String chars) {
        return chars == null ? isSpace(c) : chars.indexOf(Character.toString(c)) >= 0;
    }

    /** {@code str.split(sep, maxsplit)}; {@code sep == null} splits on runs of whitespace. */
    static List<Object> split(String s, String sep, long maxsplit) {
        List<Object> out = new ArrayList<>();
        if (sep == null) {
            int i = 0;
            int n = s.length();
            while (true) {
                while (i < n && isSpace(s.charAt(i))) {
                    i++;
                }
                if (i >= n) {
                    return out;
                }
                if (maxsplit >= 0 && out.size() >= maxsplit) {
                    out.add(rstrip(s.substring(i), null));
                    return out;
                }
                int j = i;
                while (j < n && !isSpace(s.charAt(j))) {
                    j++;
                }
                out.add(s.substring(i, j));
                i = j;
            }
        }
        if (sep.isEmpty()) {
            throw TemplateException.value("empty separator");
        }
        int i = 0;
        while (maxsplit < 0 || out.size() < maxsplit) {
            int j = s.indexOf(sep, i);
            if (j < 0) {
                break;
            }
            out.add(s.substring(i, j));
            i = j + sep.length();
        }
        out.add(s.substring(i));
        return out;
    }

    /** {@code str.rsplit(sep, maxsplit)}. */
    static List<Object> rsplit(String s, String sep, long maxsplit) {
        if (maxsplit < 0) {
            return split(s, sep, -1);
        }
        List<Object> out = new ArrayList<>();
        if (sep == null) {
            int e = s.length();
            while (true) {
                while (e > 0 && isSpace(s.charAt(e - 1))) {
                    e--;
                }
                if (e <= 0) {
                    break;
                }
                if (out.size() >= maxsplit) {
                    out.add(lstrip(s.substring(0, e), null));
                    break;
                }
                int b = e;
                while (b > 0 && !isSpace(s.charAt(b - 1))) {
                    b--;
                }
                out.add(s.substring(b, e));
                e = b;
            }
        } else {
            if (sep.isEmpty()) {
                throw TemplateException.value("empty separator");
            }
            int e = s.length();
            while (out.size() < maxsplit) {
                int j = s.lastIndexOf(sep, e - sep.length());
                if (j < 0 || e - sep.length() < 0) {
                    break;
                }
                out.add(s.substring(j + sep.length(), e));
                e = j;
            }
            out.add(s.substring(0, e));
        }
        java.util.Collections.reverse(out);
        return out;
    }

    static List<Object> splitlines(String s, boolean keepends) {
        List<Object> out = new ArrayList<>();
        int i = 0;
        int start = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            int eol = 0;
            if (c == '\r' && i + 1 < s.length() && s.charAt(i + 1) == '\n') {
                eol = 2;
            } else if (c == '\n' || c == '\r' || c == 0x0b || c == '\f' || c == 0x1c || c == 0x1d || c == 0x1e
                    || c == 0x85 || c == 0x2028 || c == 0x2029) {
                eol = 1;
            }
            if (eol > 0) {
                out.add(s.substring(start, keepends ? i + eol : i));
                i += eol;
                start = i;
            } else {
                i++;
            }
        }
        if (start < s.length()) {
            out.add(s.substring(start));
        }
        return out;
    }

    /** Python's {@code str.title()}: a cased character after an uncased one is titlecased. */
    static String title(String s) {
        StringBuilder b = new StringBuilder(s.length());
        boolean prevCased = false;
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            i += Character.charCount(c);
            if (prevCased) {
                b.append(Character.toString(c).toLowerCase(java.util.Locale.ROOT));
            } else {
                b.appendCodePoint(Character.toTitleCase(c));
            }
            prevCased = Character.isUpperCase(c) || Character.isLowerCase(c) || Character.isTitleCase(c);
        }
        return b.toString();
    }

    static String capitalize(String s) {
        if (s.isEmpty()) {
            return s;
        }
        int c = s.codePointAt(0);
        return Character.toString(Character.toTitleCase(c))
                + s.substring(Character.charCount(c)).toLowerCase(java.util.Locale.ROOT);
    }

    static String upper(String s) {
        return s.toUpperCase(java.util.Locale.ROOT);
    }

    static String lower(String s) {
        return s.toLowerCase(java.util.Locale.ROOT);
    }

    /** Python's {@code repr(str)}: single quotes unless the text has one and no double quote. */
    static String repr(String s) {
        char q = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        StringBuilder b = new StringBuilder(s.length() + 2).append(q);
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            i += Character.charCount(c);
            if (c == q || c == '\\') {
                b.append('\\').appendCodePoint(c);
            } else if (c == '\n') {
                b.append("\\n");
            } else if (c == '\r') {
                b.append("\\r");
            } else if (c == '\t') {
                b.append("\\t");
            } else if (printable(c)) {
                b.appendCodePoint(c);
            } else if (c < 0x100) {
                b.append(String.format("\\x%02x", c));
            } else if (c < 0x10000) {
                b.append(String.format("\\u%04x", c));
            } else {
                b.append(String.format("\\U%08x", c));
            }
        }
        return b.append(q).toString();
    }

    private static boolean printable(int c) {
        if (c == ' ') {
            return true;
        }
        return switch (Character.getType(c)) {
            case Character.CONTROL, Character.FORMAT, Character.SURROGATE, Character.PRIVATE_USE,
                    Character.UNASSIGNED, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR,
                    Character.SPACE_SEPARATOR -> false;
            default -> true;
        };
    }

    /** Decodes a string literal's body as jinja2 does (Python {@code unicode-escape}). */
    static String unescapeLiteral(String s) {
        if (s.indexOf('\\') < 0) {
            return s;
        }
        StringBuilder b = new StringBuilder(s.length());
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i++);
            if (c != '\\' || i >= s.length()) {
                b.append(c);
                continue;
            }
            char e = s.charAt(i++);
            switch (e) {
                case '\n' -> { }
                case '\\', '\'', '"' -> b.append(e);
                case 'a' -> b.append('\u0007');
                case 'b' -> b.append('\b');
                case 'f' -> b.append('\f');
                case 'n' -> b.append('\n');
                case 'r' -> b.append('\r');
                case 't' -> b.append('\t');
                case 'v' -> b.append('\u000b');
                case 'x' -> i = hex(s, i, 2, b);
                case 'u' -> i = hex(s, i, 4, b);
                case 'U' -> i = hex(s, i, 8, b);
                case 'N' -> {
                    int close = s.indexOf('}', i);
                    if (i >= s.length() || s.charAt(i) != '{' || close < 0) {
                        throw TemplateException.syntax("malformed \\N character escape", 0);
                    }
                    try {
                        b.appendCodePoint(Character.codePointOf(s.substring(i + 1, close)));
                    } catch (IllegalArgumentException ex) {
                        throw TemplateException.syntax("unknown Unicode character name", 0);
                    }
                    i = close + 1;
                }
                default -> {
                    if (e >= '0' && e <= '7') {
                        int v = e - '0';
                        int n = 1;
                        while (n < 3 && i < s.length() && s.charAt(i) >= '0' && s.charAt(i) <= '7') {
                            v = v * 8 + (s.charAt(i++) - '0');
                            n++;
                        }
                        b.appendCodePoint(v);
                    } else {
                        b.append('\\').append(e);
                    }
                }
            }
        }
        return b.toString();
    }

    private static int hex(String s, int i, int n, StringBuilder b) {
        if (i + n > s.length()) {
            throw TemplateException.syntax("truncated \\x escape", 0);
        }
        try {
            int v = Integer.parseUnsignedInt(s.substring(i, i + n), 16);
            b.appendCodePoint(v);
        } catch (IllegalArgumentException ex) {
            throw TemplateException.syntax("truncated escape in string literal", 0);
        }
        return i + n;
    }
}
