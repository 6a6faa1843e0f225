package io.moestream.operators;

import io.moestream.runtime.constrain.Grammar;
import io.moestream.runtime.model.DefaultModel;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.sched.Request;
import io.moestream.runtime.sched.StepPlanner;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One engine per configuration per JVM (TaskManager), shared by every caller there: prompts
 * {@linkplain #submit submitted} from any thread join the continuous-batching steps of one step
 * thread, which runs the same {@link StepPlanner} and {@link Request} lifecycle as the
 * {@link InferenceOperator} and completes each prompt's future when it finishes. The SQL model
 * provider's {@code asyncPredict} calls of all subtasks use it, so a step batches every row in
 * flight in the TaskManager. Stateless prompts only (no context). Reference counted: the last
 * {@link #release} stops the thread and frees the runner.
 */
public final class SharedEngine {

    private static final Logger LOG = LoggerFactory.getLogger(SharedEngine.class);
    private static final Map<InferenceConfig, SharedEngine> ENGINES = new HashMap<>();
    private static final String TENANT = "sql";

    /** A prompt's answer. */
    public record Answer(String text, String finishReason, int promptTokens, int completionTokens) {}

    /** A prompt that cannot be answered (empty, too long for the context window): the row's fault. */
    public static final class BadPromptException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        public BadPromptException(String message) {
            super(message);
        }
    }

    private record Job(String prompt, SamplingParams params, Grammar grammar, CompletableFuture<Answer> answer) {}

    private record Run(Job job, Request request) {}

    private final InferenceConfig config;
    private final Model model;
    private final StepRunner runner;
    private final StepPlanner planner;
    private final LinkedBlockingQueue<Job> incoming = new LinkedBlockingQueue<>();
    private final Thread thread;
    private int users;
    private volatile boolean stopped;
    private volatile long steps;

    private SharedEngine(InferenceConfig config) throws IOException {
        this.config = config;
        this.model = SharedModels.get(InferenceConfig.BUNDLED_MODEL.equals(config.modelPath())
                ? DefaultModel.path() : Path.of(config.modelPath()));
        model.newCache(config.kvState().kvCodec(), config.kvState().blockTokens()); // fails now if they do not fit
        this.runner = RunnerSelection.open(config.backend(), 0, model, config);
        this.planner = new StepPlanner(config.tokenBudget(), config.attentionBudget(), config.maxSequences(), 1.0);
        this.thread = new Thread(this::loop, "moestream-shared-engine");
        thread.setDaemon(true);
        thread.start();
    }

    /** The engine for {@code config}, started on first use; pair with {@link #release}. */
    public static SharedEngine acquire(InferenceConfig config) throws IOException {
        synchronized (ENGINES) {
            SharedEngine engine = ENGINES.get(config);
            if (engine == null) {
                engine = new SharedEngine(config);
                ENGINES.put(config, engine);
            }
            engine.users++;
            return engine;
        }
    }

    /** One user is done; the last stops the step thread (prompts still queued fail). */
    public void release() {
        synchronized (ENGINES) {
            if (--users > 0) {
                return;
            }
            ENGINES.remove(config);
        }
        stopped = true;
        thread.interrupt();
    }

    /** The model's name ({@code general.name}). */
    public String modelName() {
        return model.name();
    }

    /** Steps run so far (for tests and benchmarks: rows per step show the batching). */
    public long steps() {
        return steps;
    }

    /**
     * Queues a prompt for the next step. The future completes on the step thread with the answer, or
     * with a {@link BadPromptException} (the prompt's fault) or another exception (the model failed).
     */
    public CompletableFuture<Answer> submit(String prompt, SamplingParams params) {
        return submit(prompt, params, null);
    }

    /**
     * Queues a prompt whose answer is constrained by {@code grammar} (structured output; null: none):
     * a {@code STOP} answer is complete, a {@code LENGTH} one a valid prefix.
     */
    public CompletableFuture<Answer> submit(String prompt, SamplingParams params, Grammar grammar) {
        CompletableFuture<Answer> answer = new CompletableFuture<>();
        if (stopped) {
            answer.completeExceptionally(new IllegalStateException("the shared engine is stopped"));
            return answer;
        }
        incoming.add(new Job(prompt, params, grammar, answer));
        return answer;
    }

    private void loop() {
        List<Run> running = new ArrayList<>();
        List<Run> waiting = new ArrayList<>();
        try {
            while (!stopped) {
                if (running.isEmpty() && waiting.isEmpty()) {
                    Job job = incoming.poll(100, TimeUnit.MILLISECONDS);
                    if (job != null) {
                        prepare(job, waiting);
                    }
                }
                List<Job> arrived = new ArrayList<>();
                incoming.drainTo(arrived);
                arrived.forEach(job -> prepare(job, waiting));
                int admit = planner.admissions(requests(running), Map.of(TENANT, waiting.size())).size();
                for (int i = 0; i < admit; i++) {
                    running.add(waiting.remove(0));
                }
                if (!running.isEmpty()) {
                    step(running);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            LOG.error("the shared engine's step thread failed", e);
            running.forEach(r -> r.job.answer.completeExceptionally(e));
            waiting.forEach(r -> r.job.answer.completeExceptionally(e));
            stopped = true;
        } finally {
            IllegalStateException gone = new IllegalStateException("the shared engine stopped");
            running.forEach(r -> r.job.answer.completeExceptionally(gone));
            waiting.forEach(r -> r.job.answer.completeExceptionally(gone));
            incoming.forEach(j -> j.answer.completeExceptionally(gone));
            runner.close();
        }
    }

    /** Tokenizes a prompt and checks it fits; a bad prompt's future fails at once. */
    private void prepare(Job job, List<Run> waiting) {
        try {
            if (job.prompt == null) {
                throw new BadPromptException("the prompt is null");
            }
            int[] ids = model.tokenizer().encodePrompt(job.prompt);
            if (ids.length == 0) {
                throw new BadPromptException("the prompt has no tokens");
            }
            int room = model.contextLength() - ids.length;
            if (room < 1) {
                throw new BadPromptException("the prompt is " + ids.length + " tokens, but the context window is "
                        + model.contextLength() + " and the answer needs at least one more");
            }
            SamplingParams p = job.params;
            SamplingParams params = new SamplingParams(Math.min(p.maxTokens(), room), p.temperature(), p.topK(), p.topP(),
                    p.seed(), p.stop());
            KvCache cache = model.newCache(config.kvState().kvCodec(), config.kvState().blockTokens());
            Request request = Request.generate(TENANT, new GenerationRequest(cache, ids, params, false), model.tokenizer());
            if (job.grammar != null) {
                request.constrain(job.grammar.start(model.tokenizer()));
            }
            waiting.add(new Run(job, request));
        } catch (RuntimeException e) {
            job.answer.completeExceptionally(e);
        }
    }

    private static List<Request> requests(List<Run> running) {
        List<Request> requests = new ArrayList<>(running.size());
        for (Run r : running) {
            requests.add(r.request());
        }
        return requests;
    }

    private void step(List<Run> running) {
        int[] tokens = planner.allocate(requests(running));
        List<Run> stepped = new ArrayList<>();
        List<StepRunner.Chunk> chunks = new ArrayList<>();
        int total = 0;
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] > 0) {
                var s = running.get(i).request.chunk(tokens[i]);
                stepped.add(running.get(i));
                chunks.add(new StepRunner.Chunk(s.cache(), s.tokens(), s.logits()));
                total += tokens[i];
            }
        }
        if (chunks.isEmpty()) {
            return;
        }
        long started = System.nanoTime();
        StepRunner.Outcome outcome = runner.step(chunks);
        long nanos = System.nanoTime() - started;
        steps++;
        List<Run> done = new ArrayList<>();
        for (int j = 0; j < chunks.size(); j++) {
            Run r = stepped.get(j);
            RuntimeException failure = outcome.failures()[j];
            if (failure != null) {
                runner.detach(r.request.cache(), false);
                r.job.answer.completeExceptionally(failure);
                done.add(r);
                continue;
            }
            int n = chunks.get(j).tokens().length;
            r.request.computed(n, outcome.logits()[j], nanos * n / total);
            if (r.request.finished()) {
                runner.detach(r.request.cache(), false);
                GenerationResult result = r.request.result();
                r.job.answer.complete(new Answer(result.text(), result.finishReason().name(), r.request.promptTokens(),
                        result.tokenIds().length));
                done.add(r);
            }
        }
        running.removeAll(done);
    }
}
