package io.moestream.runtime.chat;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * A Python generator as the lazy filters return it ({@code select}, {@code map}, {@code reverse},
 * {@code items}, ...): computed when first iterated (its errors surface then), always truthy, no
 * {@code len()}, and empty once iterated.
 */
final class PyIterator {

    private Supplier<List<Object>> items;

    PyIterator(Supplier<List<Object>> items) {
        this.items = items;
    }

    static PyIterator of(List<Object> items) {
        return new PyIterator(() -> items);
    }

    List<Object> drain() {
        Supplier<List<Object>> s = items;
        items = ArrayList::new;
        return s.get();
    }

    @Override
    public String toString() {
        return "<generator object>";
    }
}
