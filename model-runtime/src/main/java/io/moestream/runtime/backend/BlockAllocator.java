package io.moestream.runtime.backend;

import java.util.ArrayDeque;
import java.util.BitSet;
import java.util.Deque;

/**
 * Free list of the physical blocks {@code 0..capacity-1} of a {@link KvPool}. Lowest ids are handed
 * out first so that a fresh pool fills from the start. Not thread-safe (one engine owns it).
 */
public final class BlockAllocator {

    private final int capacity;
    private final String kind;
    private final Deque<Integer> free = new ArrayDeque<>();
    private final BitSet used = new BitSet();

    /** Free list of {@code capacity} sealed blocks. */
    public BlockAllocator(int capacity) {
        this(capacity, "");
    }

    /** Free list of {@code capacity} blocks of a {@code kind} ("" or e.g. "open ") named in messages. */
    public BlockAllocator(int capacity, String kind) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("block capacity must be positive, got " + capacity);
        }
        this.capacity = capacity;
        this.kind = kind;
        for (int b = 0; b < capacity; b++) {
            free.addLast(b);
        }
    }

    public int capacity() {
        return capacity;
    }

    public int freeBlocks() {
        return free.size();
    }

    /** A free block; fails when the pool is full. */
    public int allocate() {
        Integer b = free.pollFirst();
        if (b == null) {
            throw new IllegalStateException("KV pool is full (" + capacity + " " + kind + "blocks); finish or evict a sequence first");
        }
        used.set(b);
        return b;
    }

    /** Returns a block taken with {@link #allocate()}. */
    public void release(int block) {
        if (block < 0 || block >= capacity || !used.get(block)) {
            throw new IllegalArgumentException("block " + block + " is not allocated");
        }
        used.clear(block);
        free.addFirst(block);
    }
}
