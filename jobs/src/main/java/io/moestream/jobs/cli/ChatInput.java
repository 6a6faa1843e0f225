package io.moestream.jobs.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moestream.runtime.chat.ChatFormat;
import io.moestream.runtime.chat.TemplateException;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.model.Model;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;

/** {@code generate --chat}: the conversation from the command line, rendered with the model's chat template. */
final class ChatInput {

    private static final Set<String> ROLES = Set.of("system", "user", "assistant", "tool");

    private ChatInput() {}

    /** {@code system} first, then the file's messages, then each {@code role=text} in order. */
    static List<Map<String, Object>> messages(String system, Path file, List<String> roleTexts, CommandSpec spec) {
        List<Map<String, Object>> out = new ArrayList<>();
        if (system != null) {
            out.add(ChatFormat.message("system", system));
        }
        if (file != null) {
            JsonNode list;
            try {
                list = new ObjectMapper().readTree(file.toFile());
            } catch (IOException e) {
                throw new ParameterException(spec.commandLine(), "--messages: cannot read " + file + ": " + e.getMessage());
            }
            if (list == null || !list.isArray()) {
                throw new ParameterException(spec.commandLine(), "--messages: " + file + " must hold a JSON list of messages");
            }
            for (int i = 0; i < list.size(); i++) {
                JsonNode m = list.get(i);
                if (!m.path("role").isTextual() || !m.path("content").isTextual()) {
                    throw new ParameterException(spec.commandLine(), "--messages: entry " + i
                            + " must be {\"role\": \"...\", \"content\": \"...\"}, got " + m);
                }
                out.add(message(m.get("role").textValue(), m.get("content").textValue(), "--messages entry " + i, spec));
            }
        }
        for (String roleText : roleTexts) {
            int eq = roleText.indexOf('=');
            if (eq < 0) {
                throw new ParameterException(spec.commandLine(), "--message: expected ROLE=TEXT, got '" + roleText + "'");
            }
            out.add(message(roleText.substring(0, eq), roleText.substring(eq + 1), "--message", spec));
        }
        if (out.isEmpty()) {
            throw new ParameterException(spec.commandLine(), "--chat needs messages: --system, --message ROLE=TEXT or --messages FILE");
        }
        return out;
    }

    private static Map<String, Object> message(String role, String content, String where, CommandSpec spec) {
        if (!ROLES.contains(role)) {
            throw new ParameterException(spec.commandLine(), where + ": role '" + role
                    + "' is not one of system, user, assistant, tool");
        }
        return ChatFormat.message(role, content);
    }

    /**
     * {@code --chat-template-kwargs}: a JSON object whose values are booleans, integers, numbers or
     * strings (the types of {@code Prompt.chat_template_kwargs}); empty when not given.
     */
    static Map<String, Object> kwargs(String json, CommandSpec spec) {
        if (json == null) {
            return Map.of();
        }
        JsonNode node;
        try {
            node = new ObjectMapper().readTree(json);
        } catch (JsonProcessingException e) {
            throw new ParameterException(spec.commandLine(), "--chat-template-kwargs: not JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            throw new ParameterException(spec.commandLine(), "--chat-template-kwargs must be a JSON object, e.g. '{\"enable_thinking\": false}'");
        }
        Map<String, Object> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            JsonNode v = e.getValue();
            Object value = v.isBoolean() ? (Object) v.booleanValue() : v.isIntegralNumber() ? (Object) v.longValue()
                    : v.isNumber() ? (Object) v.doubleValue() : v.isTextual() ? v.textValue() : null;
            if (value == null) {
                throw new ParameterException(spec.commandLine(), "--chat-template-kwargs: '" + e.getKey()
                        + "' must be a boolean, number or string, got " + v);
            }
            out.put(e.getKey(), value);
        }
        return out;
    }

    /** The token ids of the rendered conversation followed by the assistant's turn. */
    static int[] encode(Model m, List<Map<String, Object>> messages, Map<String, Object> kwargs, CommandSpec spec) {
        ChatFormat chat;
        try {
            chat = ChatFormat.of(m.gguf(), m.tokenizer()).orElseThrow(() -> new ParameterException(spec.commandLine(),
                    "--chat: model '" + m.name() + "' has no chat template (tokenizer.chat_template)"));
            return chat.encode(messages, kwargs);
        } catch (TemplateException | GgufFormatException e) {
            throw new ParameterException(spec.commandLine(), "--chat: the model's chat template: " + e.getMessage());
        }
    }
}
