package io.moestream.benchmarks;

import io.moestream.runtime.constrain.Constraint;
import io.moestream.runtime.constrain.Grammar;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.sched.Batch;
import io.moestream.runtime.sched.Request;
import io.moestream.runtime.sched.StepPlanner;
import io.moestream.runtime.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Structured-output costs on one model (docs/structured-output.md): compile time of a realistic
 * extraction schema (cold, a distinct text each time so the cache does not answer), the mask per
 * decoding step on the model's vocabulary when the automaton state is new (trie walk) and when it
 * was seen before (cached), and decode tokens/s with and without the constraint at batch 1 and 16,
 * the two runs alternated so both see the same machine load: the best tok/s of each, and the median over
 * the pairs of constrained/unconstrained (each pair run back to back). Prints one JSON line.
 *
 * <p>Usage: {@code StructuredOutputBench MODEL.gguf [genTokens]}
 */
public final class StructuredOutputBench {

    static final String EXTRACTION = """
            {"type":"object","properties":{
              "sentiment":{"enum":["positive","negative","neutral","mixed"]},
              "summary":{"type":"string","maxLength":200},
              "products":{"type":"array","maxItems":10,"items":{"type":"object","properties":{
                 "name":{"type":"string","minLength":1,"maxLength":60},
                 "price":{"type":"number","minimum":0,"maximum":100000},
                 "quantity":{"type":"integer","minimum":1,"maximum":1000},
                 "category":{"enum":["hardware","software","service","other"]}},
                 "required":["name","category"]}},
              "customer":{"$ref":"#/$defs/person"},
              "language":{"type":"string","pattern":"^[a-z]{2}(-[A-Z]{2})?$"},
              "urgent":{"type":"boolean"}},
             "required":["sentiment","products"],
             "$defs":{"person":{"type":"object","properties":{
                 "name":{"type":"string","maxLength":80},
                 "email":{"type":["string","null"],"maxLength":120},
                 "age":{"type":"integer","minimum":0,"maximum":150}},"required":["name"]}}}""";

    /** Alternated constrained/unconstrained pairs per batch size; each pair's ratio is taken in the same seconds. */
    private static final int PAIRS = 6;
    private static int genTokens;

    private StructuredOutputBench() {}

    public static void main(String[] args) throws Exception {
        Model model = Model.load(Path.of(args[0]));
        genTokens = args.length > 1 ? Integer.parseInt(args[1]) : 48;
        int gen = genTokens;
        Tokenizer tok = model.tokenizer();
        StringBuilder json = new StringBuilder("{\"model\":\"" + model.name() + "\",\"vocab\":" + tok.vocabSize());

        double[] compile = new double[7];
        for (int i = 0; i < compile.length; i++) {
            String text = EXTRACTION.replaceFirst("\\{", "{\"\\$comment\":\"run " + System.nanoTime() + "\",");
            long t0 = System.nanoTime();
            Grammar.jsonSchema(text);
            compile[i] = (System.nanoTime() - t0) / 1e6;
        }
        json.append(String.format(Locale.ROOT, ",\"compile_ms_median\":%.2f,\"nfa_states\":%d", median(compile),
                Grammar.jsonSchema(EXTRACTION).nfaStates()));

        // masks along one greedy answer: the first pass meets each state for the first time
        Grammar cold = Grammar.jsonSchema(EXTRACTION.replaceFirst("\\{", "{\"\\$comment\":\"mask " + System.nanoTime() + "\","));
        int[] answer = answer(model, Grammar.jsonSchema(EXTRACTION), gen);
        double[] first = maskPass(cold, tok, answer);
        double[] cached = maskPass(cold, tok, answer);
        json.append(String.format(Locale.ROOT, ",\"mask_steps\":%d,\"mask_new_state_us_mean\":%.1f,\"mask_new_state_us_max\":%.1f"
                + ",\"mask_cached_us_mean\":%.2f,\"dfa_states\":%d", answer.length, mean(first), max(first), mean(cached),
                cold.dfaStates()));

        for (int batch : new int[] {1, 16}) {
            double[] free = new double[PAIRS];
            double[] constrained = new double[PAIRS];
            double[] ratio = new double[PAIRS];
            // the unconstrained runs sample exactly as many tokens per sequence as the constrained ones
            // do (some constrained answers end early; seeded, so every constrained run gives the same
            // answers), so both run the same steps and batch sizes
            List<Request> warm = requests(model, Grammar.jsonSchema(EXTRACTION), batch, null);
            decode(model, warm);
            int[] counts = warm.stream().mapToInt(Request::sampled).toArray();
            long tokens = Arrays.stream(counts).sum();
            for (int rep = 0; rep < PAIRS; rep++) {
                // alternate which of the pair runs first, so neither gains from the order
                if (rep % 2 == 0) {
                    constrained[rep] = decode(model, requests(model, Grammar.jsonSchema(EXTRACTION), batch, null));
                    free[rep] = decode(model, requests(model, null, batch, counts));
                } else {
                    free[rep] = decode(model, requests(model, null, batch, counts));
                    constrained[rep] = decode(model, requests(model, Grammar.jsonSchema(EXTRACTION), batch, null));
                }
                ratio[rep] = constrained[rep] / free[rep];
            }
            json.append(String.format(Locale.ROOT, ",\"b%d_tokens\":%d,\"b%d_free_tok_s\":%.1f,\"b%d_constrained_tok_s\":%.1f"
                    + ",\"b%d_ratio_median\":%.3f", batch, tokens, batch, max(free), batch, max(constrained), batch,
                    median(ratio)));
        }
        System.out.println(json.append('}'));
    }

    private static int[] answer(Model model, Grammar g, int gen) {
        List<Request> r = requests(model, g, 1, null);
        Batch.run(new Engine(model), StepPlanner.singleTenant(256, 1), r);
        return r.get(0).result().tokenIds();
    }

    /** Microseconds of each {@code allowed()} call along {@code ids}. */
    private static double[] maskPass(Grammar g, Tokenizer tok, int[] ids) {
        Constraint c = g.start(tok);
        double[] us = new double[ids.length];
        for (int i = 0; i < ids.length; i++) {
            long t0 = System.nanoTime();
            c.allowed();
            us[i] = (System.nanoTime() - t0) / 1e3;
            c.accept(ids[i]);
        }
        return us;
    }

    /** Sampled tokens per second of a batch (short prompts, so the time is decode). */
    private static double decode(Model model, List<Request> requests) {
        long t0 = System.nanoTime();
        Batch.run(new Engine(model), StepPlanner.singleTenant(256, requests.size()), requests);
        double s = (System.nanoTime() - t0) / 1e9;
        return requests.stream().mapToLong(Request::sampled).sum() / s;
    }

    /** {@code batch} requests, constrained by {@code g} (null: none, EOS ignored), of {@code gen} or {@code counts[i]} tokens. */
    private static List<Request> requests(Model model, Grammar g, int batch, int[] counts) {
        List<Request> out = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            int[] prompt = model.tokenizer().encodePrompt("Review " + i + ": the keyboard");
            int max = counts == null ? genTokens : counts[i];
            SamplingParams params = new SamplingParams(max, 0.7f, 0, 1f, 100 + i, List.of());
            Request r = Request.generate("", new GenerationRequest(model.newCache(), prompt, params, false), model.tokenizer());
            out.add(g == null ? r.ignoreEos() : r.constrain(g.start(model.tokenizer())));
        }
        return out;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static double mean(double[] v) {
        return Arrays.stream(v).average().orElse(0);
    }

    private static double max(double[] v) {
        return Arrays.stream(v).max().orElse(0);
    }
}
