package io.moestream.runtime.chat;

import java.util.ArrayList;
import java.util.List;

/**
 * A Python generator/iterator as the lazy filters return it ({@code select}, {@code map},
 * {@code reverse}, {@code items}, ...): always truthy, no {@code len()}, and empty once iterated.
 */
final class PyIterator {

    private List<Object> items;

    PyIterator(List<Object> items) {
        this.items = items;
    }

    List<Object> drain() {
        List<Object> out = items;
        items = new ArrayList<>();
        return out;
    }

    @Override
    public String toString() {
        return "<generator object>";
    }
}
