package io.moestream.runtime.chat;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.tokenizer.Tokenizer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A model's chat format: its chat template and tokenizer together. {@link #encode} renders a
 * conversation with {@code add_generation_prompt} and the model's BOS/EOS texts, and tokenizes the
 * result with special-token parsing, so {@code <|im_start|>} becomes its id. BOS is added when the
 * model asks for it, unless the template already wrote it. When the template writes the think markers
 * {@code <think>} and {@code </think>} (Qwen3, DeepSeek-R1, GLM, SmolLM3, ...), {@link #split} separates
 * the model's reasoning from its answer. Immutable and thread-safe.
 *
 * <pre>{@code
 * ChatFormat chat = ChatFormat.of(model.gguf(), model.tokenizer()).orElseThrow();
 * int[] ids = chat.encode(List.of(ChatFormat.message("user", "Hi")), Map.of());
 * }</pre>
 */
public final class ChatFormat {

    /** The GGUF key holding the model's Jinja2 chat template. */
    public static final String TEMPLATE_KEY = "tokenizer.chat_template";

    static final String THINK_OPEN = "<think>";
    static final String THINK_CLOSE = "</think>";

    /** An answer split at the think markers: {@code reasoning} null when the template family has none or the text holds none. */
    public record Answer(String content, String reasoning) {}

    private final ChatTemplate template;
    private final Tokenizer tokenizer;
    private final Map<String, String> specialTokens;
    private final boolean thinks;

    /**
     * @param source the template's Jinja2 source
     * @throws TemplateException when it does not parse
     */
    public ChatFormat(String source, Tokenizer tokenizer) {
        this.template = ChatTemplate.parse(source);
        this.thinks = source.contains(THINK_OPEN) && source.contains(THINK_CLOSE);
        this.tokenizer = tokenizer;
        Map<String, String> special = new LinkedHashMap<>();
        if (tokenizer.bosId() >= 0) {
            special.put("bos_token", tokenizer.tokenText(tokenizer.bosId()));
        }
        if (tokenizer.eosId() >= 0) {
            special.put("eos_token", tokenizer.tokenText(tokenizer.eosId()));
        }
        this.specialTokens = Map.copyOf(special);
    }

    /**
     * The model's own format, or empty when the GGUF has no {@code tokenizer.chat_template}.
     *
     * @throws TemplateException when the template does not parse
     */
    public static Optional<ChatFormat> of(GgufFile f, Tokenizer tokenizer) throws GgufFormatException {
        if (!f.has(TEMPLATE_KEY)) {
            return Optional.empty();
        }
        return Optional.of(new ChatFormat(f.getString(TEMPLATE_KEY), tokenizer));
    }

    /** A message as templates expect it: {@code {"role": ..., "content": ...}}. */
    public static Map<String, Object> message(String role, String content) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }

    /** The text the template renders for {@code messages} followed by the assistant's turn. */
    public String render(List<? extends Map<String, ?>> messages, Map<String, ?> kwargs) {
        return template.renderConversation(messages, null, true, specialTokens, kwargs);
    }

    /** The token ids of {@link #render}, special tokens parsed, BOS added as the model asks. */
    public int[] encode(List<? extends Map<String, ?>> messages, Map<String, ?> kwargs) {
        String text = render(messages, kwargs);
        boolean bosWritten = specialTokens.containsKey("bos_token") && text.startsWith(specialTokens.get("bos_token"));
        return tokenizer.encode(text, tokenizer.addBosByDefault() && !bosWritten, true);
    }

    /** Whether the template family marks reasoning with {@code <think>...</think>}. */
    public boolean thinks() {
        return thinks;
    }

    /**
     * The generated text split into answer and reasoning: the text before {@code </think>} (without a
     * leading {@code <think>}; templates that open the think block in the generation prompt leave it
     * out) is the reasoning, the rest the answer, both without the newlines around the markers. A text
     * that opened {@code <think>} and never closed it (cut by max_tokens) is all reasoning. Without
     * think markers in the template, or in the text, the text is all answer.
     */
    public Answer split(String text) {
        return split(text, false);
    }

    /**
     * As {@link #split(String)}, for the answer to {@code renderedPrompt}: when the prompt ends inside an
     * open think block (DeepSeek-R1's generation prompt writes {@code <think>\n}), a text without
     * {@code </think>} is all reasoning.
     */
    public Answer split(String renderedPrompt, String text) {
        return split(text, thinks && renderedPrompt.lastIndexOf(THINK_OPEN) > renderedPrompt.lastIndexOf(THINK_CLOSE));
    }

    private Answer split(String text, boolean opened) {
        if (!thinks) {
            return new Answer(text, null);
        }
        int close = text.indexOf(THINK_CLOSE);
        String head = text.stripLeading();
        if (close < 0) {
            if (head.startsWith(THINK_OPEN)) {
                return new Answer("", trimNewlines(head.substring(THINK_OPEN.length())));
            }
            return opened ? new Answer("", trimNewlines(text)) : new Answer(text, null);
        }
        String reasoning = text.substring(0, close).stripLeading();
        if (reasoning.startsWith(THINK_OPEN)) {
            reasoning = reasoning.substring(THINK_OPEN.length());
        }
        return new Answer(text.substring(close + THINK_CLOSE.length()).stripLeading(), trimNewlines(reasoning));
    }

    private static String trimNewlines(String s) {
        int from = 0;
        int to = s.length();
        while (from < to && s.charAt(from) == '\n') {
            from++;
        }
        while (to > from && s.charAt(to - 1) == '\n') {
            to--;
        }
        return s.substring(from, to);
    }
}
