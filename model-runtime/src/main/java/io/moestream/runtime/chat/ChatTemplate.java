package io.moestream.runtime.chat;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * A model's chat template (the Jinja2 text of {@code tokenizer.chat_template}), parsed once and
 * rendered as Hugging Face transformers' {@code apply_chat_template} renders it with jinja2 3.1:
 * {@code ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)}, loop controls, the
 * {@code generation} tag, {@code tojson} as Python's {@code json.dumps}, {@code raise_exception} and
 * {@code strftime_now}.
 *
 * <p>A template is untrusted input: it reaches only the renderer's value model (no Java object, no
 * reflection), cannot mutate the values it is given, and runs within {@link RenderLimits}. A parsed
 * template is immutable; renders may run concurrently.
 *
 * <pre>{@code
 * ChatTemplate t = ChatTemplate.parse(ggufChatTemplate);
 * String prompt = t.render(Map.of("messages", messages, "add_generation_prompt", true,
 *         "eos_token", "<|im_end|>"));
 * }</pre>
 */
public final class ChatTemplate {

    private final List<Node.Stmt> body;
    private final RenderLimits limits;
    private final Supplier<LocalDateTime> clock;

    private ChatTemplate(List<Node.Stmt> body, RenderLimits limits, Supplier<LocalDateTime> clock) {
        this.body = body;
        this.limits = limits;
        this.clock = clock;
    }

    /** Parses with the default limits and the system clock for {@code strftime_now}. */
    public static ChatTemplate parse(String source) {
        return parse(source, RenderLimits.DEFAULT, LocalDateTime::now);
    }

    /**
     * @param clock what {@code strftime_now} formats (a fixed time makes renders reproducible)
     * @throws TemplateException {@code TemplateSyntaxError} when the source is not a valid template
     */
    public static ChatTemplate parse(String source, RenderLimits limits, Supplier<LocalDateTime> clock) {
        try {
            return new ChatTemplate(Parser.parse(source, limits.maxNesting()), limits, clock);
        } catch (StackOverflowError e) {
            throw TemplateException.limit("template nested too deeply to parse");
        }
    }

    /**
     * Renders with the given variables (Java strings, numbers, booleans, null, lists and maps; maps
     * keep their iteration order, as JSON objects do in Python).
     *
     * @throws TemplateException on any error jinja2 would raise, or past a limit
     * @throws IllegalArgumentException when a variable holds another kind of Java object
     */
    public String render(Map<String, ?> variables) {
        Scope globals = new Scope(null);
        Globals.create(clock.get()).forEach(globals::set);
        Scope context = new Scope(globals);
        try {
            variables.forEach((k, v) -> context.set(k, toValue(v)));
            return new Interpreter(limits).render(body, new Scope(context));
        } catch (StackOverflowError e) {
            throw TemplateException.limit("render nested too deeply");
        } catch (TemplateException | IllegalArgumentException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new TemplateException("InternalError", "renderer failed on this template: " + e);
        }
    }

    /**
     * Renders a conversation as {@code apply_chat_template} calls the template: {@code messages},
     * {@code tools} (null when none), {@code documents} (null), {@code add_generation_prompt}, then
     * the model's special tokens ({@code bos_token}, {@code eos_token}; absent ones stay undefined),
     * then the extra template arguments ({@code enable_thinking}, {@code reasoning_effort}, ...).
     */
    public String renderConversation(List<?> messages, List<?> tools, boolean addGenerationPrompt,
            Map<String, String> specialTokens, Map<String, ?> kwargs) {
        Map<String, Object> vars = new LinkedHashMap<>();
        vars.put("messages", messages);
        vars.put("tools", tools);
        vars.put("documents", null);
        vars.put("add_generation_prompt", addGenerationPrompt);
        vars.putAll(specialTokens);
        vars.putAll(kwargs);
        return render(vars);
    }

    /** Copies a Java value into the template value model (ints widen to long, floats to double). */
    static Object toValue(Object v) {
        if (v == null || v instanceof String || v instanceof Boolean || v instanceof Long || v instanceof Double) {
            return v;
        }
        if (v instanceof Integer || v instanceof Short || v instanceof Byte) {
            return ((Number) v).longValue();
        }
        if (v instanceof Float f) {
            return Double.parseDouble(f.toString());
        }
        if (v instanceof BigInteger b) {
            if (b.bitLength() > 63) {
                throw new IllegalArgumentException("integer beyond 64 bits: " + b);
            }
            return b.longValue();
        }
        if (v instanceof BigDecimal d) {
            return d.doubleValue();
        }
        if (v instanceof CharSequence s) {
            return s.toString();
        }
        if (v instanceof Map<?, ?> m) {
            Map<Object, Object> out = new LinkedHashMap<>();
            m.forEach((k, x) -> out.put(toValue(k), toValue(x)));
            return out;
        }
        if (v instanceof Collection<?> c) {
            List<Object> out = new ArrayList<>(c.size());
            c.forEach(x -> out.add(toValue(x)));
            return out;
        }
        throw new IllegalArgumentException("a template variable cannot hold a " + v.getClass().getName());
    }
}
