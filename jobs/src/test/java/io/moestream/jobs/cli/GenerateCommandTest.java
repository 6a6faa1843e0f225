package io.moestream.jobs.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moestream.runtime.model.DefaultModel;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.Sampler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The launcher's engine commands, run as a user would, checked against a direct engine run. */
class GenerateCommandTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private record Run(int exitCode, String out, String err) {}

    private static Run launch(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new Main());
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute(args);
        return new Run(code, out.toString(), err.toString());
    }

    @Test
    void jsonOutputHasTheGreedyTokensAndTheirTopLogits() throws Exception {
        String model = DefaultModel.path().toString();
        Run run = launch("generate", "--model", model, "--prompt", "The import statement",
                "--max-tokens", "6", "--temperature", "0", "--json", "--logits", "3", "--ignore-eos");
        assertThat(run.exitCode()).as(run.err()).isZero();
        JsonNode json = JSON.readTree(run.out());

        // the same greedy run straight on the engine
        try (Model m = Model.load(DefaultModel.path())) {
            int[] prompt = m.tokenizer().encodePrompt("The import statement");
            Engine engine = new Engine(m);
            KvCache cache = m.newCache();
            float[] logits = engine.forward(cache, prompt);
            List<Integer> expected = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                int next = Sampler.argmax(logits);
                expected.add(next);
                logits = engine.forward(cache, new int[] {next});
            }
            assertThat(JSON.convertValue(json.get("prompt_ids"), int[].class)).isEqualTo(prompt);
            assertThat(JSON.convertValue(json.get("generated_ids"), Integer[].class)).containsExactlyElementsOf(expected);
        }
        JsonNode top = json.get("top_logits");
        assertThat(top.size()).isGreaterThanOrEqualTo(6);
        for (int i = 0; i < 6; i++) {
            JsonNode position = top.get(i);
            assertThat(position.size()).isEqualTo(3);
            // greedy: the best logit at each position is the token that was generated
            assertThat(position.get(0).get(0).asInt()).isEqualTo(json.get("generated_ids").get(i).asInt());
            assertThat(position.get(0).get(1).asDouble()).isGreaterThanOrEqualTo(position.get(1).get(1).asDouble());
        }
        assertThat(json.get("text").asText()).isNotBlank();
    }

    @Test
    void aPromptsFileRunsAsOneBatchAndEachLineEqualsASingleRun(@TempDir Path dir) throws Exception {
        String model = DefaultModel.path().toString();
        Path file = dir.resolve("prompts.json");
        Files.writeString(file, "[\"Strings in Python are\", [2046, 464, 1330], \"A dictionary maps keys to values.\"]");
        Run batch = launch("generate", "--model", model, "--prompts-file", file.toString(),
                "--max-tokens", "5", "--temperature", "0.8", "--seed", "7", "--json");
        assertThat(batch.exitCode()).as(batch.err()).isZero();
        String[] lines = batch.out().strip().split("\n");
        assertThat(lines).hasSize(3);

        Run first = launch("generate", "--model", model, "--prompt", "Strings in Python are",
                "--max-tokens", "5", "--temperature", "0.8", "--seed", "7", "--json");
        Run second = launch("generate", "--model", model, "--prompt-ids", "2046,464,1330",
                "--max-tokens", "5", "--temperature", "0.8", "--seed", "7", "--json");
        assertThat(JSON.readTree(lines[0])).isEqualTo(JSON.readTree(first.out()));
        assertThat(JSON.readTree(lines[1])).isEqualTo(JSON.readTree(second.out()));
    }

    @Test
    void aSyntheticModelFromMakeModelLoadsAndGenerates(@TempDir Path dir) {
        Path file = dir.resolve("tiny.gguf");
        Run make = launch("make-model", "--out", file.toString(), "--preset", "tiny");
        assertThat(make.exitCode()).as(make.err()).isZero();
        assertThat(file).isRegularFile();

        Run run = launch("generate", "--model", file.toString(), "--prompt-ids", "766,79,110",
                "--max-tokens", "4", "--json", "--ignore-eos");
        assertThat(run.exitCode()).as(run.err()).isZero();
        assertThat(run.out()).contains("\"generated_ids\"");
    }

    @Test
    void chatRendersTheModelsTemplateWithItsControlTokens(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("chat.gguf");
        Run make = launch("make-model", "--out", file.toString(), "--preset", "tiny", "--chat");
        assertThat(make.exitCode()).as(make.err()).isZero();
        Path messages = dir.resolve("messages.json");
        Files.writeString(messages, "[{\"role\": \"user\", \"content\": \"Name a colour.\"}]");

        Run flags = launch("generate", "--model", file.toString(), "--chat", "--system", "Be brief.",
                "--message", "user=Name a colour.", "--max-tokens", "3", "--json");
        Run fromFile = launch("generate", "--model", file.toString(), "--chat", "--system", "Be brief.",
                "--messages", messages.toString(), "--max-tokens", "3", "--json");
        assertThat(flags.exitCode()).as(flags.err()).isZero();
        assertThat(fromFile.out()).isEqualTo(flags.out());
        JsonNode ids = JSON.readTree(flags.out()).get("prompt_ids");
        List<Integer> prompt = new ArrayList<>();
        ids.forEach(id -> prompt.add(id.intValue()));
        assertThat(prompt.get(0)).as("BOS").isEqualTo(766);
        assertThat(prompt.stream().filter(id -> id == 768).count()).as("<|im_start|> x3").isEqualTo(3);
        assertThat(prompt.stream().filter(id -> id == 769).count()).as("<|im_end|> x2").isEqualTo(2);

        Run noTemplate = launch("generate", "--chat", "--message", "user=Hi");
        assertThat(noTemplate.exitCode()).isNotZero();
        assertThat(noTemplate.err()).contains("has no chat template");
        Run badRole = launch("generate", "--model", file.toString(), "--chat", "--message", "narrator=Hi");
        assertThat(badRole.err()).contains("role 'narrator'");
        Run noChat = launch("generate", "--model", file.toString(), "--prompt", "x", "--system", "Be brief.");
        assertThat(noChat.err()).contains("need --chat");

        // template variables: ChatML reads none, so the rendering is the same; bad ones say what to fix
        Run kwargs = launch("generate", "--model", file.toString(), "--chat", "--system", "Be brief.",
                "--message", "user=Name a colour.", "--max-tokens", "3", "--json",
                "--chat-template-kwargs", "{\"enable_thinking\": false, \"reasoning_effort\": \"high\", \"n\": 2}");
        assertThat(kwargs.exitCode()).as(kwargs.err()).isZero();
        assertThat(kwargs.out()).isEqualTo(flags.out());
        Run notObject = launch("generate", "--model", file.toString(), "--chat", "--message", "user=Hi",
                "--chat-template-kwargs", "[1]");
        assertThat(notObject.err()).contains("--chat-template-kwargs must be a JSON object");
        Run nested = launch("generate", "--model", file.toString(), "--chat", "--message", "user=Hi",
                "--chat-template-kwargs", "{\"tools\": [1]}");
        assertThat(nested.err()).contains("'tools' must be a boolean, number or string");
        Run notJson = launch("generate", "--model", file.toString(), "--chat", "--message", "user=Hi",
                "--chat-template-kwargs", "{enable_thinking}");
        assertThat(notJson.err()).contains("--chat-template-kwargs: not JSON");
        Run kwargsNoChat = launch("generate", "--model", file.toString(), "--prompt", "x", "--chat-template-kwargs", "{}");
        assertThat(kwargsNoChat.err()).contains("need --chat");
    }

    @Test
    void badInputSaysWhatToFix(@TempDir Path dir) throws Exception {
        Path notGguf = dir.resolve("notes.txt");
        Files.writeString(notGguf, "hello");
        Run wrongFile = launch("generate", "--model", notGguf.toString(), "--prompt", "x");
        assertThat(wrongFile.exitCode()).isNotZero();
        assertThat(wrongFile.err()).contains(notGguf.toString()).containsIgnoringCase("gguf");

        Run badIds = launch("generate", "--model", DefaultModel.path().toString(), "--prompt-ids", "1,99999");
        assertThat(badIds.exitCode()).isNotZero();
        assertThat(badIds.err()).contains("99999");
    }

    @Test
    void jsonSchemaConstrainsEveryPromptOfABatch(@TempDir Path dir) throws Exception {
        Path schema = dir.resolve("review.schema.json");
        Files.writeString(schema, """
                {"type":"object","properties":{
                  "sentiment":{"enum":["positive","negative","neutral"]},
                  "products":{"type":"array","items":{"type":"string","maxLength":20},"maxItems":3},
                  "rating":{"type":"integer","minimum":1,"maximum":5}},
                 "required":["sentiment","products","rating"]}""");
        Path prompts = dir.resolve("prompts.json");
        Files.writeString(prompts, "[\"The list type is\", \"A dictionary maps\", \"Tuples are\"]");
        Run run = launch("generate", "--prompts-file", prompts.toString(), "--json-schema", schema.toString(),
                "--max-tokens", "96", "--temperature", "0.8", "--seed", "3");
        assertThat(run.exitCode()).as(run.err()).isZero();
        List<String> lines = run.out().lines().toList();
        assertThat(lines).hasSize(3);
        for (String line : lines) {
            JsonNode answer = JSON.readTree(JSON.readTree(line).get("text").asText());
            assertThat(answer.get("sentiment").asText()).isIn("positive", "negative", "neutral");
            assertThat(answer.get("products").isArray()).isTrue();
            assertThat(answer.get("products").size()).isLessThanOrEqualTo(3);
            assertThat(answer.get("rating").asInt()).isBetween(1, 5);
            assertThat(answer.get("rating").isInt()).isTrue();
        }
    }

    @Test
    void choiceAndRegexConstrainTheText() {
        String model = DefaultModel.path().toString();
        Run choice = launch("generate", "--model", model, "--prompt", "Is a tuple mutable? Answer:", "--choice", "yes,no,maybe",
                "--max-tokens", "8");
        assertThat(choice.exitCode()).as(choice.err()).isZero();
        assertThat(choice.out().strip()).isIn("yes", "no", "maybe");
        Run regex = launch("generate", "--model", model, "--prompt", "The version is", "--regex", "v[0-9]{1,2}\\.[0-9]{1,2}",
                "--max-tokens", "16", "--temperature", "1", "--seed", "9");
        assertThat(regex.exitCode()).as(regex.err()).isZero();
        assertThat(regex.out().strip()).matches("v[0-9]{1,2}\\.[0-9]{1,2}");
    }

    @Test
    void anUnsupportedSchemaKeywordIsNamed(@TempDir Path dir) throws Exception {
        Path schema = dir.resolve("bad.json");
        Files.writeString(schema, "{\"type\":\"string\",\"format\":\"email\"}");
        Run run = launch("generate", "--prompt", "x", "--json-schema", schema.toString());
        assertThat(run.exitCode()).isEqualTo(2);
        assertThat(run.err()).contains("'format' is not supported");
        Run eos = launch("generate", "--prompt", "x", "--choice", "a,b", "--ignore-eos");
        assertThat(eos.exitCode()).isEqualTo(2);
        assertThat(eos.err()).contains("--ignore-eos cannot be combined");
    }
}
