package io.moestream.benchmarks;

import io.moestream.jobs.JobOptions;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.model.Engine;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.tokenizer.Tokenizer;
import io.moestream.schemas.Document;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The request mix on one {@link Engine}, batched the way the inference operator batches (arrival
 * order, up to {@code batchSize} requests, at most one turn per conversation per batch), with the
 * operator's token rules (BOS before a new context only) and KV blocks (the default codec and block
 * size of {@link JobOptions}). Caches stay in memory: no state backend,
 * no serialization, no Kafka, no Flink. Documents are prefilled before the clock starts.
 */
final class EngineRun {

    record Result(double seconds, double cpuSeconds, double jitSeconds, long generatedTokens, long promptTokens, int requests,
                  List<Integer> batchSizes) {}

    static Result run(Model model, RequestMix mix, int batchSize) {
        // the operator's KV blocks (codec and block size), so both runs do the same attention work
        KvCodec codec = KvCodec.parse(JobOptions.KV_CODEC.defaultValue());
        int blockTokens = JobOptions.KV_BLOCK_TOKENS.defaultValue();
        Engine engine = new Engine(model);
        Tokenizer tokenizer = model.tokenizer();
        Map<String, KvCache> documents = new HashMap<>();
        for (Document part : mix.documents()) {
            String key = part.getTenant() + "/" + part.getDocumentId();
            KvCache cache = part.getPart() == 0 ? model.newCache(codec, blockTokens) : documents.get(key);
            int[] ids = part.getPart() == 0 ? tokenizer.encodePrompt(part.getText()) : tokenizer.encode(part.getText(), false);
            engine.forward(cache, ids);
            documents.put(key, cache);
        }
        Map<String, byte[]> documentBytes = new HashMap<>();
        documents.forEach((k, v) -> documentBytes.put(k, v.toBytes()));

        Map<String, KvCache> conversations = new HashMap<>();
        LinkedList<Prompt> queue = new LinkedList<>(mix.prompts());
        List<Integer> batchSizes = new ArrayList<>();
        long generated = 0;
        long promptTokens = 0;
        long start = System.nanoTime();
        long cpuStart = ProcessCpu.nanos();
        long jitStart = ProcessCpu.compilerNanos();
        while (!queue.isEmpty()) {
            List<GenerationRequest> batch = new ArrayList<>();
            List<String> batchConversations = new ArrayList<>();
            Set<String> keysInBatch = new HashSet<>();
            for (Iterator<Prompt> it = queue.iterator(); it.hasNext() && batch.size() < batchSize; ) {
                Prompt p = it.next();
                String key = RequestMix.key(p);
                if (p.getMode() == PromptMode.CONVERSATION && !keysInBatch.add(key)) {
                    continue; // the next turn of a conversation needs this turn's cache: next batch
                }
                it.remove();
                KvCache cache;
                int[] ids;
                switch (p.getMode()) {
                    case DOCUMENT -> {
                        cache = model.cacheFromBytes(documentBytes.get(key));
                        ids = tokenizer.encode(p.getText(), false);
                    }
                    case CONVERSATION -> {
                        KvCache existing = conversations.get(key);
                        cache = existing == null ? model.newCache(codec, blockTokens) : existing;
                        ids = existing == null ? tokenizer.encodePrompt(p.getText()) : tokenizer.encode(p.getText(), false);
                        batchConversations.add(key);
                        conversations.put(key, cache);
                    }
                    default -> {
                        cache = model.newCache(codec, blockTokens);
                        ids = tokenizer.encodePrompt(p.getText());
                    }
                }
                int room = model.contextLength() - cache.length() - ids.length;
                int maxTokens = Math.min(p.getMaxTokens(), room);
                if (maxTokens < 1) {
                    continue; // the operator answers CONTEXT_OVERFLOW; not generation work
                }
                promptTokens += ids.length;
                batch.add(new GenerationRequest(cache, ids, new SamplingParams(maxTokens, p.getTemperature(),
                        p.getTopK(), p.getTopP(), p.getSeed(), p.getStop()), p.getMode() == PromptMode.CONVERSATION));
            }
            if (batch.isEmpty()) {
                continue;
            }
            for (GenerationResult r : engine.generate(batch)) {
                generated += r.tokenIds().length;
            }
            batchSizes.add(batch.size());
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return new Result(seconds, (ProcessCpu.nanos() - cpuStart) / 1e9, (ProcessCpu.compilerNanos() - jitStart) / 1e9, generated, promptTokens, mix.prompts().size(), batchSizes);
    }

    private EngineRun() {}
}
