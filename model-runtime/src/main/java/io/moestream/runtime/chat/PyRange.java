package io.moestream.runtime.chat;

import java.util.ArrayList;
import java.util.List;

/** Python's {@code range} (from the {@code range()} global): a lazy sequence of at most MAX_RANGE ints. */
record PyRange(long start, long stop, long step) {

    long length() {
        if (step > 0) {
            return stop > start ? (stop - start + step - 1) / step : 0;
        }
        return start > stop ? (start - stop - step - 1) / -step : 0;
    }

    List<Object> toList() {
        long n = length();
        List<Object> out = new ArrayList<>((int) n);
        for (long i = 0; i < n; i++) {
            out.add(start + i * step);
        }
        return out;
    }

    @Override
    public String toString() {
        return "range(" + start + ", " + stop + (step == 1 ? "" : ", " + step) + ")";
    }
}
