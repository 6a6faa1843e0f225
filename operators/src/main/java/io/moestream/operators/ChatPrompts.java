package io.moestream.operators;

import io.moestream.runtime.chat.ChatFormat;
import io.moestream.runtime.chat.TemplateException;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.model.Model;
import io.moestream.schemas.ChatMessage;
import io.moestream.schemas.Prompt;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Prompts given as chat {@code messages}: rendered with the chat template (the job's
 * {@link InferenceConfig#chatTemplate}, else the model's {@code tokenizer.chat_template}) with
 * {@code add_generation_prompt} and the prompt's {@code chat_template_kwargs}, and tokenized with
 * special-token parsing. A model without a template, a template that does not parse, or one that
 * refuses the conversation ({@code raise_exception}) gives a {@link Refused} with the reason.
 */
final class ChatPrompts {

    /** The prompt's messages cannot be rendered; the message says why, for the producer. */
    static final class Refused extends Exception {
        Refused(String message) {
            super(message);
        }
    }

    private final ChatFormat format;
    private final String unavailable;

    ChatPrompts(InferenceConfig config, Model model) {
        ChatFormat f = null;
        String why = null;
        try {
            if (config.chatTemplate() != null) {
                f = new ChatFormat(config.chatTemplate(), model.tokenizer());
            } else {
                f = ChatFormat.of(model.gguf(), model.tokenizer()).orElse(null);
                if (f == null) {
                    why = "model '" + model.name() + "' has no chat template (tokenizer.chat_template): send text instead"
                            + " of messages, or give the job a template with moestream.chat-template.file";
                }
            }
        } catch (TemplateException | GgufFormatException e) {
            why = "the chat template does not parse: " + e.getMessage();
        }
        this.format = f;
        this.unavailable = why;
    }

    /** The token ids of the conversation in {@code prompt} followed by the assistant's turn (BOS as the model asks). */
    int[] encode(Prompt prompt) throws Refused {
        ChatFormat f = format();
        try {
            return f.encode(messages(prompt), kwargs(prompt));
        } catch (TemplateException e) {
            throw refusal(e);
        }
    }

    /** The rendered conversation as text, to continue a cached prefix (no BOS). */
    String render(Prompt prompt) throws Refused {
        ChatFormat f = format();
        try {
            return f.render(messages(prompt), kwargs(prompt));
        } catch (TemplateException e) {
            throw refusal(e);
        }
    }

    private static Refused refusal(TemplateException e) {
        return new Refused("the chat template cannot render these messages: " + e.getMessage());
    }

    private ChatFormat format() throws Refused {
        if (format == null) {
            throw new Refused(unavailable);
        }
        return format;
    }

    private static List<Map<String, Object>> messages(Prompt prompt) {
        List<Map<String, Object>> out = new ArrayList<>(prompt.getMessages().size());
        for (ChatMessage m : prompt.getMessages()) {
            out.add(ChatFormat.message(m.getRole(), m.getContent()));
        }
        return out;
    }

    private static Map<String, Object> kwargs(Prompt prompt) {
        return prompt.getChatTemplateKwargs() == null ? Map.of() : new LinkedHashMap<>(prompt.getChatTemplateKwargs());
    }

    /** The answer to {@code prompt} split at the template's think markers (no reasoning without a template or markers). */
    ChatFormat.Answer split(Prompt prompt, String text) {
        if (format == null || !format.thinks()) {
            return new ChatFormat.Answer(text, null);
        }
        try {
            return format.split(render(prompt), text);
        } catch (Refused e) { // it rendered when the request was admitted
            return format.split(text);
        }
    }
}
