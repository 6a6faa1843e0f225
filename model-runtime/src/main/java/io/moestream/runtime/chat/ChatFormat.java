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
 * model asks for it, unless the template already wrote it. Immutable and thread-safe.
 *
 * <pre>{@code
 * ChatFormat chat = ChatFormat.of(model.gguf(), model.tokenizer()).orElseThrow();
 * int[] ids = chat.encode(List.of(ChatFormat.message("user", "Hi")), Map.of());
 * }</pre>
 */
public final class ChatFormat {

    /** The GGUF key holding the model's Jinja2 chat template. */
    public static final String TEMPLATE_KEY = "tokenizer.chat_template";

    private final ChatTemplate template;
    private final Tokenizer tokenizer;
    private final Map<String, String> specialTokens;

    public ChatFormat(ChatTemplate template, Tokenizer tokenizer) {
        this.template = template;
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
        return Optional.of(new ChatFormat(ChatTemplate.parse(f.getString(TEMPLATE_KEY)), tokenizer));
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
}
