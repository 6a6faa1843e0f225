package io.moestream.runtime.chat;

import java.util.List;

/** A Python tuple (from {@code (a, b)}, {@code dict.items()}, {@code groupby}): immutable. */
record PyTuple(List<Object> items) {
    PyTuple {
        items = java.util.Collections.unmodifiableList(new java.util.ArrayList<>(items));
    }
}
