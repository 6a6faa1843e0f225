package io.moestream.jobs.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** {@code chat-template} as the reference check drives it: one JSON result per case, errors per case. */
class ChatTemplateCommandTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path dir;

    private String launch(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new Main());
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        assertThat(cli.execute(args)).as(err.toString()).isZero();
        return out.toString();
    }

    @Test
    void rendersEachCaseWithTheDocumentedContext() throws Exception {
        Path template = dir.resolve("t.jinja");
        Files.writeString(template, """
                {{- bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}
                {%- if tools is none %}[no tools]{% else %}{{ tools | tojson }}{% endif %}
                {%- if documents is none %}[no documents]{% endif %}
                {%- if add_generation_prompt %}<assistant>{% endif %}
                {%- if enable_thinking is defined %}[thinking={{ enable_thinking }}]{% endif %}
                {{- strftime_now('%d %b %Y') }}{{ eos_token }}
                """, StandardCharsets.UTF_8);
        Path cases = dir.resolve("cases.json");
        Files.writeString(cases, """
                {"strftime_now_date": "2026-01-15", "special_tokens": {"bos_token": "<s>", "eos_token": "</s>"},
                 "cases": [
                  {"id": "plain", "messages": [{"role": "user", "content": "héllo 😀"}], "add_generation_prompt": true},
                  {"id": "tools", "messages": [], "add_generation_prompt": false,
                   "tools": [{"type": "function", "function": {"name": "f"}}], "kwargs": {"enable_thinking": false}},
                  {"id": "bad", "messages": "not a list", "add_generation_prompt": true}
                 ]}
                """, StandardCharsets.UTF_8);

        String out = launch("chat-template", "--template", template.toString(), "--cases", cases.toString());

        assertThat(out).isASCII();
        JsonNode results = JSON.readTree(out);
        assertThat(results).hasSize(3);
        assertThat(results.get(0).get("case").asText()).isEqualTo("plain");
        assertThat(results.get(0).get("output").asText())
                .isEqualTo("<s><user>héllo 😀[no tools][no documents]<assistant>15 Jan 2026</s>");
        assertThat(results.get(1).get("output").asText())
                .isEqualTo("<s>[{\"type\": \"function\", \"function\": {\"name\": \"f\"}}][no documents]"
                        + "[thinking=False]15 Jan 2026</s>");
        assertThat(results.get(2).get("case").asText()).isEqualTo("bad");
        assertThat(results.get(2).get("error").asText()).contains("messages and tools must be lists");
    }

    @Test
    void aTemplateThatDoesNotParseIsAnErrorForEveryCase() throws Exception {
        Path template = dir.resolve("broken.jinja");
        Files.writeString(template, "{% for m in messages %}never closed");
        Path cases = dir.resolve("cases.json");
        Files.writeString(cases, """
                {"cases": [{"id": "a", "messages": [], "add_generation_prompt": true},
                           {"id": "b", "messages": [], "add_generation_prompt": false}]}
                """);

        JsonNode results = JSON.readTree(launch("chat-template", "--template", template.toString(),
                "--cases", cases.toString()));

        assertThat(results).hasSize(2);
        for (JsonNode r : results) {
            assertThat(r.get("error").asText()).startsWith("TemplateSyntaxError");
            assertThat(r.has("output")).isFalse();
        }
    }
}
