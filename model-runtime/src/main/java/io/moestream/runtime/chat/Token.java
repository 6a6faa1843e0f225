package io.moestream.runtime.chat;

/** One lexical token of a template; {@code value} is the decoded text (string literals unescaped). */
record Token(Type type, String value, int line) {

    enum Type { DATA, VAR_BEGIN, VAR_END, BLOCK_BEGIN, BLOCK_END, NAME, STRING, INTEGER, FLOAT, OP, EOF }

    boolean is(Type t, String v) {
        return type == t && value.equals(v);
    }

    boolean isName(String v) {
        return is(Type.NAME, v);
    }

    boolean isOp(String v) {
        return is(Type.OP, v);
    }

    String describe() {
        return switch (type) {
            case EOF -> "end of template";
            case BLOCK_END -> "end of statement block";
            case VAR_END -> "end of print statement";
            case DATA -> "template data";
            default -> "'" + value + "'";
        };
    }
}
