package io.moestream.runtime.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Comparator;
import java.util.List;
import java.util.PriorityQueue;

/**
 * One run of llama.cpp's SentencePiece merge ({@code llm_tokenizer_spm_session}) over a fragment
 * whose spaces are already {@code ▁}: start from single characters (code points), repeatedly merge
 * the adjacent pair whose concatenation is a token with the highest score (leftmost first on
 * ties), then emit each symbol's token, or its UTF-8 bytes as byte tokens when it is none. Symbols
 * are a doubly linked list over the text; a queued pair is stale once either side has changed.
 */
final class SpmMerger {

    private record Bigram(int left, int right, float score, int length) {}

    private static final Comparator<Bigram> ORDER =
            (a, b) -> a.score != b.score ? Float.compare(b.score, a.score) : Integer.compare(a.left, b.left);

    private final SpmTokenizer tokenizer;
    private final String text;
    private final int[] start;
    private final int[] length;
    private final int[] prev;
    private final int[] next;
    private final PriorityQueue<Bigram> queue = new PriorityQueue<>(ORDER);

    SpmMerger(SpmTokenizer tokenizer, String text) {
        this.tokenizer = tokenizer;
        this.text = text;
        int n = text.codePointCount(0, text.length());
        start = new int[n];
        length = new int[n];
        prev = new int[n];
        next = new int[n];
        for (int i = 0, at = 0; i < n; i++) {
            start[i] = at;
            length[i] = Character.charCount(text.codePointAt(at));
            at += length[i];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
    }

    /** Appends the fragment's token ids to {@code out}. */
    void tokenize(List<Integer> out) {
        for (int i = 1; i < start.length; i++) {
            offer(i - 1, i);
        }
        while (!queue.isEmpty()) {
            Bigram b = queue.poll();
            if (length[b.left] == 0 || length[b.right] == 0 || length[b.left] + length[b.right] != b.length) {
                continue;
            }
            length[b.left] += length[b.right];
            length[b.right] = 0;
            next[b.left] = next[b.right];
            if (next[b.right] >= 0) {
                prev[next[b.right]] = b.left;
            }
            offer(prev[b.left], b.left);
            offer(b.left, next[b.left]);
        }
        for (int i = start.length > 0 ? 0 : -1; i != -1; i = next[i]) {
            emit(text.substring(start[i], start[i] + length[i]), out);
        }
    }

    private void offer(int left, int right) {
        if (left < 0 || right < 0) {
            return;
        }
        int len = length[left] + length[right];
        Integer id = tokenizer.tokenOf(text.substring(start[left], start[left] + len));
        if (id != null) {
            queue.add(new Bigram(left, right, tokenizer.score(id), len));
        }
    }

    /**
     * A symbol that is not a token (a single character: merged symbols always are) becomes its
     * UTF-8 bytes as byte tokens. Where the vocabulary has no token for a byte, llama.cpp fails;
     * this emits the unknown token for the character instead, and fails only without one.
     */
    private void emit(String symbol, List<Integer> out) {
        Integer id = tokenizer.tokenOf(symbol);
        if (id != null) {
            out.add(id);
            return;
        }
        byte[] bytes = symbol.getBytes(StandardCharsets.UTF_8);
        int mark = out.size();
        for (byte b : bytes) {
            int t = tokenizer.byteToken(b);
            if (t < 0) {
                out.subList(mark, out.size()).clear();
                if (tokenizer.unknownId() < 0) {
                    throw new IllegalArgumentException(String.format(
                            "'%s' is not in the vocabulary, which has neither a byte token for 0x%02X nor an unknown token",
                            symbol, b & 0xFF));
                }
                out.add(tokenizer.unknownId());
                return;
            }
            out.add(t);
        }
    }
}
