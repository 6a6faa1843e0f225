package io.moestream.operators;

import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * The test model and an engine of its own (a separately loaded {@link Model}, not the operator's
 * shared one), to compute what the operator must produce.
 */
final class Reference {

    /** A tiny Mixtral-style MoE model (random weights, 768-token vocabulary, context 2048), copied from the oracle. */
    static final Path MODEL_PATH = resource("/models/tiny-mixtral-q8_0.gguf");

    private static Reference instance;

    final Model model;
    final Engine engine;
    final Tokenizer tokenizer;

    private Reference(Model model) {
        this.model = model;
        this.engine = new Engine(model);
        this.tokenizer = model.tokenizer();
    }

    static synchronized Reference get() {
        if (instance == null) {
            try {
                instance = new Reference(Model.load(MODEL_PATH));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return instance;
    }

    static InferenceConfig config() {
        return InferenceConfig.defaults(MODEL_PATH.toString());
    }

    /** An empty cache as the operator makes one with the default configuration (int8 blocks of 32). */
    KvCache newCache() {
        KvStateConfig kv = KvStateConfig.defaults();
        return model.newCache(kv.kvCodec(), kv.blockTokens());
    }

    /** One request alone on its own engine. */
    GenerationResult run(KvCache cache, int[] promptIds, SamplingParams params, boolean commitAnswer) {
        return engine.generate(List.of(new GenerationRequest(cache, promptIds, params, commitAnswer))).get(0);
    }

    /** A STATELESS prompt: BOS + text on an empty cache, greedy. */
    GenerationResult stateless(String text, int maxTokens) {
        return run(newCache(), tokenizer.encodePrompt(text), SamplingParams.greedy(maxTokens), false);
    }

    /** A document prefilled part by part as the operator does (BOS only before part 0). */
    KvCache document(String... parts) {
        KvCache cache = newCache();
        for (int i = 0; i < parts.length; i++) {
            int[] ids = i == 0 ? tokenizer.encodePrompt(parts[i]) : tokenizer.encode(parts[i], false);
            if (ids.length > 0) {
                engine.forward(cache, ids);
            }
        }
        return cache;
    }

    /** A question about a prefilled document, greedy, on a copy of the document's cache. */
    GenerationResult ask(KvCache document, String question, int maxTokens) {
        return run(document.copy(), tokenizer.encode(question, false), SamplingParams.greedy(maxTokens), false);
    }

    static List<Integer> ids(GenerationResult result) {
        return Arrays.stream(result.tokenIds()).boxed().toList();
    }

    private static Path resource(String name) {
        URL url = Reference.class.getResource(name);
        if (url == null) {
            throw new IllegalStateException("missing test resource " + name);
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
