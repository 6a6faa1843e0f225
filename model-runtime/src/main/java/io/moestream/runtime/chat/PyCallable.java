package io.moestream.runtime.chat;

import java.util.List;
import java.util.Map;

/** Something a template may call: a macro, a global, a bound method of a value, {@code loop}. */
interface PyCallable {

    Object call(Interpreter in, List<Object> args, Map<String, Object> kwargs);

    /** Python's type name, for error messages. */
    default String typeName() {
        return "function";
    }
}
