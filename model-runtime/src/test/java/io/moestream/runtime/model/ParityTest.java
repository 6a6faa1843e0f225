package io.moestream.runtime.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.abort;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moestream.runtime.Fixtures;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.sampler.Sampler;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Forward-pass parity with llama.cpp (CPU, F32 KV cache, no flash attention): for every prompt of
 * an oracle model's golden, the same prompt ids, all 32 greedy tokens identical, and every recorded
 * logit equal to the golden's float32 value: the whole vocabulary at the last prompt position and
 * after each of the first 8 generated tokens, and the top-10 ids at all 9 recorded positions.
 *
 * <p>Two sources: the copy in {@code src/test/resources/oracle/} (every supported architecture and
 * weight type; there the full-vocabulary rows are rounded to 5 decimals, so they are checked to
 * half a unit of that precision, the top-10 exactly), and the full oracle in
 * {@code ../shared/oracle} when the checkout has it (skipped otherwise), where every logit is the
 * shortest decimal of a float32 and must match bit for bit. A model of the full oracle that this
 * runtime cannot load, or whose weights are of a type outside {@link #EXACT_TYPES} (the types whose
 * products are checked against llama.cpp), is a skipped test that names the reason. The full
 * oracle's prompts of more than {@value #LONG_PROMPT} tokens run with
 * {@code -Dmoestream.parity.long=true} and are skipped (saying so) otherwise.
 */
class ParityTest {

    /**
     * The in-repo full rows hold each float32 logit's shortest decimal rounded to 5 decimals: within
     * half a unit of the 5th decimal plus one float32 ulp of the value.
     */
    static final double FIVE_DECIMALS = 0.5e-5;
    static final Map<String, long[]> STATS = new TreeMap<>(); // model -> logits checked, greedy tokens checked

    @AfterAll
    static void report() {
        StringBuilder sb = new StringBuilder("parity with llama.cpp (logits and greedy tokens asserted equal):\n");
        synchronized (STATS) {
            STATS.forEach((m, s) -> sb.append(String.format("  %-28s %7d logits  %4d greedy tokens%n", m, s[0], s[1])));
        }
        System.out.print(sb);
    }

    static Stream<Arguments> inRepo() {
        List<Arguments> out = new ArrayList<>();
        for (String stem : Fixtures.oracleModels()) {
            int prompts = Fixtures.golden(stem).get("prompts").size();
            for (int p = 0; p < prompts; p++) {
                out.add(Arguments.of(stem, p));
            }
        }
        return out.stream();
    }

    /**
     * Prompts longer than this (the long-context models' ~24,000-token prompts, minutes each) are
     * checked by {@link #longPromptsOfTheFullOracle} when {@code -Dmoestream.parity.long=true}.
     */
    static final int LONG_PROMPT = 4096;

    /** Every model of the full oracle that has a golden; empty without {@code ../shared}. */
    static Stream<Arguments> shared() throws IOException {
        Path oracle = Fixtures.sharedOracle();
        if (oracle == null) {
            return Stream.of(Arguments.of("(no ../shared/oracle in this checkout)"));
        }
        try (Stream<Path> files = Files.list(oracle.resolve("models"))) {
            return files.map(f -> f.getFileName().toString())
                    .filter(n -> n.endsWith(".gguf"))
                    .map(n -> n.substring(0, n.length() - ".gguf".length()))
                    .filter(stem -> Files.exists(oracle.resolve("golden").resolve(stem + ".json")))
                    .sorted()
                    .map(Arguments::of)
                    .toList()
                    .stream();
        }
    }

