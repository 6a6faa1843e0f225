package io.moestream.runtime.chat;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A Python tuple (from {@code (a, b)}, {@code dict.items()}, ...): immutable. {@code names} makes it
 * a named tuple ({@code groupby}'s {@code grouper}/{@code list}); null for a plain one.
 */
record PyTuple(List<Object> items, List<String> names) {

    PyTuple {
        items = Collections.unmodifiableList(new ArrayList<>(items));
    }

    PyTuple(List<Object> items) {
        this(items, null);
    }

    /** The field of a named tuple, or MISSING. */
    Object field(String name) {
        int i = names == null ? -1 : names.indexOf(name);
        return i < 0 ? PyOps.MISSING : items.get(i);
    }
}
