package io.moestream.runtime.chat;

/**
 * markupsafe's {@code Markup} (from {@code |safe} and {@code |escape}): a string that is printed
 * as is, and that HTML-escapes plain strings combined with it by {@code +}, {@code %} and
 * {@code join}, as Python does even with autoescape off.
 */
record Markup(String text) {

    static String escape(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> b.append("&amp;");
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '"' -> b.append("&#34;");
                case '\'' -> b.append("&#39;");
                default -> b.append(c);
            }
        }
        return b.toString();
    }

    /** markupsafe.escape: Markup stays, anything else is str()-ed and escaped. */
    static Markup escapeValue(Object v) {
        return v instanceof Markup m ? m : new Markup(escape(PyOps.str(v)));
    }

    @Override
    public String toString() {
        return text;
    }
}
