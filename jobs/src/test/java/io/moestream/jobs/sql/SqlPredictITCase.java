package io.moestream.jobs.sql;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.networknt.schema.InputFormat;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import io.moestream.jobs.cli.ConsumeCommand;
import io.moestream.jobs.cli.ProduceCommand;
import io.moestream.jobs.kafka.LocalKafka;
import io.moestream.operators.KvStateConfig;
import io.moestream.runtime.constrain.Grammar;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.schemas.FinishReason;
import io.moestream.schemas.Generation;
import io.moestream.schemas.JsonAvro;
import java.io.ByteArrayInputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The SQL surface end to end: prompts written by {@code produce} are read by a Kafka table in the
 * {@code moestream-avro} format, answered by {@code ML_PREDICT} with the {@code moestream} model on
 * a MiniCluster, written by a Kafka sink table in the same format and read back by {@code consume}.
 */
class SqlPredictITCase {

    private static final List<String> QUESTIONS = List.of("Hello", "What is a list?", "Tell me about Flink.",
            "Why is the sky blue?", "Name three colors.", "Count to five.");

    private static LocalKafka kafka;

    @BeforeAll
    static void startKafka() throws Exception {
        kafka = LocalKafka.start(0);
        kafka.createTopics(List.of("sql.prompts", "sql.a.generations", "sql.b.generations"));
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < QUESTIONS.size(); i++) {
            lines.append("{\"request_id\":\"q").append(i).append("\",\"tenant\":\"acme\",\"text\":\"")
                    .append(QUESTIONS.get(i)).append("\"}\n");
        }
        Run produce = run(new ProduceCommand(new ByteArrayInputStream(lines.toString().getBytes(StandardCharsets.UTF_8))),
                "--bootstrap-servers", kafka.bootstrapServers(), "--topic", "sql.prompts");
        assertThat(produce.exitCode).as(produce.err).isZero();
    }

    @AfterAll
    static void stopKafka() {
        if (kafka != null) {
            kafka.close();
        }
    }

    @Test
    void promptsFromProduceAreAnsweredThroughMlPredictAndReadBackByConsumeTheSameAtEveryConcurrency() throws Exception {
        runScript("sql.a.generations", 8);
        runScript("sql.b.generations", 1);

        Map<String, Generation> batched = consume("sql.a.generations");
        Map<String, Generation> oneByOne = consume("sql.b.generations");

        assertThat(batched.keySet()).containsExactlyInAnyOrder("q0", "q1", "q2", "q3", "q4", "q5");
        for (Generation g : batched.values()) {
            assertThat(g.getTenant()).isEqualTo("acme");
            assertThat(g.getUsage().getPromptTokens()).isPositive();
            assertThat(g.getUsage().getGeneratedTokens()).isBetween(0, 12);
            if (g.getFinishReason() == FinishReason.LENGTH) {
                assertThat(g.getUsage().getGeneratedTokens()).isEqualTo(12);
            }
            assertThat(g.getModel()).isEqualTo("moestream");
        }
        assertThat(batched.values().stream().mapToInt(g -> g.getUsage().getGeneratedTokens()).sum()).isPositive();
        // seeded sampling (temperature 0.8): a row's answer does not depend on what shared its steps,
        // so a retried row is answered the same
        for (String id : batched.keySet()) {
            assertThat(oneByOne.get(id).getText()).as(id).isEqualTo(batched.get(id).getText());
            assertThat(oneByOne.get(id).getUsage()).as(id).isEqualTo(batched.get(id).getUsage());
        }
    }

    @Test
    void badRowsAreAnsweredInTheErrorColumnOrFailTheJobAsTheModelSays() throws Exception {
        String tooLong = "word ".repeat(20_000);
        TableEnvironment env = SqlScript.environment(new Configuration());
        List<Row> rows = new ArrayList<>();
        SqlScript.run(env, SqlScript.statements("""
                CREATE MODEL lenient INPUT (prompt STRING)
                OUTPUT (text STRING, completion_tokens INT, error STRING)
                WITH ('provider' = 'moestream', 'max-tokens' = '4', 'error-handling' = 'column');
                CREATE MODEL strict INPUT (prompt STRING) OUTPUT (text STRING)
                WITH ('provider' = 'moestream', 'max-tokens' = '4');
                CREATE TEMPORARY VIEW input AS SELECT * FROM (VALUES
                  ('ok', 'Hello'), ('null', CAST(NULL AS STRING)), ('long', '%s')) AS t(id, prompt);
                SELECT id, text, completion_tokens, error FROM ML_PREDICT(TABLE input, MODEL lenient, DESCRIPTOR(prompt));
                """.formatted(tooLong)), rows::add);

        Map<String, Row> byId = rows.stream().collect(Collectors.toMap(r -> (String) r.getField(0), r -> r));
        assertThat(byId).containsOnlyKeys("ok", "null", "long");
        assertThat(byId.get("ok").getField(3)).isNull();
        assertThat((Integer) byId.get("ok").getField(2)).isBetween(1, 4);
        assertThat(byId.get("ok").getField(1)).as("greedy, so the engine alone gives the same text")
                .isEqualTo(engineAlone("Hello", 4));
        assertThat(byId.get("null").getField(1)).isNull();
        assertThat((String) byId.get("null").getField(3)).isEqualTo("the prompt is null");
        assertThat((String) byId.get("long").getField(3)).contains("tokens, but the context window is");

        assertThatThrownBy(() -> SqlScript.run(env, List.of(
                "SELECT id, text FROM ML_PREDICT(TABLE input, MODEL strict, DESCRIPTOR(prompt))"), r -> {}))
                .hasStackTraceContaining("the prompt is null")
                .hasStackTraceContaining("'error-handling' = 'column'");
    }

    @Test
    void theReadmeExampleScriptWritesPromptsAnswersThemAndPrintsTheAnswers() throws Exception {
        kafka.createTopics(List.of("moe.prompts", "moe.generations"));
        String script = Files.readString(Path.of("../docs/examples/answer-prompts.sql"));
        List<Row> printed = new ArrayList<>();

        SqlScript.run(SqlScript.environment(new Configuration()),
                SqlScript.statements(SqlScript.substitute(script, Map.of("bootstrap-servers", kafka.bootstrapServers()))),
                printed::add);

        assertThat(printed).extracting(r -> r.getField(0)).containsExactlyInAnyOrder("r1", "r2");
        assertThat(printed).allSatisfy(r -> {
            assertThat((String) r.getField(1)).isIn("STOP", "LENGTH", "STOP_SEQUENCE");
            assertThat((Integer) r.getField(2)).isBetween(0, 24);
        });
    }

    @Test
    void aModelWithAResponseFormatAnswersEveryRowWithJsonValidAgainstItsSchema() throws Exception {
        String schema = "{\"type\":\"object\",\"properties\":{\"answer\":{\"enum\":[\"yes\",\"no\"]},"
                + "\"confidence\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":100},"
                + "\"reason\":{\"type\":\"string\",\"maxLength\":12}},\"required\":[\"answer\",\"confidence\"]}";
        TableEnvironment env = SqlScript.environment(new Configuration());
        List<Row> json = new ArrayList<>();
        SqlScript.run(env, SqlScript.statements("""
                CREATE MODEL judge INPUT (prompt STRING) OUTPUT (text STRING, finish_reason STRING, completion_tokens INT)
                WITH ('provider' = 'moestream', 'max-tokens' = '40', 'temperature' = '0.9', 'seed' = '7',
                      'response-format.json-schema' = '%s');
                CREATE MODEL pick INPUT (prompt STRING) OUTPUT (text STRING, finish_reason STRING)
                WITH ('provider' = 'moestream', 'max-tokens' = '8', 'temperature' = '0.9',
                      'response-format.choices' = 'yes;no;it depends');
                CREATE TEMPORARY VIEW input AS SELECT * FROM (VALUES %s) AS t(id, prompt);
                SELECT id, text, finish_reason, completion_tokens FROM ML_PREDICT(TABLE input, MODEL judge, DESCRIPTOR(prompt));
                """.formatted(schema, values())), json::add);
        List<Row> picked = new ArrayList<>();
        SqlScript.run(env, List.of("SELECT id, text, finish_reason FROM ML_PREDICT(TABLE input, MODEL pick, DESCRIPTOR(prompt))"),
                picked::add);
        // a call option replaces the model's constraint for that call
        List<Row> called = new ArrayList<>();
        SqlScript.run(env, List.of("SELECT id, text, finish_reason FROM ML_PREDICT(TABLE input, MODEL pick, DESCRIPTOR(prompt),"
                + " MAP['response-format.regex', '[0-9]{3}'])"), called::add);

        assertThat(json).hasSize(QUESTIONS.size());
        Grammar grammar = Grammar.jsonSchema(schema);
        var validator = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12).getSchema(schema);
        int complete = 0;
        for (Row r : json) {
            String text = (String) r.getField(1);
            if ("STOP".equals(r.getField(2))) {
                complete++;
                assertThat(validator.validate(text, InputFormat.JSON)).as(text).isEmpty();
            } else {
                assertThat(r.getField(2)).as(text).isEqualTo("LENGTH");
                assertThat(r.getField(3)).isEqualTo(40);
                assertThat(grammar.prefix(text.getBytes(StandardCharsets.UTF_8))).as(text).isTrue();
            }
        }
        assertThat(complete).as("answers that ended with STOP").isPositive();
        assertThat(picked).hasSize(QUESTIONS.size()).allSatisfy(r -> {
            assertThat(r.getField(2)).isEqualTo("STOP");
            assertThat((String) r.getField(1)).isIn("yes", "no", "it depends");
        });
        assertThat(called).hasSize(QUESTIONS.size()).allSatisfy(r -> {
            assertThat(r.getField(2)).isEqualTo("STOP");
            assertThat((String) r.getField(1)).matches("[0-9]{3}");
        });
    }

    @Test
    void aResponseFormatOrBudgetTheProviderCannotUseFailsWhenTheModelOrCallIsPlannedNamingTheProblem() throws Exception {
        TableEnvironment env = SqlScript.environment(new Configuration());
        SqlScript.run(env, SqlScript.statements("""
                CREATE MODEL emails INPUT (prompt STRING) OUTPUT (text STRING)
                WITH ('provider' = 'moestream', 'response-format.json-schema' = '{"type":"string","format":"email"}');
                CREATE MODEL twoformats INPUT (prompt STRING) OUTPUT (text STRING)
                WITH ('provider' = 'moestream', 'response-format.regex' = '[a-z]+', 'response-format.choices' = 'a;b');
                CREATE MODEL plain INPUT (prompt STRING) OUTPUT (text STRING) WITH ('provider' = 'moestream');
                CREATE MODEL noattention INPUT (prompt STRING) OUTPUT (text STRING)
                WITH ('provider' = 'moestream', 'step.attention-budget' = '0');
                CREATE TEMPORARY VIEW input AS SELECT * FROM (VALUES ('a', 'Hello')) AS t(id, prompt);
                """), r -> {});

        assertThatThrownBy(() -> SqlScript.run(env, List.of(
                "SELECT text FROM ML_PREDICT(TABLE input, MODEL emails, DESCRIPTOR(prompt))"), r -> {}))
                .hasStackTraceContaining("'response-format.json-schema' cannot be used")
                .hasStackTraceContaining("keyword 'format' is not supported");
        assertThatThrownBy(() -> SqlScript.run(env, List.of(
                "SELECT text FROM ML_PREDICT(TABLE input, MODEL twoformats, DESCRIPTOR(prompt))"), r -> {}))
                .hasStackTraceContaining("set one of 'response-format.json-schema', 'response-format.regex' or"
                        + " 'response-format.choices', not 2");
        assertThatThrownBy(() -> SqlScript.run(env, List.of("SELECT text FROM ML_PREDICT(TABLE input, MODEL plain,"
                + " DESCRIPTOR(prompt), MAP['response-format.json-schema', '{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}'])"),
                r -> {}))
                .hasStackTraceContaining("ML_PREDICT config: 'response-format.json-schema' cannot be used")
                .hasStackTraceContaining("oneOf alternatives 0 and 1 overlap");
        assertThatThrownBy(() -> SqlScript.run(env, List.of(
                "SELECT text FROM ML_PREDICT(TABLE input, MODEL noattention, DESCRIPTOR(prompt))"), r -> {}))
                .hasStackTraceContaining("attentionBudget must be >= 1, got 0");
    }

    /** The questions as SQL {@code VALUES} rows {@code ('q0', 'Hello'), ...}. */
    private static String values() {
        StringBuilder v = new StringBuilder();
        for (int i = 0; i < QUESTIONS.size(); i++) {
            v.append(i == 0 ? "" : ", ").append("('q").append(i).append("', '").append(QUESTIONS.get(i)).append("')");
        }
        return v.toString();
    }

    /** The greedy answer of the engine alone, with the provider's default KV blocks (int8, 32 positions). */
    private static String engineAlone(String prompt, int maxTokens) throws Exception {
        Model model = Model.loadDefault();
        KvStateConfig kv = KvStateConfig.defaults();
        GenerationRequest request = new GenerationRequest(model.newCache(kv.kvCodec(), kv.blockTokens()),
                model.tokenizer().encodePrompt(prompt), SamplingParams.greedy(maxTokens), false);
        return new Engine(model).generate(List.of(request)).get(0).text();
    }

    private static void runScript(String generationsTopic, int concurrency) throws Exception {
        String script = Files.readString(Path.of("src/test/resources/sql/predict.sql"));
        SqlScript.run(SqlScript.environment(new Configuration()), SqlScript.statements(SqlScript.substitute(script, Map.of(
                "bootstrap-servers", kafka.bootstrapServers(), "prompts-topic", "sql.prompts",
                "generations-topic", generationsTopic, "concurrency", Integer.toString(concurrency)))), r -> {});
    }

    private static Map<String, Generation> consume(String topic) {
        Run consume = run(new ConsumeCommand(), "--bootstrap-servers", kafka.bootstrapServers(), "--topic", topic,
                "--max", Integer.toString(QUESTIONS.size()), "--timeout", "20");
        assertThat(consume.exitCode).as(consume.err).isZero();
        return consume.out.lines().map(l -> JsonAvro.fromJson(l, Generation.class))
                .collect(Collectors.toMap(Generation::getRequestId, g -> g));
    }

    private record Run(int exitCode, String out, String err) {}

    private static Run run(Object command, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exitCode = new CommandLine(command).setOut(new PrintWriter(out)).setErr(new PrintWriter(err)).execute(args);
        return new Run(exitCode, out.toString(), err.toString());
    }
}
