package io.moestream.runtime.chat;

/**
 * jinja2's default {@code Undefined}: prints as {@code ""}, iterates as empty, is falsy and has length
 * 0; attribute or item access, arithmetic, ordering and calling raise. An attribute the sandbox
 * refuses is an Undefined that raises {@code SecurityError} instead.
 */
final class Undefined {

    private final String message;
    private final boolean security;

    private Undefined(String message, boolean security) {
        this.message = message;
        this.security = security;
    }

    static Undefined named(String name) {
        return new Undefined("'" + name + "' is undefined", false);
    }

    static Undefined missing(Object obj, Object key) {
        String k = key instanceof String s ? "attribute '" + s + "'" : "element " + PyOps.repr(key);
        return new Undefined("'" + PyOps.typeName(obj) + " object' has no " + k, false);
    }

    static Undefined hint(String message) {
        return new Undefined(message, false);
    }

    static Undefined unsafe(Object obj, String attr) {
        return new Undefined("access to attribute '" + attr + "' of '" + PyOps.typeName(obj)
                + "' object is unsafe.", true);
    }

    TemplateException error() {
        return new TemplateException(security ? "SecurityError" : "UndefinedError", message);
    }

    @Override
    public String toString() {
        return "Undefined";
    }
}
