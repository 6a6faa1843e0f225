package io.moestream.runtime.sched;

import io.moestream.runtime.constrain.Constraint;
import io.moestream.runtime.model.FinishReason;
import io.moestream.runtime.model.GenerationRequest;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.model.StepPlan;
import io.moestream.runtime.sampler.Sampler;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.tokenizer.Detokenizer;
import io.moestream.runtime.tokenizer.Tokenizer;
import java.util.Arrays;

/**
 * One request's lifecycle, the same for {@code generate}, {@code bench}, the Flink operator and
 * the benchmarks: prefill its prompt in the chunks the {@link StepPlanner} gives it, sample from
 * its own logits with its own seeded {@link Sampler}, feed each sampled token back, and stop by the
 * finish rules. It holds no engine: the caller puts {@link #chunk} into a step and reports the
 * outcome with {@link #computed}.
 *
 * <p>Finish rules, per sampled token: an end-of-generation token ends it ({@link FinishReason#STOP},
 * not part of the result; every one {@link Tokenizer#isEndOfGeneration} names: EOS, EOT, EOM,
 * {@code <|im_end|>} ...; unless {@code ignoreEos}), a stop sequence in the decoded text ends it
 * ({@link FinishReason#STOP_SEQUENCE}, text cut before it), {@code maxTokens} tokens end it
 * ({@link FinishReason#LENGTH}). With {@code commitAnswer} (a conversation turn) the final sampled
 * token is fed too, in the next step, so the cache ends holding the whole turn.
 *
 * <p>With a {@link Constraint} (structured output) the sampler sees only the tokens the constraint
 * allows and the constraint advances with each sampled token, so EOS ({@code STOP}) comes only
 * after a complete valid output and a {@code LENGTH} cut leaves a valid prefix.
 *
 * <p>A prefill-only request ({@link #prefill}: a document part) computes its tokens and ends
 * without sampling. Not thread-safe.
 */
public final class Request implements StepPlanner.Planned {

    /** Sees what a request samples from (e.g. {@code generate --json --top-logits}). */
    public interface Observer {
        /** The logits a token is sampled from. */
        default void logits(float[] logits) {}

        /** A sampled token, after it was added to the text (the end-of-generation token included when it ends the request). */
        default void token(int id) {}
    }

    private static final Observer NONE = new Observer() {};

    private final String tenant;
    private final KvCache cache;
    private final int[] promptIds;
    private final int cachedTokens;
    private final SamplingParams params; // null: prefill only
    private final Sampler sampler;
    private final Detokenizer text;
    private final Tokenizer tokenizer;
    private final boolean commitAnswer;
    private boolean ignoreEos;
    private Observer observer = NONE;
    private Constraint constraint; // null: unconstrained

    private int prefilled;
    private int computed; // tokens of this request computed into the cache
    private int[] ids = new int[16];
    private int generated;
    private int sampled;
    private int feed = -1; // the sampled token to compute next, or -1
    private boolean done;
    private FinishReason finish;
    private String finalText;
    private long prefillNanos;
    private long decodeNanos;

    private Request(String tenant, KvCache cache, int[] promptIds, SamplingParams params, Tokenizer tokenizer,
            boolean commitAnswer) {
        if (promptIds.length == 0) {
            throw new IllegalArgumentException("a request needs at least one prompt token");
        }
        this.tenant = tenant;
        this.cache = cache;
        this.promptIds = promptIds;
        this.cachedTokens = cache.length();
        this.params = params;
        this.commitAnswer = commitAnswer;
        this.sampler = params == null ? null : new Sampler(params);
        this.text = params == null ? null : new Detokenizer(tokenizer);
        this.tokenizer = tokenizer;
    }

    /** A request that generates: prefill, then sample until a finish rule holds. */
    public static Request generate(String tenant, GenerationRequest r, Tokenizer tokenizer) {
        return new Request(tenant, r.cache(), r.promptIds(), r.params(), tokenizer, r.commitAnswer());
    }

    /** A request that only appends {@code ids} to {@code cache} (a document part) and samples nothing. */
    public static Request prefill(String tenant, KvCache cache, int[] ids) {
        return new Request(tenant, cache, ids, null, null, false);
    }

    /** End-of-generation tokens are sampled like any other and do not end the request. */
    public Request ignoreEos() {
        if (constraint != null) {
            throw new IllegalStateException("a constrained request ends with EOS; it cannot ignore it");
        }
        this.ignoreEos = true;
        return this;
    }

