package io.moestream.jobs.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moestream.runtime.model.DefaultModel;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.model.StepPlan;
import io.moestream.runtime.model.StepResult;
import io.moestream.runtime.sampler.Sampler;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.sched.Schedule;
import io.moestream.runtime.sched.Scheduler;
import io.moestream.runtime.sched.SchedulerConfig;
import io.moestream.runtime.tokenizer.Detokenizer;
import io.moestream.runtime.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;

import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code moestream generate}: one prompt through the pure-Java runtime, no Flink or Kafka. */
@Command(
        name = "generate",
        mixinStandardHelpOptions = true,
        description = {
            "Generates text for one prompt with the model runtime (no Flink, no Kafka).",
            "Prints the generated text, or with --json one JSON object: prompt_ids, generated_ids, text"
                    + " and, with --logits K, top_logits.",
            "With --prompts-file all prompts run as one continuous batch and each prints one such JSON line, in file order."
        })
public final class GenerateCommand implements Callable<Integer> {

    @Spec CommandSpec spec;

    @Option(names = "--model", paramLabel = "FILE",
            description = "GGUF model file (default: the bundled trained-moe-q8_0 demo model).")
    Path model;

    static final class PromptInput {
        @Option(names = "--prompt", paramLabel = "TEXT", required = true, description = "Prompt text (BOS added as the model asks).")
        String text;

        @Option(names = "--prompt-ids", paramLabel = "IDS", split = ",", required = true,
                description = "Prompt as comma-separated token ids, used as given (e.g. 766,84,444).")
        int[] ids;

        @Option(names = "--prompts-file", paramLabel = "FILE", required = true,
                description = "JSON list of prompts, each a string (text, BOS added as the model asks) or a list of token ids."
                        + " Runs them as one batch and prints one JSON line per prompt (the --json format), in file order;"
                        + " each line equals what --json prints for that prompt alone.")
        Path file;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    PromptInput prompt;

    @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "32", description = "Most tokens to generate (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0",
            description = "Sampling temperature; 0 = greedy, ties to the lowest id (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Random seed; the same seed replays the same tokens (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "0", description = "Keep the K most likely tokens; 0 = off (default).")
    int topK;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "1", description = "Nucleus sampling mass in (0, 1]; 1 = off (default).")
    float topP;

    @Option(names = "--json", description = "Print one JSON object instead of the text.")
    boolean json;

    @Option(names = "--logits", paramLabel = "K", defaultValue = "0",
            description = "With --json: add top_logits, the K highest [id, logit] pairs at the last prompt position and after each generated token.")
    int logitsK;

