package io.moestream.runtime.chat;

/**
 * Scanners for jinja2's number and string literals, written out instead of regular expressions so
 * that a hostile template (a 16 MiB literal) lexes in linear time and constant stack.
 */
final class Literals {

    private Literals() {
    }

    /** jinja2's float_re at {@code pos}: the end of the literal, or -1. Never right after a dot. */
    static int scanFloat(String s, int pos) {
        if (pos > 0 && s.charAt(pos - 1) == '.') {
            return -1;
        }
        int i = digits(s, pos);
        if (i < 0) {
            return -1;
        }
        int afterFraction = i < s.length() && s.charAt(i) == '.' ? digits(s, i + 1) : -1;
        int e = exponent(s, afterFraction >= 0 ? afterFraction : i);
        if (e >= 0) {
            return e;
        }
        return afterFraction;
    }

    /** jinja2's integer_re at {@code pos} (binary, octal, hex, decimal, zero; first that matches). */
    static int scanInteger(String s, int pos) {
        if (pos >= s.length() || !isDigit(s.charAt(pos))) {
            return -1;
        }
        if (s.charAt(pos) == '0' && pos + 1 < s.length()) {
            char p = Character.toLowerCase(s.charAt(pos + 1));
            String alphabet = p == 'b' ? "01" : p == 'o' ? "01234567" : p == 'x' ? "0123456789abcdef" : null;
            if (alphabet != null) {
                int end = prefixed(s, pos + 2, alphabet);
                if (end >= 0) {
                    return end;
                }
            }
        }
        int end = prefixed(s, pos + 1, s.charAt(pos) == '0' ? "0" : "0123456789");
        return end < 0 ? pos + 1 : end;
    }

    /** A quoted string at {@code pos} (backslash escapes any character): its end, or -1 if unterminated. */
    static int scanString(String s, int pos) {
        char q = s.charAt(pos);
        int i = pos + 1;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c == '\\') {
                i += 2;
            } else if (c == q) {
                return i + 1;
            } else {
                i++;
            }
        }
        return -1;
    }

    /** {@code (\d+_)*\d+}: digits, single underscores between them. */
    private static int digits(String s, int pos) {
        if (pos >= s.length() || !isDigit(s.charAt(pos))) {
            return -1;
        }
        int i = pos + 1;
        while (i < s.length()) {
            if (isDigit(s.charAt(i))) {
                i++;
            } else if (s.charAt(i) == '_' && i + 1 < s.length() && isDigit(s.charAt(i + 1))) {
                i += 2;
            } else {
                break;
            }
        }
        return i;
    }

    private static int exponent(String s, int pos) {
        if (pos >= s.length() || (s.charAt(pos) != 'e' && s.charAt(pos) != 'E')) {
            return -1;
        }
        int i = pos + 1;
        if (i < s.length() && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
            i++;
        }
        return digits(s, i);
    }

    /** {@code (_?[alphabet])+} from {@code pos}: the end, or -1 when not even one digit follows. */
    private static int prefixed(String s, int pos, String alphabet) {
        int i = pos;
        int end = -1;
        while (true) {
            int j = i < s.length() && s.charAt(i) == '_' ? i + 1 : i;
            if (j < s.length() && alphabet.indexOf(Character.toLowerCase(s.charAt(j))) >= 0) {
                i = j + 1;
                end = i;
            } else {
                return end;
            }
        }
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }
}
