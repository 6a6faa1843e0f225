package io.moestream.runtime.sched;

import java.util.List;

/**
 * The plan of one step: which sequences compute which of their tokens. Decode tokens come first,
 * then prefill chunks.
 *
 * @param chunks per scheduled sequence the run of tokens to compute
 */
public record Schedule(List<Chunk> chunks) {

    /**
     * Tokens {@code [start, start + length)} of sequence {@code sequence} (prompt tokens, then the
     * sampled tokens fed back).
     *
     * @param reachesEnd whether the chunk ends at the last token known so far, i.e. the caller
     *                   needs the logits there to sample the next token (a final prefill chunk or
     *                   a decode token); false for a prefill chunk with more prompt to follow
     */
    public record Chunk(int sequence, int start, int length, boolean reachesEnd) {}

    public Schedule {
        chunks = List.copyOf(chunks);
    }

    /** Tokens computed by the step. */
    public int tokens() {
        int n = 0;
        for (Chunk c : chunks) {
            n += c.length();
        }
        return n;
    }

    public boolean isEmpty() {
        return chunks.isEmpty();
    }
}
