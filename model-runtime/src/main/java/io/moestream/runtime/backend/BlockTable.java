package io.moestream.runtime.backend;

import java.util.Arrays;

/**
 * Logical to physical block translation for one sequence (as vLLM's block table), with the two block
 * kinds of {@link KvLayout}: position {@code p} lives in logical block {@code p / B} at offset
 * {@code p % B}; full logical blocks are sealed blocks of the pool, the partial last one (if any) is an
 * open block.
 *
 * <p>A step appends positions {@code length()..to-1}: {@link #reserve} maps an open block for every
 * logical block they touch and a sealed block for every logical block that is full at {@code to}
 * (the step compresses them, layer by layer, before attention reads them); {@link #advance} then
 * returns the open blocks of the now full blocks, keeping only the new partial one.
 */
public final class BlockTable {

    private final int blockTokens;
    private int[] sealed = new int[4];
    private int sealedCount;       // logical blocks 0..sealedCount-1 have a sealed block
    private int[] open = new int[2];
    private int openCount;         // logical blocks openBase..openBase+openCount-1 have an open block
    private int openBase;
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

    /** Logical blocks with a sealed block mapped. */
    public int sealedCount() {
        return sealedCount;
    }

    /** Sealed block of logical block {@code i}. */
    public int sealed(int i) {
        if (i < 0 || i >= sealedCount) {
            throw new IndexOutOfBoundsException("logical block " + i + " of " + sealedCount + " sealed");
        }
        return sealed[i];
    }

    /** The sealed blocks in logical order. */
    public int[] sealedBlocks() {
        return Arrays.copyOf(sealed, sealedCount);
    }

    /** Open block of logical block {@code i}. */
    public int open(int i) {
        if (i < openBase || i >= openBase + openCount) {
            throw new IndexOutOfBoundsException("logical block " + i + " has no open block (open: " + openBase + ".."
                    + (openBase + openCount - 1) + ")");
        }
        return open[i - openBase];
    }

    /** The open block of the partial last block, or -1 when the length is a multiple of B. */
    public int tail() {
        return length % blockTokens == 0 ? -1 : open(length / blockTokens);
    }

    /** Open-block slot ({@code open * B + offset}) of position {@code pos}. */
    public int slot(int pos) {
        return open(pos / blockTokens) * blockTokens + pos % blockTokens;
    }

    /** Sealed blocks {@link #reserve}{@code (to, ...)} would take. */
    public int sealedNeeded(int to) {
        return Math.max(0, to / blockTokens - sealedCount);
    }

    /** Open blocks {@link #reserve}{@code (to, ...)} would take. */
    public int openNeeded(int to) {
        int last = (to + blockTokens - 1) / blockTokens; // exclusive
        return Math.max(0, last - (openBase + openCount));
    }

    /**
     * Maps blocks for writing positions {@code length()..to-1}: an open block for each logical block
     * they touch and a sealed block for each one full at {@code to}.
     */
    public void reserve(int to, BlockAllocator sealedBlocks, BlockAllocator openBlocks) {
        if (to < length) {
            throw new IllegalArgumentException("reserve to " + to + " is before the length " + length);
        }
        if (openCount == 0) {
            openBase = length / blockTokens;
        }
        int last = (to + blockTokens - 1) / blockTokens;
        while (openBase + openCount < last) {
            if (openCount == open.length) {
                open = Arrays.copyOf(open, open.length * 2);
            }
            open[openCount++] = openBlocks.allocate();
        }
        while (sealedCount < to / blockTokens) {
            appendSealed(sealedBlocks.allocate());
        }
    }

    /** Maps an already filled sealed block as the next logical block (restoring from keyed state). */
    public void appendSealed(int block) {
        if (sealedCount == sealed.length) {
            sealed = Arrays.copyOf(sealed, sealed.length * 2);
        }
        sealed[sealedCount++] = block;
    }

    /** Maps an already filled open block as the partial block after the sealed ones (restoring from keyed state). */
    public void setTail(int openBlock) {
        if (openCount != 0) {
            throw new IllegalStateException("the sequence already has open blocks");
        }
        openBase = sealedCount;
        open[0] = openBlock;
        openCount = 1;
    }

    /**
     * Records that positions up to {@code newLength - 1} are written and returns the open blocks of
     * the blocks now full (sealed) to {@code openBlocks}.
     */
    public void advance(int newLength, BlockAllocator openBlocks) {
        if (newLength < length) {
            throw new IllegalArgumentException("length " + newLength + " is before the length " + length);
        }
        if (newLength / blockTokens > sealedCount) {
            throw new IllegalArgumentException("length " + newLength + " needs " + newLength / blockTokens
                    + " sealed blocks, " + sealedCount + " are mapped");
        }
        int partial = newLength / blockTokens;
        if (newLength % blockTokens != 0 && (partial < openBase || partial >= openBase + openCount)) {
            throw new IllegalArgumentException("length " + newLength + " needs an open block for logical block " + partial);
        }
        length = newLength;
        int keepFrom = length / blockTokens;
        int drop = Math.min(openCount, Math.max(0, keepFrom - openBase));
        for (int i = 0; i < drop; i++) {
            openBlocks.release(open[i]);
        }
        System.arraycopy(open, drop, open, 0, openCount - drop);
        openCount -= drop;
        openBase += drop;
        if (length % blockTokens == 0) { // no partial block: nothing stays open (reserve maps the next one)
            for (int i = 0; i < openCount; i++) {
                openBlocks.release(open[i]);
            }
            openCount = 0;
            openBase = keepFrom;
        }
    }

    /** Returns every block to the allocators and empties the table. */
    public void releaseAll(BlockAllocator sealedBlocks, BlockAllocator openBlocks) {
        for (int i = 0; i < sealedCount; i++) {
            sealedBlocks.release(sealed[i]);
        }
        for (int i = 0; i < openCount; i++) {
            openBlocks.release(open[i]);
        }
        sealedCount = 0;
        openCount = 0;
        openBase = 0;
        length = 0;
    }
}
