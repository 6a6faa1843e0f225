package io.moestream.operators;

import io.moestream.schemas.ChatMessage;
import io.moestream.schemas.ErrorCode;
import io.moestream.schemas.InferenceError;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import io.moestream.schemas.ResponseFormat;
import java.util.ArrayList;
import java.util.List;

/**
 * The rules a {@link Prompt} must follow: ids present, either {@code text} or {@code messages} (roles
 * system, user, assistant, tool), {@code max_tokens} in
 * {@code 1..maxTokensCap}, {@code temperature} in {@code [0, 2]}, {@code top_k >= 0}, {@code top_p}
 * in {@code (0, 1]}, a {@code context_id} exactly for DOCUMENT and CONVERSATION prompts, exactly one
 * constraint in {@code response_format} (whether it compiles is checked when the prompt runs).
 */
public final class PromptValidator implements RecordValidator<Prompt> {

    private static final long serialVersionUID = 1L;

    public static final float MAX_TEMPERATURE = 2.0f;

    /** The message roles a prompt may use. */
    public static final List<String> ROLES = List.of("system", "user", "assistant", "tool");

    private final int maxTokensCap;

    public PromptValidator(int maxTokensCap) {
        if (maxTokensCap < 1) {
            throw new IllegalArgumentException("maxTokensCap must be >= 1, got " + maxTokensCap);
        }
        this.maxTokensCap = maxTokensCap;
    }

    @Override
    public List<String> problems(Prompt p) {
        List<String> problems = new ArrayList<>();
        DocumentValidator.checkId("request_id", p.getRequestId(), "give every prompt a unique id", problems);
        DocumentValidator.checkId("tenant", p.getTenant(), "set the tenant that owns the request", problems);
        boolean hasText = p.getText() != null && !p.getText().isEmpty();
        List<ChatMessage> messages = p.getMessages() == null ? List.of() : p.getMessages();
        if (hasText && !messages.isEmpty()) {
            problems.add("both text and messages are given: send the prompt as plain text or as chat messages, not both");
        } else if (!hasText && messages.isEmpty()) {
            problems.add("text and messages are empty: there is nothing to answer");
        }
        for (int i = 0; i < messages.size(); i++) {
            String role = messages.get(i).getRole();
            if (!ROLES.contains(role)) {
                problems.add("messages[" + i + "].role is '" + role + "': it must be one of " + String.join(", ", ROLES));
            }
        }
        if (p.getMaxTokens() < 1 || p.getMaxTokens() > maxTokensCap) {
            problems.add("max_tokens is " + p.getMaxTokens() + ": it must be between 1 and " + maxTokensCap);
        }
        float temperature = p.getTemperature();
        if (!(temperature >= 0f && temperature <= MAX_TEMPERATURE)) { // also rejects NaN
            problems.add("temperature is " + temperature + ": it must be between 0 (greedy) and " + MAX_TEMPERATURE);
        }
        if (p.getTopK() < 0) {
            problems.add("top_k is " + p.getTopK() + ": it must be >= 0 (0 = off)");
        }
        float topP = p.getTopP();
        if (!(topP > 0f && topP <= 1f)) { // also rejects NaN
            problems.add("top_p is " + topP + ": it must be greater than 0 and at most 1 (1 = off)");
        }
        PromptMode mode = p.getMode() == null ? PromptMode.STATELESS : p.getMode();
        String contextId = p.getContextId();
        switch (mode) {
            case DOCUMENT -> DocumentValidator.checkId("context_id", contextId,
                    "a DOCUMENT prompt needs the document_id of the document it asks about", problems);
            case CONVERSATION -> DocumentValidator.checkId("context_id", contextId,
                    "a CONVERSATION prompt needs the conversation's id (chosen by the client, the same for every turn)",
                    problems);
            case STATELESS -> {
                if (contextId != null) {
                    problems.add("context_id is '" + contextId + "' but mode is STATELESS, which uses no context:"
                            + " use mode DOCUMENT or CONVERSATION, or drop the context_id");
                }
            }
        }
        List<String> stop = p.getStop();
        for (int i = 0; stop != null && i < stop.size(); i++) {
            if (stop.get(i) == null || stop.get(i).isEmpty()) {
                problems.add("stop sequence #" + i + " is empty: remove it");
            }
        }
        checkResponseFormat(p.getResponseFormat(), problems);
        return problems;
    }

    private static void checkResponseFormat(ResponseFormat f, List<String> problems) {
        if (f == null) {
            return;
        }
        int set = (f.getJsonSchema() != null ? 1 : 0) + (f.getRegex() != null ? 1 : 0)
                + (f.getChoices() != null && !f.getChoices().isEmpty() ? 1 : 0);
        if (set != 1) {
            problems.add("response_format sets " + set + " of json_schema, regex and choices: set exactly one"
                    + " (or send no response_format for an unconstrained answer)");
        }
    }

    @Override
    public InferenceError.Builder invalid(Prompt prompt, String message, long nowMillis) {
        return Outcomes.prompt(prompt, ErrorCode.INVALID_PARAMS, message, nowMillis);
    }
}
