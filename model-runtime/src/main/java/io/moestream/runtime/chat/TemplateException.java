package io.moestream.runtime.chat;

/**
 * A chat template failed to parse or render. {@link #kind()} names the Python/jinja2 exception the
 * same template raises under jinja2 ({@code TemplateSyntaxError}, {@code UndefinedError},
 * {@code TypeError}, {@code SecurityError}, {@code TemplateError} from {@code raise_exception}, ...)
 * or {@code LimitExceeded} when a render limit stops it; the message reads {@code "Kind: detail"}.
 */
public final class TemplateException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String kind;

    TemplateException(String kind, String detail) {
        super(kind + ": " + detail, null, false, false);
        this.kind = kind;
    }

    /** The Python-side exception type name, e.g. {@code "UndefinedError"}. */
    public String kind() {
        return kind;
    }

    static TemplateException syntax(String detail, int line) {
        return new TemplateException("TemplateSyntaxError", detail + " (line " + line + ")");
    }

    static TemplateException type(String detail) {
        return new TemplateException("TypeError", detail);
    }

    static TemplateException value(String detail) {
        return new TemplateException("ValueError", detail);
    }

    static TemplateException runtime(String detail) {
        return new TemplateException("TemplateRuntimeError", detail);
    }

    static TemplateException security(String detail) {
        return new TemplateException("SecurityError", detail);
    }

    static TemplateException limit(String detail) {
        return new TemplateException("LimitExceeded", detail);
    }

    static TemplateException unsupported(String construct) {
        return new TemplateException("Unsupported", construct + " is not supported by this renderer");
    }
}
