package io.moestream.runtime.kv;

import java.util.Arrays;

/**
 * Which (layer, KV head) pairs are <em>streaming</em> heads: they attend only to the first
 * {@link #sink()} positions and the last {@link #window()} positions up to and including the query
 * (DuoAttention / RazorAttention); all other heads are <em>retrieval</em> heads and attend to every
 * position. Part of the cache metadata, so a restored context attends exactly as before. Immutable.
 */
public final class HeadPolicy {

    private final int layers;
    private final int kvHeads;
    private final int sink;
    private final int window;
    private final boolean[] streaming; // [layer * kvHeads + head]

    private HeadPolicy(int layers, int kvHeads, int sink, int window, boolean[] streaming) {
        if (sink < 0 || window < 1) {
            throw new IllegalArgumentException("head policy needs sink >= 0 and window >= 1, got sink " + sink + ", window " + window);
        }
        if (streaming.length != layers * kvHeads) {
            throw new IllegalArgumentException("head policy has " + streaming.length + " flags for " + layers + " x " + kvHeads + " heads");
        }
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.sink = sink;
        this.window = window;
        this.streaming = streaming.clone();
    }

    /** Every head is a retrieval head (no pruning). */
    public static HeadPolicy allRetrieval(int layers, int kvHeads) {
        return new HeadPolicy(layers, kvHeads, 0, 1, new boolean[layers * kvHeads]);
    }

    /** {@code streaming[layer * kvHeads + head]} marks the streaming heads. */
    public static HeadPolicy of(int layers, int kvHeads, int sink, int window, boolean[] streaming) {
        return new HeadPolicy(layers, kvHeads, sink, window, streaming);
    }

    public int layers() {
        return layers;
    }

    public int kvHeads() {
        return kvHeads;
    }

    /** Sink positions a streaming head always sees (S). */
    public int sink() {
        return sink;
    }

    /** Most recent positions a streaming head sees, the query's own included (W). */
    public int window() {
        return window;
    }

    public boolean isStreaming(int layer, int kvHead) {
        return streaming[layer * kvHeads + kvHead];
    }

    public int streamingCount() {
        int n = 0;
        for (boolean b : streaming) {
            n += b ? 1 : 0;
        }
        return n;
    }

    public boolean anyStreaming() {
        return streamingCount() > 0;
    }

    /** Whether the query at {@code queryPos} of this head sees position {@code t} ({@code t <= queryPos}). */
    public boolean visible(int layer, int kvHead, int t, int queryPos) {
        return t <= queryPos && (!isStreaming(layer, kvHead) || t < sink || t > queryPos - window);
    }

    /**
     * Whether a block's tokens {@code [first, first + count)} can be dropped for streaming heads once
     * the cache holds {@code length} positions: all are past the sink and none is within the window of
     * any later query (queries at {@code >= length} see {@code t > length - window}).
     */
    boolean droppable(int first, int count, int length) {
        return first >= sink && first + count - 1 <= length - window;
    }

    boolean[] flags() {
        return streaming.clone();
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof HeadPolicy)) {
            return false;
        }
        HeadPolicy p = (HeadPolicy) o;
        return layers == p.layers && kvHeads == p.kvHeads && sink == p.sink && window == p.window
                && Arrays.equals(streaming, p.streaming);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(streaming) * 31 + sink * 7 + window;
    }

    /** e.g. {@code S=4 W=64 [L0: R S | L1: R R]}. */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("S=" + sink + " W=" + window + " [");
        for (int l = 0; l < layers; l++) {
            sb.append(l == 0 ? "" : " | ").append('L').append(l).append(':');
            for (int h = 0; h < kvHeads; h++) {
                sb.append(isStreaming(l, h) ? " S" : " R");
            }
        }
        return sb.append(']').toString();
    }
}
