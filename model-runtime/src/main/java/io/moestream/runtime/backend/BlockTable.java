package io.moestream.runtime.backend;

import java.util.Arrays;

/**
 * Logical to physical block translation for one sequence (as vLLM's block table): position
 * {@code p} lives in logical block {@code p / B} at offset {@code p % B}, and logical block i is
 * physical block {@code physical(i)} of the pool. {@link #length()} counts the positions written.
 */
public final class BlockTable {

    private final int blockTokens;
    private int[] blocks = new int[4];
    private int blockCount;
    private int length;

    public BlockTable(int blockTokens) {
        if (blockTokens <= 0) {
            throw new IllegalArgumentException("blockTokens must be positive, got " + blockTokens);
        }
        this.blockTokens = blockTokens;
    }

    public int blockTokens() {
        return blockTokens;
    }

    /** Positions written. */
    public int length() {
        return length;
    }

    /** Logical blocks mapped. */
    public int blockCount() {
        return blockCount;
    }

    /** Physical id of logical block {@code i}. */
    public int physical(int i) {
        if (i < 0 || i >= blockCount) {
            throw new IndexOutOfBoundsException("logical block " + i + " of " + blockCount);
        }
        return blocks[i];
    }

    /** The physical blocks in logical order. */
    public int[] physicalBlocks() {
        return Arrays.copyOf(blocks, blockCount);
    }

    /** Pool slot ({@code physical * B + offset}) of position {@code pos}. */
    public int slot(int pos) {
        if (pos < 0 || pos >= blockCount * blockTokens) {
            throw new IndexOutOfBoundsException("position " + pos + " is not mapped (" + blockCount + " blocks of " + blockTokens + ")");
        }
        return blocks[pos / blockTokens] * blockTokens + pos % blockTokens;
    }

    /** Maps enough blocks for {@code positions} positions, taking new ones from {@code allocator}. */
    public void reserve(int positions, BlockAllocator allocator) {
        int needed = (positions + blockTokens - 1) / blockTokens;
        while (blockCount < needed) {
            append(allocator.allocate());
        }
    }

    /** Maps an already filled physical block as the next logical block (restoring from keyed state). */
    public void append(int physicalBlock) {
        if (blockCount == blocks.length) {
            blocks = Arrays.copyOf(blocks, blocks.length * 2);
        }
        blocks[blockCount++] = physicalBlock;
    }

    /** Records that positions up to {@code newLength - 1} are written. */
    public void advance(int newLength) {
        if (newLength < length || newLength > blockCount * blockTokens) {
            throw new IllegalArgumentException("length " + newLength + " outside " + length + ".." + blockCount * blockTokens);
        }
        length = newLength;
    }

    /** Logical blocks that hold positions {@code from..length()-1}: the ones a step changed, to write back to state. */
    public int[] dirtyBlocks(int from) {
        if (from >= length) {
            return new int[0];
        }
        int first = from / blockTokens;
        int last = (length - 1) / blockTokens;
        int[] out = new int[last - first + 1];
        for (int i = 0; i < out.length; i++) {
            out[i] = first + i;
        }
        return out;
    }

    /** Returns every block to {@code allocator} and empties the table. */
    public void releaseAll(BlockAllocator allocator) {
        for (int i = 0; i < blockCount; i++) {
            allocator.release(blocks[i]);
        }
        blockCount = 0;
        length = 0;
    }
}
