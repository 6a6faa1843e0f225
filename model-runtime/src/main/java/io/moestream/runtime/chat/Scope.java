package io.moestream.runtime.chat;

import java.util.HashMap;
import java.util.Map;

/**
 * A frame of template variables. {@code set} writes the innermost frame; a {@code for} iteration, a
 * macro call and a {@code with} body each get a fresh child, so their assignments do not leak out.
 */
final class Scope {

    private final Scope parent;
    private final Map<String, Object> vars = new HashMap<>();

    Scope(Scope parent) {
        this.parent = parent;
    }

    Object get(String name) {
        for (Scope s = this; s != null; s = s.parent) {
            if (s.vars.containsKey(name)) {
                return s.vars.get(name);
            }
        }
        return PyOps.MISSING;
    }

    void set(String name, Object value) {
        vars.put(name, value);
    }
}
