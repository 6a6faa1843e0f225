package io.moestream.runtime.model;

import io.moestream.runtime.sampler.Sampler;
import io.moestream.runtime.sched.Schedule;
import io.moestream.runtime.sched.Scheduler;
import io.moestream.runtime.sched.SchedulerConfig;
import io.moestream.runtime.tokenizer.Detokenizer;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One {@link Engine#generate} call: the loop that closes scheduler -> engine step -> sampling ->
 * scheduler. Each sequence samples from its own logits with its own {@link Sampler}, and a step's
 * arithmetic per token does not depend on the batch, so results equal running each request alone.
 */
final class Generation {

    /** Tokens per step; prompts longer than what is left of it are prefilled in chunks. */
    static final int TOKEN_BUDGET = 256;

    private final Engine engine;
    private final Model model;
    private final List<Sequence> seqs = new ArrayList<>();
    private final Scheduler scheduler;

    Generation(Engine engine, List<GenerationRequest> requests) {
        this.engine = engine;
        this.model = engine.model();
        Map<KvCache, Boolean> seen = new IdentityHashMap<>();
        for (int i = 0; i < requests.size(); i++) {
            GenerationRequest r = requests.get(i);
            if (seen.put(r.cache(), Boolean.TRUE) != null) {
                throw new IllegalArgumentException("requests " + i + " and an earlier one share a KV cache");
            }
            if (r.promptIds().length == 0) {
                throw new IllegalArgumentException("request " + i + " has an empty prompt");
            }
            if (r.params().maxTokens() <= 0) {
                throw new IllegalArgumentException("request " + i + ": maxTokens must be > 0, got " + r.params().maxTokens());
            }
            engine.checkFits(r.cache(), (long) r.promptIds().length + r.params().maxTokens(),
                    "request " + i + " (prompt " + r.promptIds().length + " + maxTokens " + r.params().maxTokens() + ")");
            for (int id : r.promptIds()) {
                if (id < 0 || id >= model.config().vocabSize()) {
                    throw new IllegalArgumentException("request " + i + ": token id " + id + " is outside the vocabulary 0.."
                            + (model.config().vocabSize() - 1));
                }
            }
        }
        int n = Math.max(1, requests.size());
        this.scheduler = new Scheduler(new SchedulerConfig(Math.max(TOKEN_BUDGET, n), n));
        for (GenerationRequest r : requests) {
            scheduler.add(r.promptIds().length);
            seqs.add(new Sequence(r, model));
        }
    }

    List<GenerationResult> run() {
        while (scheduler.hasWork()) {
            Schedule schedule = scheduler.schedule();
            List<StepPlan.Sequence> plan = new ArrayList<>();
            for (Schedule.Chunk ch : schedule.chunks()) {
                Sequence s = seqs.get(ch.sequence());
                plan.add(new StepPlan.Sequence(s.request.cache(), s.inputs(ch.start(), ch.length()),
                        ch.reachesEnd() && !s.feedingFinalToken));
            }
            long t0 = System.nanoTime();
            StepResult result = engine.step(new StepPlan(plan));
            long nanos = System.nanoTime() - t0;

            Set<Integer> finished = new HashSet<>();
            for (int i = 0; i < plan.size(); i++) {
                Schedule.Chunk ch = schedule.chunks().get(i);
                Sequence s = seqs.get(ch.sequence());
                long share = nanos * ch.length() / schedule.tokens();
                if (ch.start() < s.request.promptIds().length) {
                    s.prefillNanos += share;
                } else {
                    s.decodeNanos += share;
                }
                if (!ch.reachesEnd()) {
                    continue;
                }
                if (s.feedingFinalToken || !s.sample(result.logits(i))) {
                    finished.add(ch.sequence());
                }
            }
            scheduler.update(schedule, finished);
        }
        List<GenerationResult> out = new ArrayList<>(seqs.size());
        for (Sequence s : seqs) {
            out.add(s.result());
        }
        return out;
    }

    /** Decoding state of one request. */
    private static final class Sequence {
        final GenerationRequest request;
        final Sampler sampler;
        final Detokenizer text;
        final int eos;
        final List<Integer> ids = new ArrayList<>();
        int[] fed = new int[8]; // sampled tokens fed back as inputs
        int fedCount;
        boolean feedingFinalToken;
        FinishReason finish;
        String finalText;
        long prefillNanos;
        long decodeNanos;

        Sequence(GenerationRequest request, Model model) {
            this.request = request;
            this.sampler = new Sampler(request.params());
            this.text = new Detokenizer(model.tokenizer());
            this.eos = model.tokenizer().eosId();
        }

        /** Input tokens {@code [start, start + length)}: the prompt, then the fed-back samples. */
        int[] inputs(int start, int length) {
            int[] prompt = request.promptIds();
            int[] out = new int[length];
            for (int i = 0; i < length; i++) {
                int p = start + i;
                out[i] = p < prompt.length ? prompt[p] : fed[p - prompt.length];
            }
            return out;
        }

        /**
         * Samples the next token; returns whether it is to be fed (generation continues, or the
         * finished turn is committed to the cache).
         */
        boolean sample(float[] logits) {
            int token = sampler.sample(logits);
            if (token == eos) {
                finish = FinishReason.STOP;
                finalText = text.finish();
            } else {
                ids.add(token);
                text.add(token);
                String sofar = text.text();
                int cut = request.params().firstStop(sofar);
                if (cut >= 0) {
                    finish = FinishReason.STOP_SEQUENCE;
                    finalText = sofar.substring(0, cut);
                } else if (ids.size() >= request.params().maxTokens()) {
                    finish = FinishReason.LENGTH;
                    finalText = text.finish();
                }
            }
            if (finish != null && !request.commitAnswer()) {
                return false;
            }
            feedingFinalToken = finish != null;
            if (fedCount == fed.length) {
                fed = java.util.Arrays.copyOf(fed, fed.length * 2);
            }
            fed[fedCount++] = token;
            return true;
        }

        GenerationResult result() {
            return new GenerationResult(ids.stream().mapToInt(Integer::intValue).toArray(), finalText, finish,
                    prefillNanos, decodeNanos);
        }
    }
}
