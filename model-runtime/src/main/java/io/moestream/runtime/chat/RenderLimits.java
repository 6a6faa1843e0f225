package io.moestream.runtime.chat;

/**
 * Bounds on what one render of an untrusted template may do; past any of them the render fails with
 * a {@link TemplateException} of kind {@code LimitExceeded}.
 *
 * @param maxSteps loop iterations plus calls (macros, methods, globals) over the whole render
 * @param maxWork work units over the whole render: an element, or 16 characters, that a filter,
 *     method, operator or comparison goes through (bounds CPU time where one step does a lot, like
 *     sorting a long list)
 * @param maxDepth nesting of macro calls, call blocks and recursive loops
 * @param maxOutputChars characters of output, and of any one string or list a template builds
 * @param maxNesting nesting of the template's own syntax (blocks and parentheses), checked at parse
 */
public record RenderLimits(long maxSteps, long maxWork, int maxDepth, int maxOutputChars, int maxNesting) {

    /** Generous for real chat templates: a long conversation renders a few MiB in well under a second. */
    public static final RenderLimits DEFAULT = new RenderLimits(1_000_000, 100_000_000, 64, 16 << 20, 128);

    public RenderLimits {
        if (maxSteps <= 0 || maxWork <= 0 || maxDepth <= 0 || maxOutputChars <= 0 || maxNesting <= 0) {
            throw new IllegalArgumentException("render limits must be positive");
        }
    }
}
