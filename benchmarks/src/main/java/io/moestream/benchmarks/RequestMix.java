package io.moestream.benchmarks;

import io.moestream.schemas.Document;
import io.moestream.schemas.Prompt;
import io.moestream.schemas.PromptMode;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A seeded request mix: a few documents (one or two parts) and prompts, about 40 % STATELESS,
 * 30 % DOCUMENT questions and 30 % CONVERSATION turns, half greedy and half sampled, each with an
 * explicit seed so that the engine-alone run and the pipeline do the same work.
 */
record RequestMix(List<Document> documents, List<Prompt> prompts) {

    private static final String[] TEXTS = {
        "The list type is", "To add an item to a list,", "A dictionary maps", "Exceptions are raised when",
        "The import statement", "Strings are", "A for loop", "The with statement", "Generators are",
        "Use the built-in function", "Classes provide", "A tuple is", "The return value of",
    };
    private static final String[] DOCUMENT_PARTS = {
        "Lists are mutable sequences, typically used to store collections of homogeneous items. ",
        "Lists may be constructed in several ways: using a pair of square brackets to denote the empty list. ",
        "Dictionaries map hashable values to arbitrary objects. Mappings are mutable objects. ",
        "An exception is raised when an error is detected during execution. ",
        "The try statement specifies exception handlers and cleanup code for a group of statements. ",
        "Strings are immutable sequences of Unicode code points. ",
        "The for statement is used to iterate over the elements of a sequence. ",
        "A module is a file containing Python definitions and statements. ",
    };
    private static final int TENANTS = 3;
    private static final int DOCUMENTS = 6;

    static RequestMix generate(int count, int maxTokens, long seed) {
        Random random = new Random(seed);
        List<Document> documents = new ArrayList<>();
        for (int d = 0; d < DOCUMENTS; d++) {
            int parts = 1 + d % 2;
            for (int part = 0; part < parts; part++) {
                documents.add(Document.newBuilder().setTenant("t" + d % TENANTS).setDocumentId("doc" + d)
                        .setPart(part).setLast(part == parts - 1)
                        .setText(DOCUMENT_PARTS[(d + part) % DOCUMENT_PARTS.length]).build());
            }
        }
        // enough conversations that a turn rarely waits for the previous turn of its own conversation
        int conversations = Math.max(8, count / 6);
        List<Prompt> prompts = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int kind = random.nextInt(10);
            Prompt.Builder b = Prompt.newBuilder().setRequestId(String.format("req-%05d", i))
                    .setText(TEXTS[random.nextInt(TEXTS.length)]).setMaxTokens(maxTokens).setSeed(random.nextLong());
            if (kind < 4) {
                b.setMode(PromptMode.STATELESS).setTenant("t" + random.nextInt(TENANTS)).setContextId(null);
            } else if (kind < 7) {
                int d = random.nextInt(DOCUMENTS);
                b.setMode(PromptMode.DOCUMENT).setTenant("t" + d % TENANTS).setContextId("doc" + d);
            } else {
                int c = random.nextInt(conversations);
                b.setMode(PromptMode.CONVERSATION).setTenant("t" + c % TENANTS).setContextId("chat" + c);
            }
            if (random.nextBoolean()) {
                b.setTemperature(0f);
            } else {
                b.setTemperature(0.8f).setTopK(40).setTopP(0.95f);
            }
            prompts.add(b.build());
        }
        return new RequestMix(documents, prompts);
    }

    /**
     * One round of the warm-up both runs get before their clocks start: the first {@code count}
     * prompts of the mix of seed 1, with request and conversation ids of their own per round (so the
     * measured mix starts its conversations empty); DOCUMENT prompts read the same documents.
     */
    static List<Prompt> warmUp(int count, int maxTokens, int round) {
        String prefix = "warm-up-" + round + "-";
        List<Prompt> prompts = new ArrayList<>();
        for (Prompt p : generate(count, maxTokens, 1L).prompts()) {
            Prompt.Builder b = Prompt.newBuilder(p).setRequestId(prefix + p.getRequestId());
            if (p.getMode() == PromptMode.CONVERSATION) {
                b.setContextId(prefix + p.getContextId());
            }
            prompts.add(b.build());
        }
        return prompts;
    }

    /**
     * Measured round {@code round} of this mix: the same prompts (same texts, seeds and sampling, so
     * the same tokens), with request and conversation ids of their own from round 1 on, so every
     * round starts its conversations empty and none is taken for a duplicate; round 0 is the mix.
     */
    RequestMix round(int round) {
        if (round == 0) {
            return this;
        }
        String prefix = "round-" + round + "-";
        List<Prompt> renamed = new ArrayList<>();
        for (Prompt p : prompts) {
            Prompt.Builder b = Prompt.newBuilder(p).setRequestId(prefix + p.getRequestId());
            if (p.getMode() == PromptMode.CONVERSATION) {
                b.setContextId(prefix + p.getContextId());
            }
            renamed.add(b.build());
        }
        return new RequestMix(documents, renamed);
    }

    /** {@code tenant/context} of a DOCUMENT or CONVERSATION prompt, the request id of a STATELESS one. */
    static String key(Prompt p) {
        return p.getContextId() == null ? p.getRequestId() : p.getTenant() + "/" + p.getContextId();
    }
}
