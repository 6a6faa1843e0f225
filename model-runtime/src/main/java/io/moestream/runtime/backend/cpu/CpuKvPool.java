package io.moestream.runtime.backend.cpu;

import io.moestream.runtime.backend.KvLayout;
import io.moestream.runtime.backend.KvPool;
import io.moestream.runtime.kv.HeadSlab;

import java.nio.ByteBuffer;

/**
 * KV blocks as the CPU engine's own slabs ({@link HeadSlab}), so that compression and attention are
 * the engine's code, not a copy: a sealed block is one compressed slab per (layer, KV head), an open
 * block one float32 slab of B positions per (layer, KV head). Slabs are made on first use.
 */
final class CpuKvPool implements KvPool {

    final KvLayout layout;
    private final HeadSlab[][] sealed;        // [block][layer * kvHeads + head]
    private final HeadSlab.F32Slab[][] open;  // [openBlock][layer * kvHeads + head]

    CpuKvPool(KvLayout layout, int blocks, int openBlocks) {
        this.layout = layout;
        this.sealed = new HeadSlab[blocks][];
        this.open = new HeadSlab.F32Slab[openBlocks][];
    }

    /** The sealed slab of (block, layer, head); a block never written reads as zeros. */
    HeadSlab sealed(int block, int layer, int head) {
        HeadSlab[] b = sealedBlock(block);
        int i = layer * layout.kvHeads() + head;
        if (b[i] == null) {
            b[i] = HeadSlab.readSealed(ByteBuffer.allocate(Math.toIntExact(2 * layout.sectionBytes())), layout.codec(),
                    layout.blockTokens(), layout.headDim());
        }
        return b[i];
    }

    void setSealed(int block, int layer, int head, HeadSlab slab) {
        sealedBlock(block)[layer * layout.kvHeads() + head] = slab;
    }

    HeadSlab.F32Slab open(int block, int layer, int head) {
        if (block < 0 || block >= open.length) {
            throw new IndexOutOfBoundsException("open KV block " + block + " of " + open.length);
        }
        if (open[block] == null) {
            open[block] = new HeadSlab.F32Slab[layout.layers() * layout.kvHeads()];
        }
        int i = layer * layout.kvHeads() + head;
        if (open[block][i] == null) {
            open[block][i] = HeadSlab.F32Slab.open(layout.headDim(), layout.blockTokens());
        }
        return open[block][i];
    }

    private HeadSlab[] sealedBlock(int block) {
        if (block < 0 || block >= sealed.length) {
            throw new IndexOutOfBoundsException("KV block " + block + " of " + sealed.length);
        }
        if (sealed[block] == null) {
            sealed[block] = new HeadSlab[layout.layers() * layout.kvHeads()];
        }
        return sealed[block];
    }

    @Override
    public KvLayout layout() {
        return layout;
    }

    @Override
    public int blocks() {
        return sealed.length;
    }

    @Override
    public int openBlocks() {
        return open.length;
    }

    @Override
    public void close() {}
}
