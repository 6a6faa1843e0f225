package io.moestream.runtime.chat;

import java.util.List;
import java.util.Map;

/** jinja2's {@code loop} variable; calling it re-runs a {@code recursive} loop on new items. */
final class LoopContext implements PyCallable {

    /** Renders the loop body over new items one level deeper; null when the loop is not recursive. */
    interface Recurse {
        String render(Object items, int depth);
    }

    private final List<Object> items;
    private final int depth;
    private final Recurse recurse;
    int index0 = -1;
    private Object lastChanged = PyOps.MISSING;

    LoopContext(List<Object> items, int depth, Recurse recurse) {
        this.items = items;
        this.depth = depth;
        this.recurse = recurse;
    }

    Object attr(String name) {
        int n = items.size();
        return switch (name) {
            case "index" -> (long) index0 + 1;
            case "index0" -> (long) index0;
            case "revindex" -> (long) (n - index0);
            case "revindex0" -> (long) (n - index0 - 1);
            case "first" -> index0 == 0;
            case "last" -> index0 == n - 1;
            case "length" -> (long) n;
            case "depth" -> (long) depth;
            case "depth0" -> (long) depth - 1;
            case "previtem" -> index0 > 0 ? items.get(index0 - 1) : Undefined.hint("there is no previous item");
            case "nextitem" -> index0 + 1 < n ? items.get(index0 + 1) : Undefined.hint("there is no next item");
            case "cycle" -> (PyCallable) (in, args, kw) -> {
                if (args.isEmpty()) {
                    throw TemplateException.type("no items for cycling given");
                }
                return args.get(index0 % args.size());
            };
            case "changed" -> (PyCallable) (in, args, kw) -> {
                Object now = new PyTuple(args);
                if (lastChanged != PyOps.MISSING && PyOps.eq(lastChanged, now)) {
                    return false;
                }
                lastChanged = now;
                return true;
            };
            default -> PyOps.MISSING;
        };
    }

    @Override
    public Object call(Interpreter in, List<Object> args, Map<String, Object> kwargs) {
        if (recurse == null) {
            throw TemplateException.type("The loop must have the 'recursive' marker to be called recursively.");
        }
        if (args.size() != 1) {
            throw TemplateException.type("loop() takes exactly one argument");
        }
        return recurse.render(args.get(0), depth + 1);
    }

    @Override
    public String typeName() {
        return "LoopContext";
    }

    @Override
    public String toString() {
        return "<LoopContext " + (index0 + 1) + "/" + items.size() + ">";
    }
}
