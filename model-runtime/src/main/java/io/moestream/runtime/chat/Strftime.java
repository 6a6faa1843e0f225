package io.moestream.runtime.chat;

import java.time.LocalDateTime;
import java.time.format.TextStyle;
import java.util.Locale;

/** Python's {@code datetime.strftime} in the C locale, for {@code strftime_now}. */
final class Strftime {

    private Strftime() {
    }

    static String format(LocalDateTime t, String fmt) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < fmt.length(); i++) {
            char c = fmt.charAt(i);
            if (c != '%' || i + 1 >= fmt.length()) {
                b.append(c);
                continue;
            }
            char f = fmt.charAt(++i);
            boolean noPad = false;
            if (f == '-' && i + 1 < fmt.length()) {
                noPad = true;
                f = fmt.charAt(++i);
            }
            b.append(field(t, f, noPad));
        }
        return b.toString();
    }

    private static String field(LocalDateTime t, char f, boolean noPad) {
        return switch (f) {
            case 'Y' -> String.valueOf(t.getYear());
            case 'y' -> num(t.getYear() % 100, 2, noPad);
            case 'm' -> num(t.getMonthValue(), 2, noPad);
            case 'd' -> num(t.getDayOfMonth(), 2, noPad);
            case 'e' -> noPad ? String.valueOf(t.getDayOfMonth()) : String.format("%2d", t.getDayOfMonth());
            case 'H' -> num(t.getHour(), 2, noPad);
            case 'I' -> num(t.getHour() % 12 == 0 ? 12 : t.getHour() % 12, 2, noPad);
            case 'M' -> num(t.getMinute(), 2, noPad);
            case 'S' -> num(t.getSecond(), 2, noPad);
            case 'f' -> String.format("%06d", t.getNano() / 1000);
            case 'j' -> num(t.getDayOfYear(), 3, noPad);
            case 'p' -> t.getHour() < 12 ? "AM" : "PM";
            case 'b', 'h' -> t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH);
            case 'B' -> t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH);
            case 'a' -> t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH);
            case 'A' -> t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH);
            case 'w' -> String.valueOf(t.getDayOfWeek().getValue() % 7);
            case 'u' -> String.valueOf(t.getDayOfWeek().getValue());
            case 'D' -> field(t, 'm', false) + "/" + field(t, 'd', false) + "/" + field(t, 'y', false);
            case 'F' -> field(t, 'Y', false) + "-" + field(t, 'm', false) + "-" + field(t, 'd', false);
            case 'T' -> field(t, 'H', false) + ":" + field(t, 'M', false) + ":" + field(t, 'S', false);
            case 'R' -> field(t, 'H', false) + ":" + field(t, 'M', false);
            case 'c' -> field(t, 'a', false) + " " + field(t, 'b', false) + " " + field(t, 'e', false) + " "
                    + field(t, 'T', false) + " " + field(t, 'Y', false);
            case 'x' -> field(t, 'D', false);
            case 'X' -> field(t, 'T', false);
            case 'z', 'Z' -> "";
            case 'n' -> "\n";
            case 't' -> "\t";
            case '%' -> "%";
            default -> "%" + f;
        };
    }

    private static String num(int v, int width, boolean noPad) {
        String s = String.valueOf(v);
        return noPad || s.length() >= width ? s : "0".repeat(width - s.length()) + s;
    }
}