    /** Each prompt of the full oracle longer than {@link #LONG_PROMPT} tokens, as (model, prompt index). */
    static Stream<Arguments> sharedLong() throws IOException {
        Path oracle = Fixtures.sharedOracle();
        if (oracle == null) {
            return Stream.of(Arguments.of("(no ../shared/oracle in this checkout)", -1));
        }
        List<Arguments> out = new ArrayList<>();
        for (Arguments a : shared().toList()) {
            String stem = (String) a.get()[0];
            JsonNode prompts = new ObjectMapper().readTree(oracle.resolve("golden").resolve(stem + ".json").toFile()).get("prompts");
            for (int p = 0; p < prompts.size(); p++) {
                if (prompts.get(p).get("token_ids").size() > LONG_PROMPT) {
                    out.add(Arguments.of(stem, p));
                }
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} prompt {1}")
    @MethodSource("inRepo")
    void greedyTokensAndLogitsMatchLlamaCpp(String stem, int promptIndex) throws IOException {
        Model model = Model.load(Fixtures.model(stem));
        check(stem, model, Fixtures.golden(stem).get("prompts").get(promptIndex), FIVE_DECIMALS);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shared")
    void everyModelOfTheFullOracleIsBitIdenticalOrSkippedWithTheReason(String stem) throws IOException {
        Path oracle = Fixtures.sharedOracle();
        assumeTrue(oracle != null, "no ../shared/oracle beside this checkout");
        Model model = loadOrSkip(oracle, stem);
        JsonNode golden = new ObjectMapper().readTree(oracle.resolve("golden").resolve(stem + ".json").toFile());
        for (JsonNode prompt : golden.get("prompts")) {
            if (prompt.get("token_ids").size() <= LONG_PROMPT) {
                check(stem, model, prompt, 0);
            }
        }
    }

    @ParameterizedTest(name = "{0} prompt {1}")
    @MethodSource("sharedLong")
    void longPromptsOfTheFullOracle(String stem, int promptIndex) throws IOException {
        Path oracle = Fixtures.sharedOracle();
        assumeTrue(oracle != null, "no ../shared/oracle beside this checkout");
        assumeTrue(Boolean.getBoolean("moestream.parity.long"),
                "a prompt of more than " + LONG_PROMPT + " tokens takes minutes: run with -Dmoestream.parity.long=true");
        Model model = loadOrSkip(oracle, stem);
        JsonNode golden = new ObjectMapper().readTree(oracle.resolve("golden").resolve(stem + ".json").toFile());
        check(stem, model, golden.get("prompts").get(promptIndex), 0);
    }

    /** The weight types whose products are llama.cpp's bit for bit (docs/runtime.md). */
    static final Set<GgmlType> EXACT_TYPES = EnumSet.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0,
            GgmlType.Q5_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ4_NL,
            GgmlType.MXFP4);

    private static Model loadOrSkip(Path oracle, String stem) {
        Model model;
        try {
            model = Model.load(oracle.resolve("models").resolve(stem + ".gguf"));
        } catch (IOException | RuntimeException e) {
            return abort(stem + " cannot be loaded by this runtime yet: " + e.getMessage());
        }
        Set<GgmlType> types = EnumSet.noneOf(GgmlType.class);
        model.gguf().tensors().values().forEach(t -> types.add(t.type()));
        types.removeAll(EXACT_TYPES);
        if (!types.isEmpty()) {
            return abort(stem + " has " + types + " weights, whose products are not checked against llama.cpp yet");
        }
        return model;
    }

    /**
     * Runs one golden prompt: its ids, its 32 greedy tokens, and every recorded logit within
     * {@code fullRowTolerance} (0: equal as float32) for the full rows, equal for the top-10 entries.
     */
    static void check(String stem, Model model, JsonNode prompt, double fullRowTolerance) {
        String text = prompt.get("text").asText();
        int[] promptIds = Fixtures.ints(prompt.get("token_ids"));
        int[] expectedGreedy = Fixtures.ints(prompt.get("greedy_ids"));
        JsonNode logitsTop = prompt.get("logits_top");
        JsonNode genLogits = prompt.get("gen_logits");
        assertThat(model.tokenizer().encodePrompt(text)).as("%s prompt ids", stem).containsExactly(promptIds);

        Engine engine = new Engine(model);
        KvCache cache = model.newCache();
        float[] logits = engine.forward(cache, promptIds);
        long checked = 0;
        int[] greedy = new int[expectedGreedy.length];
        for (int step = 0; step < greedy.length; step++) {
            String where = stem + " '" + text + "' position " + (promptIds.length - 1 + step);
            JsonNode row = step == 0 ? prompt.get("last_logits") : genLogits != null && step - 1 < genLogits.size() ? genLogits.get(step - 1) : null;
            if (row != null) {
                assertThat(logits).hasSize(row.size());
                for (int i = 0; i < logits.length; i++) {
                    assertLogit(logits[i], row.get(i).asDouble(), fullRowTolerance, where + " logit " + i);
                }
                checked += logits.length;
            }
            if (step < logitsTop.size()) {
                for (JsonNode pair : logitsTop.get(step).get("top")) {
                    assertLogit(logits[pair.get(0).asInt()], pair.get(1).asDouble(), 0, where + " top-10 logit " + pair.get(0).asInt());
                    checked++;
                }
            }
            greedy[step] = Sampler.argmax(logits);
            logits = engine.forward(cache, new int[] {greedy[step]});
        }
        assertThat(greedy).as("%s '%s' greedy tokens", stem, text).containsExactly(expectedGreedy);
        assertThat(cache.length()).isEqualTo(promptIds.length + greedy.length);
        synchronized (STATS) {
            long[] s = STATS.computeIfAbsent(stem, k -> new long[2]);
            s[0] += checked;
            s[1] += greedy.length;
        }
    }

    private static void assertLogit(float got, double golden, double tolerance, String what) {
        if (tolerance == 0) {
            assertThat(got).as(what).isEqualTo((float) golden);
        } else {
            double bound = tolerance + Math.ulp((float) golden);
            assertThat((double) got).as(what).isCloseTo(golden, org.assertj.core.data.Offset.offset(bound));
        }
    }
}
