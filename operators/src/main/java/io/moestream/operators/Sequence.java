package io.moestream.operators;

import io.moestream.runtime.model.FinishReason;
import io.moestream.runtime.model.KvCache;
import io.moestream.runtime.sampler.Sampler;
import io.moestream.runtime.sampler.SamplingParams;
import io.moestream.runtime.tokenizer.Detokenizer;
import io.moestream.runtime.tokenizer.Tokenizer;
import io.moestream.schemas.Generation;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import io.moestream.schemas.Timings;
import io.moestream.schemas.Usage;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One request in flight in the {@link InferenceOperator}: its cache, the prompt tokens still to
 * prefill, and its decoding state (sampler with its seed, generated ids, incremental text for stop
 * sequences). Lives in memory only; the request stays in keyed state until its answer is emitted,
 * so a restore runs it again from the start (seeded sampling gives the same text).
 *
 * <p>Per token the rules are {@code Engine.generate}'s: EOS ends it (STOP, EOS not in the result),
 * a stop sequence in the decoded text ends it (STOP_SEQUENCE, text cut before it), {@code maxTokens}
 * ends it (LENGTH); otherwise the token is fed next step. A conversation turn also feeds its final
 * token (EOS included), so the stored cache holds the whole turn.
 */
final class Sequence implements StepPlanner.Planned {

    /** Sentinel of {@link #nextToken} before the first token is sampled. */
    private static final int NONE = -1;

    final String key;
    final PendingPrompt pending;
    final KvCache cache;
    final int[] promptIds;
    final int cachedTokens;
    /** The conversation's metadata before this turn ({@code null}: first turn, or not a conversation). */
    final ContextMeta meta;
    /** Size of the stored cache this turn started from, to keep the KV-bytes gauge exact. */
    final long baseBytes;
    final boolean conversation;
    final long admittedMillis;

    private final SamplingParams params;
    private final Sampler sampler;
    private final Detokenizer text;
    private final int eos;
    private final List<Integer> ids = new ArrayList<>();
    private int prefilled;
    private int nextToken = NONE;
    private FinishReason finish;
    private String finalText;
    private long prefillNanos;
    private long decodeNanos;
    private long firstTokenMillis = -1;

    Sequence(String key, PendingPrompt pending, KvCache cache, int[] promptIds, SamplingParams params, ContextMeta meta,
            long baseBytes, Tokenizer tokenizer, long admittedMillis) {
        this.key = key;
        this.pending = pending;
        this.cache = cache;
        this.promptIds = promptIds;
        this.cachedTokens = cache.length();
        this.params = params;
        this.meta = meta;
        this.baseBytes = baseBytes;
        this.conversation = pending.prompt().getMode() == PromptMode.CONVERSATION;
        this.sampler = new Sampler(params);
        this.text = new Detokenizer(tokenizer);
        this.eos = tokenizer.eosId();
        this.admittedMillis = admittedMillis;
    }

    @Override
    public String tenant() {
        return pending.prompt().getTenant();
    }

    @Override
    public boolean decoding() {
        return prefilled == promptIds.length;
    }

    @Override
    public int tokensWanted() {
        return decoding() ? 1 : promptIds.length - prefilled;
    }

    /** The next {@code n} tokens to compute: a prefill chunk, or the last sampled token. */
    int[] nextTokens(int n) {
        if (decoding()) {
            return new int[] {nextToken};
        }
        return Arrays.copyOfRange(promptIds, prefilled, prefilled + n);
    }

    /** Whether computing {@code n} more tokens reaches a point where the next token is sampled. */
    boolean needsLogitsAfter(int n) {
        return decoding() || prefilled + n == promptIds.length;
    }

    /** {@code n} tokens were computed in a step of {@code nanos}. */
    void computed(int n, long nanos) {
        if (decoding()) {
            decodeNanos += nanos;
        } else {
            prefilled += n;
            prefillNanos += nanos;
        }
    }

    /**
     * Samples the next token from {@code logits} and applies the finish rules.
     *
     * @return the token to feed into the cache before the sequence can be answered (its final
     *     token, for a conversation turn), or {@link #NONE} (-1)
     */
    int sample(float[] logits, long nowMillis) {
        int token = sampler.sample(logits);
        if (firstTokenMillis < 0) {
            firstTokenMillis = nowMillis;
        }
        if (token == eos) {
            finish = FinishReason.STOP;
            finalText = text.finish();
        } else {
            ids.add(token);
            text.add(token);
            String sofar = text.text();
            int cut = params.firstStop(sofar);
            if (cut >= 0) {
                finish = FinishReason.STOP_SEQUENCE;
                finalText = sofar.substring(0, cut);
            } else if (ids.size() >= params.maxTokens()) {
                finish = FinishReason.LENGTH;
                finalText = text.finish();
            }
        }
        nextToken = token;
        return finish != null && conversation ? token : NONE;
    }

    boolean finished() {
        return finish != null;
    }

    int generatedTokens() {
        return ids.size();
    }

    /** Processing time of the first sampled token, or -1. */
    long firstTokenMillis() {
        return firstTokenMillis;
    }

    Generation toGeneration(String modelName) {
        Prompt prompt = pending.prompt();
        return Generation.newBuilder()
                .setRequestId(prompt.getRequestId())
                .setTenant(prompt.getTenant())
                .setContextId(prompt.getMode() == PromptMode.STATELESS ? null : prompt.getContextId())
                .setText(finalText)
                .setTokenIds(new ArrayList<>(ids))
                .setFinishReason(io.moestream.schemas.FinishReason.valueOf(finish.name()))
                .setUsage(Usage.newBuilder()
                        .setPromptTokens(promptIds.length)
                        .setCachedTokens(cachedTokens)
                        .setGeneratedTokens(ids.size())
                        .build())
                .setTimings(Timings.newBuilder()
                        .setQueuedMs(Math.max(0, admittedMillis - pending.arrivalMillis()))
                        .setPrefillMs(TimeUnit.NANOSECONDS.toMillis(prefillNanos))
                        .setDecodeMs(TimeUnit.NANOSECONDS.toMillis(decodeNanos))
                        .build())
                .setModel(modelName)
                .build();
    }
}
