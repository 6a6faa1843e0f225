package io.moestream.runtime.chat;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A {@code {% macro %}} (or a call block's {@code caller}) bound to the scope it was defined in. */
final class Macro implements PyCallable {

    private final Node.MacroDef def;
    private final Scope defined;

    Macro(Node.MacroDef def, Scope defined) {
        this.def = def;
        this.defined = defined;
    }

    /** jinja2's Macro.__call__: positional, then keyword, then defaults; extras to varargs/kwargs. */
    @Override
    public Object call(Interpreter in, List<Object> args, Map<String, Object> kwargs) {
        List<String> params = def.params();
        Map<String, Object> kw = new LinkedHashMap<>(kwargs);
        Scope s = new Scope(defined);
        Object[] values = new Object[params.size()];
        for (int i = 0; i < params.size(); i++) {
            if (i < args.size()) {
                values[i] = args.get(i);
            } else if (kw.containsKey(params.get(i))) {
                values[i] = kw.remove(params.get(i));
            } else {
                values[i] = PyOps.MISSING;
            }
        }
        if (def.usesCaller() && !params.contains("caller")) {
            Object caller = kw.remove("caller");
            s.set("caller", caller == null ? Undefined.hint("No caller defined") : caller);
        }
        if (def.catchKwargs()) {
            s.set("kwargs", new LinkedHashMap<Object, Object>(kw));
        } else if (!kw.isEmpty()) {
            throw TemplateException.type("macro '" + def.name() + "' takes no keyword argument '"
                    + kw.keySet().iterator().next() + "'");
        }
        if (def.catchVarargs()) {
            s.set("varargs", new PyTuple(args.size() > params.size() ? args.subList(params.size(), args.size())
                    : new ArrayList<>()));
        } else if (args.size() > params.size()) {
            throw TemplateException.type("macro '" + def.name() + "' takes not more than " + params.size()
                    + " argument(s)");
        }
        return in.invokeMacro(def, s, values);
    }

    @Override
    public String typeName() {
        return "Macro";
    }

    /** jinja2's public Macro attributes. */
    Object attr(String name) {
        return switch (name) {
            case "name" -> def.name();
            case "arguments" -> new PyTuple(new ArrayList<Object>(def.params()));
            case "catch_kwargs" -> def.catchKwargs();
            case "catch_varargs" -> def.catchVarargs();
            case "caller" -> def.usesCaller();
            default -> PyOps.MISSING;
        };
    }

    @Override
    public String toString() {
        return "<Macro '" + def.name() + "'>";
    }
}
