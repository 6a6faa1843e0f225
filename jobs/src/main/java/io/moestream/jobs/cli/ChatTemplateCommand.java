package io.moestream.jobs.cli;

import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.moestream.runtime.chat.ChatTemplate;
import io.moestream.runtime.chat.RenderLimits;
import io.moestream.runtime.chat.TemplateException;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Supplier;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code moestream chat-template}: renders a chat template over a file of conversations and prints
 * one JSON list {@code [{"case": id, "output": "..."} | {"case": id, "error": "..."}]}, the interface
 * the chat-template reference check drives.
 */
@Command(
        name = "chat-template",
        mixinStandardHelpOptions = true,
        description = {
            "Renders a Jinja2 chat template as transformers' apply_chat_template does (jinja2 3.1 semantics).",
            "CASES is {\"strftime_now_date\": \"YYYY-MM-DD\", \"special_tokens\": {\"bos_token\": ..., \"eos_token\": ...},"
                    + " \"cases\": [{\"id\", \"messages\", \"add_generation_prompt\", [\"tools\"], [\"kwargs\"]}]}.",
            "Each case renders with messages, tools (or none), documents (none), add_generation_prompt, the special"
                    + " tokens, then the case's kwargs; prints [{\"case\", \"output\"} | {\"case\", \"error\"}] as JSON."
        })
public final class ChatTemplateCommand implements Callable<Integer> {

    /** Non-ASCII is written as JSON escapes, so the output reads the same under any console encoding. */
    private static final ObjectMapper JSON = JsonMapper.builder().enable(JsonWriteFeature.ESCAPE_NON_ASCII).build();

    @Spec CommandSpec spec;

    @Option(names = "--template", paramLabel = "FILE", required = true, description = "The Jinja2 chat template (UTF-8).")
    Path template;

    @Option(names = "--cases", paramLabel = "FILE", required = true, description = "The conversations to render (JSON, see above).")
    Path cases;

    @Override
    @SuppressWarnings("unchecked")
    public Integer call() throws IOException {
        String source = Files.readString(CliSupport.existingFile(template, "--template"), StandardCharsets.UTF_8);
        Map<String, Object> doc = JSON.readValue(CliSupport.existingFile(cases, "--cases").toFile(), Map.class);
        Object date = doc.get("strftime_now_date");
        Supplier<LocalDateTime> clock = date == null ? LocalDateTime::now
                : LocalDate.parse(date.toString())::atStartOfDay;
        Map<String, String> special = (Map<String, String>) doc.getOrDefault("special_tokens", Map.of());
        List<Map<String, Object>> caseList = (List<Map<String, Object>>) doc.getOrDefault("cases", List.of());

        ChatTemplate parsed = null;
        String parseError = null;
        try {
            parsed = ChatTemplate.parse(source, RenderLimits.DEFAULT, clock);
        } catch (TemplateException e) {
            parseError = e.getMessage();
        }
        List<Map<String, Object>> results = new ArrayList<>();
        for (Map<String, Object> c : caseList) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("case", c.get("id"));
            if (parsed == null) {
                r.put("error", parseError);
            } else {
                try {
                    r.put("output", render(parsed, special, c));
                } catch (TemplateException | IllegalArgumentException e) {
                    r.put("error", e.getMessage());
                }
            }
            results.add(r);
        }
        PrintWriter out = spec.commandLine().getOut();
        out.println(JSON.writeValueAsString(results));
        out.flush();
        return 0;
    }

    @SuppressWarnings("unchecked")
    private static String render(ChatTemplate template, Map<String, String> special, Map<String, Object> c) {
        Object messages = c.get("messages");
        Object tools = c.get("tools");
        Object kwargs = c.getOrDefault("kwargs", Map.of());
        if (!(messages instanceof List) || (tools != null && !(tools instanceof List)) || !(kwargs instanceof Map)) {
            throw new IllegalArgumentException("case " + c.get("id")
                    + ": messages and tools must be lists, kwargs an object");
        }
        return template.renderConversation((List<?>) messages, (List<?>) tools,
                Boolean.TRUE.equals(c.get("add_generation_prompt")), special, (Map<String, ?>) kwargs);
    }
}
