package io.moestream.runtime.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Every shared reference case ({@code ../shared/chat-templates}: 20 real templates x 12
 * conversations, rendered by jinja2 3.1 as transformers configures it) renders byte for byte the
 * same; a case jinja2 rejects must fail here too. Skipped when the shared data is absent.
 */
class ChatTemplateGoldenTest {

    private static final Path SHARED = Path.of("..", "..", "shared", "chat-templates");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TestFactory
    @SuppressWarnings("unchecked")
    Stream<DynamicTest> rendersEverySharedCaseLikeJinja2() throws IOException {
        Path root = SHARED.toAbsolutePath().normalize();
        assumeTrue(Files.isDirectory(root.resolve("golden")), "shared chat-template goldens not present: " + root);
        Map<String, Object> cases = JSON.readValue(root.resolve("cases.json").toFile(), Map.class);
        LocalDate date = LocalDate.parse((String) cases.get("strftime_now_date"));
        List<Map<String, Object>> caseList = (List<Map<String, Object>>) cases.get("cases");
        List<DynamicTest> tests = new ArrayList<>();
        try (Stream<Path> goldens = Files.list(root.resolve("golden"))) {
            for (Path golden : goldens.filter(p -> p.toString().endsWith(".json")).sorted().toList()) {
                Map<String, Object> g = JSON.readValue(golden.toFile(), Map.class);
                String source = Files.readString(root.resolve((String) g.get("template")), StandardCharsets.UTF_8);
                Map<String, String> special = (Map<String, String>) ((Map<String, Object>) g.get("environment"))
                        .get("special_tokens");
                List<Map<String, Object>> results = (List<Map<String, Object>>) g.get("results");
                String name = golden.getFileName().toString().replace(".json", "");
                for (int i = 0; i < results.size(); i++) {
                    Map<String, Object> expected = results.get(i);
                    Map<String, Object> c = caseList.get(i);
                    tests.add(DynamicTest.dynamicTest(name + " / " + c.get("id"),
                            () -> check(source, date, special, c, expected)));
                }
            }
        }
        assertThat(tests).hasSize(240);
        return tests.stream();
    }

    @SuppressWarnings("unchecked")
    private static void check(String source, LocalDate date, Map<String, String> special, Map<String, Object> c,
            Map<String, Object> expected) {
        assertThat(expected.get("case")).isEqualTo(c.get("id"));
        ChatTemplate t = ChatTemplate.parse(source, RenderLimits.DEFAULT, date::atStartOfDay);
        List<Object> messages = (List<Object>) c.get("messages");
        List<Object> tools = (List<Object>) c.get("tools");
        boolean agp = (Boolean) c.get("add_generation_prompt");
        Map<String, Object> kwargs = (Map<String, Object>) c.getOrDefault("kwargs", Map.of());
        if (expected.containsKey("error")) {
            assertThatThrownBy(() -> t.renderConversation(messages, tools, agp, special, kwargs))
                    .isInstanceOf(TemplateException.class);
        } else {
            assertThat(t.renderConversation(messages, tools, agp, special, kwargs)).isEqualTo(expected.get("output"));
        }
    }
}
