package io.moestream.runtime.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The renderer against expectations produced by jinja2 3.1 in transformers' configuration
 * ({@code src/test/resources/chat/generate.py}): language snippets (whitespace control, filters,
 * tests, macros, scoping, Python value semantics, errors) and two small chat templates of our own
 * over 17 conversations. Needs no shared data.
 */
class ChatTemplateFixtureTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final LocalDateTime DATE = LocalDateTime.of(2026, 1, 15, 0, 0);

    @TestFactory
    @SuppressWarnings("unchecked")
    Stream<DynamicTest> snippetsRenderAsJinja2() throws IOException {
        List<Map<String, Object>> snippets = read("snippets.json", List.class);
        Map<String, Object> context = read("snippets-context.json", Map.class);
        assertThat(snippets).hasSizeGreaterThan(150);
        List<DynamicTest> tests = new ArrayList<>();
        for (int i = 0; i < snippets.size(); i++) {
            Map<String, Object> s = snippets.get(i);
            String template = (String) s.get("template");
            String label = "#" + i + " " + template.substring(0, Math.min(60, template.length())).replace('\n', ' ');
            tests.add(DynamicTest.dynamicTest(label, () -> {
                if (s.containsKey("error")) {
                    assertThatThrownBy(() -> ChatTemplate.parse(template, RenderLimits.DEFAULT, () -> DATE)
                            .render(context)).as("jinja2 raised %s", s.get("error"))
                            .isInstanceOf(TemplateException.class);
                } else {
                    assertThat(ChatTemplate.parse(template, RenderLimits.DEFAULT, () -> DATE).render(context))
                            .isEqualTo(s.get("output"));
                }
            }));
        }
        return tests.stream();
    }

    @TestFactory
    @SuppressWarnings("unchecked")
    Stream<DynamicTest> conversationsRenderAsJinja2() throws IOException {
        Map<String, Object> doc = read("conversations.json", Map.class);
        List<Map<String, Object>> cases = (List<Map<String, Object>>) doc.get("cases");
        List<DynamicTest> tests = new ArrayList<>();
        for (Map<String, Object> t : (List<Map<String, Object>>) doc.get("templates")) {
            String file = (String) t.get("file");
            String source = resource(file);
            Map<String, String> special = (Map<String, String>) t.get("special_tokens");
            List<Map<String, Object>> results = (List<Map<String, Object>>) t.get("results");
            assertThat(results).hasSameSizeAs(cases);
            for (int i = 0; i < cases.size(); i++) {
                Map<String, Object> c = cases.get(i);
                Map<String, Object> expected = results.get(i);
                tests.add(DynamicTest.dynamicTest(file + " / " + c.get("id"), () -> {
                    ChatTemplate ct = ChatTemplate.parse(source, RenderLimits.DEFAULT, () -> DATE);
                    List<?> messages = (List<?>) c.get("messages");
                    List<?> tools = (List<?>) c.get("tools");
                    boolean agp = (Boolean) c.get("add_generation_prompt");
                    Map<String, ?> kwargs = (Map<String, ?>) c.getOrDefault("kwargs", Map.of());
                    if (expected.containsKey("error")) {
                        assertThatThrownBy(() -> ct.renderConversation(messages, tools, agp, special, kwargs))
                                .isInstanceOf(TemplateException.class);
                    } else {
                        assertThat(ct.renderConversation(messages, tools, agp, special, kwargs))
                                .isEqualTo(expected.get("output"));
                    }
                }));
            }
        }
        return tests.stream();
    }

    private static <T> T read(String name, Class<T> type) throws IOException {
        try (InputStream in = ChatTemplateFixtureTest.class.getResourceAsStream("/chat/" + name)) {
            assertThat(in).as("test resource chat/%s", name).isNotNull();
            return JSON.readValue(in, type);
        }
    }

    private static String resource(String name) throws IOException {
        try (InputStream in = ChatTemplateFixtureTest.class.getResourceAsStream("/chat/" + name)) {
            assertThat(in).as("test resource chat/%s", name).isNotNull();
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