    /** Samples only tokens that keep the output valid under {@code constraint} (fresh, one per request). */
    public Request constrain(Constraint constraint) {
        if (params == null) {
            throw new IllegalStateException("a prefill-only request samples nothing to constrain");
        }
        if (ignoreEos) {
            throw new IllegalStateException("a constrained request ends with EOS; it cannot ignore it");
        }
        this.constraint = constraint;
        return this;
    }

    public Request observer(Observer observer) {
        this.observer = observer;
        return this;
    }

    @Override
    public String tenant() {
        return tenant;
    }

    @Override
    public boolean decoding() {
        return prefilled == promptIds.length;
    }

    @Override
    public int tokensWanted() {
        if (done) {
            return 0;
        }
        return decoding() ? (feed >= 0 ? 1 : 0) : promptIds.length - prefilled;
    }

    /** This request's share of the next step: its next {@code n} tokens (a prefill chunk, or the token to feed). */
    public StepPlan.Sequence chunk(int n) {
        if (n <= 0 || n > tokensWanted()) {
            throw new IllegalArgumentException("chunk of " + n + " tokens, but " + tokensWanted() + " are wanted");
        }
        int[] tokens = decoding() ? new int[] {feed} : Arrays.copyOfRange(promptIds, prefilled, prefilled + n);
        boolean logits = decoding() ? !done && finish == null : params != null && prefilled + n == promptIds.length;
        return new StepPlan.Sequence(cache, tokens, logits);
    }

    /**
     * The chunk of {@code n} tokens was computed in {@code nanos}; {@code logits} are the logits after it
     * when the chunk asked for them (then the next token is sampled and the finish rules applied).
     */
    public void computed(int n, float[] logits, long nanos) {
        computed += n;
        if (decoding()) {
            decodeNanos += nanos;
            feed = -1;
            if (finish != null) {
                done = true; // the final token of a committed answer is in the cache now
            }
        } else {
            prefilled += n;
            prefillNanos += nanos;
            if (params == null && decoding()) {
                done = true;
            }
        }
        if (logits != null && !done) {
            sample(logits);
        }
    }

    private void sample(float[] logits) {
        observer.logits(logits);
        int token;
        if (constraint == null) {
            token = sampler.sample(logits);
        } else {
            token = sampler.sample(logits, constraint.allowed());
            constraint.accept(token);
        }
        sampled++;
        if (!ignoreEos && tokenizer.isEndOfGeneration(token)) {
            finish = FinishReason.STOP;
            finalText = text.finish();
        } else {
            if (generated == ids.length) {
                ids = Arrays.copyOf(ids, ids.length * 2);
            }
            ids[generated++] = token;
            text.add(token);
            String sofar = text.text();
            int cut = params.firstStop(sofar);
            if (cut >= 0) {
                finish = FinishReason.STOP_SEQUENCE;
                finalText = sofar.substring(0, cut);
            } else if (generated >= params.maxTokens()) {
                finish = FinishReason.LENGTH;
                finalText = text.finish();
            }
        }
        observer.token(token);
        if (finish != null && !commitAnswer) {
            done = true;
        } else {
            feed = token;
        }
    }

    /** Whether the request is over: answered (its final token fed, with {@code commitAnswer}), or prefilled. */
    public boolean finished() {
        return done;
    }

    /** Positions in its cache: those held before it plus the tokens it computed. */
    @Override
    public int positions() {
        return cachedTokens + computed;
    }

    public KvCache cache() {
        return cache;
    }

    /** Positions the cache held before this request. */
    public int cachedTokens() {
        return cachedTokens;
    }

    public int promptTokens() {
        return promptIds.length;
    }

    /** Tokens sampled so far (the end-of-generation token included). */
    public int sampled() {
        return sampled;
    }

    /** The text decoded so far (before a stop sequence is cut). */
    public String text() {
        return text.text();
    }

    public long prefillNanos() {
        return prefillNanos;
    }

    /** What it produced; only for a generating request that {@linkplain #finished() finished}. */
    public GenerationResult result() {
        if (!done || params == null) {
            throw new IllegalStateException("the request has no result: " + (params == null ? "prefill only" : "not finished"));
        }
        return new GenerationResult(Arrays.copyOf(ids, generated), finalText, finish, prefillNanos, decodeNanos);
    }
}
