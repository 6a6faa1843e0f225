package io.moestream.runtime.constrain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.FinishReason;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.sched.Batch;
import io.moestream.runtime.sched.Request;
import io.moestream.runtime.sched.StepPlanner;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Constrained generation with real models through the shared request lifecycle: many schemas in
 * one batched step, every sampling mode; a STOP answer validates against its schema (networknt),
 * a LENGTH answer is a valid prefix, and each request's answer equals running it alone.
 */
class ConstrainedGenerationTest {

    private static final int MAX_TOKENS = 96;

    private static SamplingParams mode(int i) {
        return switch (i % 4) {
            case 0 -> SamplingParams.greedy(MAX_TOKENS);
            case 1 -> new SamplingParams(MAX_TOKENS, 0.9f, 0, 1f, 1000 + i, List.of());
            case 2 -> new SamplingParams(MAX_TOKENS, 1.3f, 8, 1f, 2000 + i, List.of());
            default -> new SamplingParams(MAX_TOKENS, 1f, 0, 0.8f, 3000 + i, List.of());
        };
    }

    private static List<GenerationResult> run(Model m, List<String> prompts, List<String> schemas, List<Integer> modes) {
        List<Request> requests = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            GenerationRequest g = new GenerationRequest(m.newCache(), m.tokenizer().encodePrompt(prompts.get(i)),
                    mode(modes.get(i)), false);
            requests.add(Request.generate("", g, m.tokenizer())
                    .constrain(Grammar.jsonSchema(schemas.get(i)).start(m.tokenizer())));
        }
        Batch.run(new Engine(m), StepPlanner.singleTenant(256, requests.size()), requests);
        return requests.stream().map(Request::result).toList();
    }

    private static void schemasInOneBatch(Model m) {
        List<String> prompts = new ArrayList<>();
        List<String> schemas = new ArrayList<>();
        List<Integer> modes = new ArrayList<>();
        String[] texts = {"The import statement", "A list is", "{\"name\": ", "def main():", "Dictionaries map"};
        int i = 0;
        for (String schema : SchemaCases.SCHEMAS) {
            for (int k = 0; k < 2; k++, i++) {
                prompts.add(texts[i % texts.length]);
                schemas.add(schema);
                modes.add(i);
            }
        }
        List<GenerationResult> results = run(m, prompts, schemas, modes);
        int stopped = 0;
        for (int j = 0; j < results.size(); j++) {
            GenerationResult r = results.get(j);
            Grammar g = Grammar.jsonSchema(schemas.get(j));
            byte[] bytes = bytesOf(m, r.tokenIds());
            if (r.finishReason() == FinishReason.STOP) {
                stopped++;
                assertThat(SchemaCases.problems(schemas.get(j), r.text())).as(schemas.get(j) + "\n  output: " + r.text()).isNull();
            } else {
                assertThat(r.finishReason()).isEqualTo(FinishReason.LENGTH);
                assertThat(r.tokenIds()).hasSize(MAX_TOKENS);
                assertThat(g.prefix(bytes)).as("LENGTH answer is a valid prefix: " + r.text()).isTrue();
            }
        }
        assertThat(stopped).as("answers that completed").isGreaterThan(results.size() / 3);
        // the batch gave each request what it gets alone
        for (int j : new int[] {0, 5, results.size() - 1}) {
            GenerationResult alone = run(m, List.of(prompts.get(j)), List.of(schemas.get(j)), List.of(modes.get(j))).get(0);
            assertThat(alone.tokenIds()).isEqualTo(results.get(j).tokenIds());
            assertThat(alone.finishReason()).isEqualTo(results.get(j).finishReason());
        }
    }

    private static byte[] bytesOf(Model m, int[] ids) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int id : ids) {
            out.writeBytes(m.tokenizer().tokenBytes(id));
        }
        return out.toByteArray();
    }

    @Test
    void trainedModelAnswersValidateUnderManySchemasInOneBatch() {
        schemasInOneBatch(Vocabularies.trained());
    }

    @Test
    void syntheticModelAnswersValidateUnderManySchemasInOneBatch() {
        schemasInOneBatch(Vocabularies.synthetic());
    }

    @Test
    void aCutAnswerIsLengthAndAValidPrefix() {
        Model m = Vocabularies.trained();
        String schema = SchemaCases.SCHEMAS.get(0);
        GenerationRequest g = new GenerationRequest(m.newCache(), m.tokenizer().encodePrompt("The import statement"),
                SamplingParams.greedy(5), false);
        Request r = Request.generate("", g, m.tokenizer()).constrain(Grammar.jsonSchema(schema).start(m.tokenizer()));
        Batch.run(new Engine(m), StepPlanner.singleTenant(256, 1), List.of(r));
        GenerationResult result = r.result();
        assertThat(result.finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat("{\"sentiment\":\"").as("the required first member, cut").startsWith(result.text());
        assertThat(result.tokenIds()).hasSize(5);
        assertThat(Grammar.jsonSchema(schema).prefix(result.text().getBytes(StandardCharsets.UTF_8))).isTrue();
    }

    @Test
    void aConstrainedRequestCannotIgnoreEos() {
        Model m = Vocabularies.trained();
        GenerationRequest g = new GenerationRequest(m.newCache(), new int[] {1}, SamplingParams.greedy(4), false);
        Constraint c = Grammar.choice(List.of("a")).start(m.tokenizer());
        assertThatThrownBy(() -> Request.generate("", g, m.tokenizer()).constrain(c).ignoreEos())
                .isInstanceOf(IllegalStateException.class);
    }
}
