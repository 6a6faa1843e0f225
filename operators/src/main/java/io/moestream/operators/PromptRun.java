package io.moestream.operators;

import io.moestream.runtime.chat.ChatFormat;
import io.moestream.runtime.model.GenerationResult;
import io.moestream.runtime.sched.Request;
import io.moestream.schemas.Generation;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;
import io.moestream.schemas.Timings;
import io.moestream.schemas.Usage;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A prompt being answered: its request, and what answering it needs (the conversation's stored metadata, timings). */
final class PromptRun extends Running {

    /** The conversation's metadata before this turn (null: first turn, or not a conversation). */
    final ContextMeta meta;
    /** The most tokens it samples (the prompt's {@code max_tokens}, clamped). */
    final int maxTokens;
    final long admittedMillis;
    private long firstTokenMillis = -1;

    PromptRun(RequestQueue.Queued queued, Request request, int maxTokens, ContextMeta meta, long admittedMillis) {
        super(queued, request);
        this.maxTokens = maxTokens;
        this.meta = meta;
        this.admittedMillis = admittedMillis;
    }

    PendingPrompt pending() {
        return queued.prompt();
    }

    Prompt prompt() {
        return queued.prompt().prompt();
    }

    boolean conversation() {
        return prompt().getMode() == PromptMode.CONVERSATION;
    }

    @Override
    boolean writesBack() {
        return conversation();
    }

    /** Notes the processing time of the first sampled token. */
    void firstTokenAt(long nowMillis) {
        firstTokenMillis = nowMillis;
    }

    long firstTokenMillis() {
        return firstTokenMillis;
    }

    /** The generation record; {@code answer} is the text as the client gets it (reasoning split off for chat prompts). */
    Generation toGeneration(String modelName, ChatFormat.Answer answer) {
        Prompt prompt = prompt();
        GenerationResult r = request.result();
        List<Integer> ids = new ArrayList<>(r.tokenIds().length);
        for (int id : r.tokenIds()) {
            ids.add(id);
        }
        return Generation.newBuilder()
                .setRequestId(prompt.getRequestId())
                .setTenant(prompt.getTenant())
                .setContextId(prompt.getMode() == PromptMode.STATELESS ? null : prompt.getContextId())
                .setText(answer.content())
                .setReasoning(answer.reasoning())
                .setTokenIds(ids)
                .setFinishReason(io.moestream.schemas.FinishReason.valueOf(r.finishReason().name()))
                .setUsage(Usage.newBuilder()
                        .setPromptTokens(request.promptTokens())
                        .setCachedTokens(request.cachedTokens())
                        .setGeneratedTokens(ids.size())
                        .build())
                .setTimings(Timings.newBuilder()
                        .setQueuedMs(Math.max(0, admittedMillis - pending().arrivalMillis()))
                        .setPrefillMs(TimeUnit.NANOSECONDS.toMillis(r.prefillNanos()))
                        .setDecodeMs(TimeUnit.NANOSECONDS.toMillis(r.decodeNanos()))
                        .build())
                .setModel(modelName)
                .build();
    }
}
