package io.moestream.jobs.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moestream.runtime.arch.Architecture;
import io.moestream.runtime.constrain.Grammar;
import io.moestream.runtime.constrain.UnsupportedSchemaException;
import io.moestream.runtime.model.DefaultModel;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.sched.Batch;
import io.moestream.runtime.sched.Request;
import io.moestream.runtime.sched.StepPlanner;

import java.io.IOException;
import java.nio.file.Files;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

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
            "With --prompts-file all prompts run as one continuous batch and each prints one such JSON line, in file order.",
            "With --json-schema, --regex or --choice the answer is constrained token by token (docs/structured-output.md):"
                    + " when it ends with EOS it is compact JSON valid against the schema, a match of the regex, or one of the choices."
        })
public final class GenerateCommand implements Callable<Integer> {

    @Spec CommandSpec spec;

    @Option(names = "--model", paramLabel = "FILE",
            description = "GGUF model file (default: the bundled trained-moe-q4_k_m demo model).")
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

        @Option(names = "--chat", required = true,
                description = "The prompt is a conversation (--system, --message, --messages) rendered with the model's"
                        + " chat template (tokenizer.chat_template) and add_generation_prompt; special tokens in the"
                        + " rendering become their ids, and every end-of-generation token stops.")
        boolean chat;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    PromptInput prompt;

    @Option(names = "--system", paramLabel = "TEXT", description = "With --chat: a system message before the others.")
    String system;

    @Option(names = "--message", paramLabel = "ROLE=TEXT",
            description = "With --chat: one message (repeat for several, in order), e.g. --message user=Hello; roles system,"
                    + " user, assistant, tool.")
    List<String> messages = new ArrayList<>();

    @Option(names = "--messages", paramLabel = "FILE",
            description = "With --chat: a JSON list of {\"role\": ..., \"content\": ...} messages, after --system and before --message.")
    Path messagesFile;

    @Option(names = "--chat-template-kwargs", paramLabel = "JSON",
            description = "With --chat: extra template variables as a JSON object of booleans, numbers and strings,"
                    + " e.g. '{\"enable_thinking\": false}' (as Prompt.chat_template_kwargs).")
    String chatTemplateKwargs;

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

    static final class Structured {
        @Option(names = "--json-schema", paramLabel = "FILE", required = true,
                description = "Constrain the answer to compact JSON valid against this JSON Schema (the supported subset:"
                        + " docs/structured-output.md).")
        Path schema;

        @Option(names = "--regex", paramLabel = "REGEX", required = true,
                description = "Constrain the answer to a whole match of this regular expression (ECMA syntax subset).")
        String regex;

        @Option(names = "--choice", paramLabel = "TEXT", split = ",", required = true,
                description = "Constrain the answer to exactly one of these comma-separated choices.")
        List<String> choices;
    }

    @ArgGroup(exclusive = true, multiplicity = "0..1")
    Structured structured;

