package io.moestream.runtime.chat;

import java.util.List;
import java.util.Map;

/** jinja2 3.1's builtin tests ({@code x is defined}, {@code x is string}, ...). */
final class Tests {

    private Tests() {
    }

    static boolean apply(Interpreter in, String name, Object v, List<Object> pos, Map<String, Object> kw) {
        Methods.Args a = new Methods.Args(name, pos, kw);
        return switch (name) {
            case "defined" -> !(v instanceof Undefined);
            case "undefined" -> v instanceof Undefined;
            case "none" -> v == null;
            case "boolean" -> v instanceof Boolean;
            case "true" -> Boolean.TRUE.equals(v);
            case "false" -> Boolean.FALSE.equals(v);
            case "integer" -> v instanceof Long;
            case "float" -> v instanceof Double;
            case "number" -> PyOps.isNumber(v);
            case "string" -> PyOps.isStr(v);
            case "mapping" -> v instanceof Map;
            case "sequence" -> PyOps.isStr(v) || v instanceof List || v instanceof PyTuple || v instanceof Map
                    || v instanceof Undefined || v instanceof PyRange;
            case "iterable" -> PyOps.isIterable(v);
            case "callable" -> v instanceof PyCallable || v instanceof Undefined;
            case "escaped" -> v instanceof Markup;
            case "lower" -> {
                String s = PyOps.str(v);
                yield (Boolean) StrMethods.call(in, s, "islower", a);
            }
            case "upper" -> {
                String s = PyOps.str(v);
                yield (Boolean) StrMethods.call(in, s, "isupper", a);
            }
            case "odd", "even" -> {
                if (!(v instanceof Long || v instanceof Boolean)) {
                    throw TemplateException.type("unsupported operand type(s) for %: '" + PyOps.typeName(v)
                            + "' and 'int'");
                }
                yield (Math.floorMod(PyOps.toLong(v), 2L) == 1) == name.equals("odd");
            }
            case "divisibleby" -> {
                Object r = PyArith.binary("%", v, a.required(0, "num"), in.maxSize());
                yield PyOps.eq(r, 0L);
            }
            case "sameas" -> {
                // Python's "is": equal strings and small ints are the same interned objects
                Object o = a.required(0, "other");
                yield v == o || (v instanceof Boolean && v.equals(o)) || (v instanceof String && v.equals(o))
                        || (v instanceof Long l && o instanceof Long && l.equals(o) && l >= -5 && l <= 256);
            }
            case "in" -> PyOps.contains(a.required(0, "seq"), v);
            case "eq", "equalto", "==" -> PyOps.eq(v, a.required(0, "other"));
            case "ne", "!=" -> !PyOps.eq(v, a.required(0, "other"));
            case "lt", "lessthan", "<" -> PyOps.compare(v, a.required(0, "other"), "<") < 0;
            case "le", "<=" -> PyOps.compare(v, a.required(0, "other"), "<=") <= 0;
            case "gt", "greaterthan", ">" -> PyOps.compare(v, a.required(0, "other"), ">") > 0;
            case "ge", ">=" -> PyOps.compare(v, a.required(0, "other"), ">=") >= 0;
            case "filter" -> PyOps.isStr(v) && Filters.exists(PyOps.str(v));
            case "test" -> PyOps.isStr(v) && exists(PyOps.str(v));
            default -> throw new TemplateException("TemplateRuntimeError", "No test named '" + name + "'.");
        };
    }

    static boolean exists(String name) {
        return List.of("defined", "undefined", "none", "boolean", "true", "false", "integer", "float", "number",
                "string", "mapping", "sequence", "iterable", "callable", "escaped", "lower", "upper", "odd", "even",
                "divisibleby", "sameas", "in", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=",
                "gt", "greaterthan", ">", "ge", ">=", "filter", "test").contains(name);
    }
}