    @Option(names = "--ignore-eos",
            description = "Keep generating after the end-of-sequence token (it is then part of generated_ids), as the"
                    + " llama.cpp goldens do, so --max-tokens tokens always come out. Default: EOS stops.")
    boolean ignoreEos;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Path file = model != null ? CliSupport.existingFile(model, "--model") : DefaultModel.path();
        Model m;
        try {
            m = Model.load(file);
        } catch (IOException e) {
            err.println("cannot load model " + file + ": " + e.getMessage());
            err.println("--model must be a GGUF file of a supported architecture (llama, qwen3moe, qwen2moe, bailingmoe2).");
            return 1;
        }
        try (m) {
            if (prompt.file != null) {
                return runBatch(m, readPrompts(m, CliSupport.existingFile(prompt.file, "--prompts-file")), out);
            }
            Tokenizer tok = m.tokenizer();
            int[] promptIds = prompt.ids != null ? prompt.ids : tok.encodePrompt(prompt.text);
            checkArguments(m, promptIds);
            Sampler sampler;
            try {
                sampler = new Sampler(new SamplingParams(maxTokens, temperature, topK, topP, seed, List.of()));
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), e.getMessage());
            }

            Engine engine = new Engine(m);
            KvCache cache = m.newCache();
            Detokenizer text = new Detokenizer(tok);
            List<Integer> generated = new ArrayList<>();
            List<float[]> positions = new ArrayList<>();
            float[] logits = engine.forward(cache, promptIds);
            int printed = 0;
            while (true) {
                if (logitsK > 0) {
                    positions.add(logits);
                }
                int next = sampler.sample(logits);
                if (next == tok.eosId() && !ignoreEos) {
                    break;
                }
                generated.add(next);
                text.add(next);
                if (!json) {
                    String sofar = text.text();
                    out.print(sofar.substring(printed));
                    out.flush();
                    printed = sofar.length();
                }
                if (generated.size() == maxTokens) {
                    break;
                }
                logits = engine.forward(cache, new int[] {next});
            }
            if (json) {
                out.println(toJson(promptIds, generated, text.finish(), positions));
            } else {
                out.println(text.finish().substring(printed));
            }
            out.flush();
            return 0;
        }
    }

    /**
     * The batch path: a {@link Scheduler} plans continuous-batching steps (chunked prefill mixed
     * with decode tokens), the engine runs them, and each prompt samples exactly as the single-prompt
     * path does (same options, same seed), so its line equals a {@code --json} run of it alone.
     */
    private int runBatch(Model m, List<int[]> prompts, PrintWriter out) {
        for (int i = 0; i < prompts.size(); i++) {
            checkArguments(m, prompts.get(i), "--prompts-file entry " + i);
        }
        Tokenizer tok = m.tokenizer();
        int n = prompts.size();
        Scheduler scheduler = new Scheduler(new SchedulerConfig(Math.max(256, n), n));
        Engine engine = new Engine(m);
        List<BatchSequence> seqs = new ArrayList<>();
        for (int[] ids : prompts) {
            scheduler.add(ids.length);
            try {
                seqs.add(new BatchSequence(ids, m.newCache(), new Sampler(new SamplingParams(maxTokens, temperature, topK, topP, seed, List.of())),
                        new Detokenizer(tok)));
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), e.getMessage());
            }
        }
        while (scheduler.hasWork()) {
            Schedule schedule = scheduler.schedule();
            List<StepPlan.Sequence> plan = new ArrayList<>();
            for (Schedule.Chunk c : schedule.chunks()) {
                BatchSequence s = seqs.get(c.sequence());
                plan.add(new StepPlan.Sequence(s.cache, s.inputs(c.start(), c.length()), c.reachesEnd()));
            }
            StepResult result = engine.step(new StepPlan(plan));
            Set<Integer> finished = new HashSet<>();
            for (int i = 0; i < plan.size(); i++) {
                Schedule.Chunk c = schedule.chunks().get(i);
                if (!c.reachesEnd()) {
                    continue;
                }
                BatchSequence s = seqs.get(c.sequence());
                float[] logits = result.logits(i);
                if (logitsK > 0) {
                    s.positions.add(logits);
                }
                int next = s.sampler.sample(logits);
                if (next == tok.eosId() && !ignoreEos) {
                    finished.add(c.sequence());
                    continue;
                }
                s.generated.add(next);
                s.text.add(next);
                if (s.generated.size() == maxTokens) {
                    finished.add(c.sequence());
                }
            }
            scheduler.update(schedule, finished);
        }
        for (BatchSequence s : seqs) {
            out.println(toJson(s.prompt, s.generated, s.text.finish(), s.positions));
        }
        out.flush();
        return 0;
    }

    /** One prompt of the batch: its cache, sampler and output so far. */
    private static final class BatchSequence {
        final int[] prompt;
        final KvCache cache;
        final Sampler sampler;
        final Detokenizer text;
        final List<Integer> generated = new ArrayList<>();
        final List<float[]> positions = new ArrayList<>();

        BatchSequence(int[] prompt, KvCache cache, Sampler sampler, Detokenizer text) {
            this.prompt = prompt;
            this.cache = cache;
            this.sampler = sampler;
            this.text = text;
        }

        /** Tokens {@code [start, start + length)} of prompt + generated (each generated token is fed back). */
        int[] inputs(int start, int length) {
            int[] out = new int[length];
            for (int i = 0; i < length; i++) {
                int p = start + i;
                out[i] = p < prompt.length ? prompt[p] : generated.get(p - prompt.length);
            }
            return out;
        }
    }

    /** Reads the JSON list: each entry a string (encoded as a prompt) or a list of token ids (used as given). */
    private List<int[]> readPrompts(Model m, Path file) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new ParameterException(spec.commandLine(), "--prompts-file " + file + " is not valid JSON: " + e.getMessage());
        }
        if (root == null || !root.isArray() || root.isEmpty()) {
            throw new ParameterException(spec.commandLine(), "--prompts-file " + file
                    + " must hold a non-empty JSON list of prompts (strings or lists of token ids)");
        }
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < root.size(); i++) {
            JsonNode e = root.get(i);
            if (e.isTextual()) {
                prompts.add(m.tokenizer().encodePrompt(e.asText()));
            } else if (e.isArray()) {
                int[] ids = new int[e.size()];
                for (int j = 0; j < ids.length; j++) {
                    if (!e.get(j).canConvertToInt() || !e.get(j).isIntegralNumber()) {
                        throw new ParameterException(spec.commandLine(), "--prompts-file entry " + i + ": element " + j
                                + " is not a token id: " + e.get(j));
                    }
                    ids[j] = e.get(j).asInt();
                }
                prompts.add(ids);
            } else {
                throw new ParameterException(spec.commandLine(), "--prompts-file entry " + i
                        + " must be a string or a list of token ids, got " + e.getNodeType());
            }
        }
        return prompts;
    }

    private void checkArguments(Model m, int[] promptIds) {
        checkArguments(m, promptIds, "--prompt-ids");
    }

    /** {@code what} names the prompt in messages (the option, or the entry of --prompts-file). */
    private void checkArguments(Model m, int[] promptIds, String what) {
        if (promptIds.length == 0) {
            throw new ParameterException(spec.commandLine(), what.startsWith("--prompts-file")
                    ? what + " is empty" : "the prompt is empty: give --prompt TEXT or --prompt-ids 1,2,3");
        }
        int vocab = m.tokenizer().vocabSize();
        for (int id : promptIds) {
            if (id < 0 || id >= vocab) {
                throw new ParameterException(spec.commandLine(),
                        what + ": token id " + id + " is outside the vocabulary 0.." + (vocab - 1) + " of " + m.name());
            }
        }
        if (maxTokens <= 0) {
            throw new ParameterException(spec.commandLine(), "--max-tokens must be > 0, got " + maxTokens);
        }
        if ((long) promptIds.length + maxTokens > m.contextLength()) {
            throw new ParameterException(spec.commandLine(), (what.startsWith("--prompts-file") ? what + ": " : "") + "prompt (" + promptIds.length + " tokens) + --max-tokens "
                    + maxTokens + " exceeds the context length " + m.contextLength() + " of " + m.name());
        }
        if (logitsK < 0 || logitsK > vocab) {
            throw new ParameterException(spec.commandLine(), "--logits must be in 0.." + vocab + ", got " + logitsK);
        }
        if (logitsK > 0 && !json && prompt.file == null) {
            throw new ParameterException(spec.commandLine(), "--logits needs --json");
        }
    }

    private String toJson(int[] promptIds, List<Integer> generated, String text, List<float[]> positions) {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        ArrayNode p = root.putArray("prompt_ids");
        Arrays.stream(promptIds).forEach(p::add);
        ArrayNode g = root.putArray("generated_ids");
        generated.forEach(g::add);
        root.put("text", text);
        if (logitsK > 0) {
            ArrayNode all = root.putArray("top_logits");
            for (float[] logits : positions) {
                ArrayNode pos = all.addArray();
                for (int id : topIds(logits, logitsK)) {
                    pos.addArray().add(id).add(logits[id]);
                }
            }
        }
        try {
            return mapper.writeValueAsString(root);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The k ids with the highest logits, highest first, ties to the lower id. */
    static int[] topIds(float[] logits, int k) {
        Integer[] idx = new Integer[logits.length];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = i;
        }
        Arrays.sort(idx, (a, b) -> Float.compare(logits[b], logits[a]));
        int[] out = new int[k];
        for (int i = 0; i < k; i++) {
            out[i] = idx[i];
        }
        return out;
    }
}