    @Option(names = "--ignore-eos",
            description = "Keep generating after end-of-generation tokens (they are then part of generated_ids), as the"
                    + " llama.cpp goldens do, so --max-tokens tokens always come out. Default: EOS, EOT, EOM and the"
                    + " model's end-of-turn tokens (<|im_end|>, <|eot_id|>, ...) stop.")
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
            err.println("--model must be a GGUF file of a supported architecture ("
                    + Architecture.ALL.stream().map(Architecture::name).collect(Collectors.joining(", ")) + ").");
            return 1;
        }
        try (m) {
            List<Map<String, Object>> conversation = chatMessages();
            if (prompt.file != null) {
                return runPrompts(m, readPrompts(m, CliSupport.existingFile(prompt.file, "--prompts-file")), out);
            }
            int[] promptIds = prompt.chat ? ChatInput.encode(m, conversation, ChatInput.kwargs(chatTemplateKwargs, spec), spec)
                    : prompt.ids != null ? prompt.ids : m.tokenizer().encodePrompt(prompt.text);
            checkArguments(m, promptIds);
            return run(m, List.of(promptIds), out, !json);
        }
    }

    private List<Map<String, Object>> chatMessages() {
        if (!prompt.chat) {
            if (system != null || !messages.isEmpty() || messagesFile != null || chatTemplateKwargs != null) {
                throw new ParameterException(spec.commandLine(), "--system, --message, --messages and --chat-template-kwargs need --chat");
            }
            return List.of();
        }
        return ChatInput.messages(system, messagesFile == null ? null : CliSupport.existingFile(messagesFile, "--messages"),
                messages, spec);
    }

    private int runPrompts(Model m, List<int[]> prompts, PrintWriter out) {
        for (int i = 0; i < prompts.size(); i++) {
            checkArguments(m, prompts.get(i), "--prompts-file entry " + i);
        }
        return run(m, prompts, out, false);
    }

    /**
     * Runs the prompts as one batch of {@link Request}s ({@link Batch}: the shared step planner and
     * request lifecycle, chunked prefill mixed with decode tokens), each sampling with the same options
     * and seed, so a prompt's line equals a {@code --json} run of it alone. With {@code stream} (one
     * prompt, plain text) the text is printed as it is generated; otherwise one JSON line per prompt.
     */
    private int run(Model m, List<int[]> prompts, PrintWriter out, boolean stream) {
        SamplingParams params;
        try {
            params = new SamplingParams(maxTokens, temperature, topK, topP, seed, List.of());
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        Grammar grammar = grammar();
        List<Request> requests = new ArrayList<>();
        List<List<float[]>> positions = new ArrayList<>();
        int[] printed = new int[prompts.size()]; // characters streamed so far, per prompt
        for (int[] ids : prompts) {
            List<float[]> seen = new ArrayList<>();
            positions.add(seen);
            int index = requests.size();
            Request r = Request.generate("", new GenerationRequest(m.newCache(), ids, params, false), m.tokenizer());
            r.observer(new Request.Observer() {
                @Override
                public void logits(float[] logits) {
                    if (logitsK > 0) {
                        seen.add(logits);
                    }
                }

                @Override
                public void token(int id) {
                    if (stream && (!m.tokenizer().isEndOfGeneration(id) || ignoreEos)) {
                        String sofar = r.text();
                        out.print(sofar.substring(printed[index]));
                        out.flush();
                        printed[index] = sofar.length();
                    }
                }
            });
            if (grammar != null) {
                r.constrain(grammar.start(m.tokenizer()));
            }
            requests.add(ignoreEos ? r.ignoreEos() : r);
        }
        int n = prompts.size();
        Batch.run(new Engine(m), StepPlanner.singleTenant(Math.max(256, n), n), requests);
        for (int i = 0; i < n; i++) {
            GenerationResult result = requests.get(i).result();
            if (stream) {
                out.println(result.text().substring(Math.min(printed[i], result.text().length())));
            } else {
                List<Integer> generated = new ArrayList<>();
                Arrays.stream(result.tokenIds()).forEach(generated::add);
                out.println(toJson(prompts.get(i), generated, result.text(), positions.get(i)));
            }
        }
        out.flush();
        return 0;
    }

    /** The compiled constraint of --json-schema, --regex or --choice, or null without one. */
    private Grammar grammar() {
        if (structured == null) {
            return null;
        }
        if (ignoreEos) {
            throw new ParameterException(spec.commandLine(), "--ignore-eos cannot be combined with a constraint:"
                    + " a constrained answer ends with EOS once it is complete");
        }
        try {
            if (structured.schema != null) {
                Path file = CliSupport.existingFile(structured.schema, "--json-schema");
                return Grammar.jsonSchema(Files.readString(file));
            }
            return structured.regex != null ? Grammar.regex(structured.regex) : Grammar.choice(structured.choices);
        } catch (UnsupportedSchemaException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        } catch (IOException e) {
            throw new ParameterException(spec.commandLine(), "cannot read --json-schema " + structured.schema + ": " + e.getMessage());
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
