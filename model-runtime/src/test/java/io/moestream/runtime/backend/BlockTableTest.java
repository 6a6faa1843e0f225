package io.moestream.runtime.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moestream.runtime.kv.KvCodec;

import org.junit.jupiter.api.Test;

class BlockTableTest {

    @Test
    void aStepMapsOpenBlocksForWhatItWritesAndSealedBlocksForWhatItFills() {
        BlockAllocator sealed = new BlockAllocator(8);
        BlockAllocator open = new BlockAllocator(8, "open ");
        BlockTable other = new BlockTable(4);
        other.reserve(5, sealed, open); // sealed 0; open 0, 1
        BlockTable t = new BlockTable(4);
        assertThat(t.sealedNeeded(9)).isEqualTo(2);
        assertThat(t.openNeeded(9)).isEqualTo(3);
        t.reserve(9, sealed, open);     // positions 0..8: logical blocks 0, 1 full, 2 partial
        assertThat(t.sealedBlocks()).containsExactly(1, 2);
        assertThat(t.open(0)).isEqualTo(2);
        assertThat(t.slot(0)).isEqualTo(8);
        assertThat(t.slot(5)).isEqualTo(13);
        assertThat(t.slot(8)).isEqualTo(16);
        assertThatThrownBy(() -> t.slot(12)).isInstanceOf(IndexOutOfBoundsException.class);

        t.advance(9, open); // the filled blocks' open blocks go back; the partial one stays
        assertThat(open.freeBlocks()).isEqualTo(8 - 2 - 1);
        assertThat(t.tail()).isEqualTo(4);
        assertThat(t.openNeeded(12)).isZero();
        assertThat(t.sealedNeeded(12)).isEqualTo(1);
        t.reserve(12, sealed, open);
        assertThat(t.open(2)).isEqualTo(4);
        t.advance(12, open);
        assertThat(t.tail()).isEqualTo(-1);
        assertThat(t.sealedBlocks()).containsExactly(1, 2, 3);
        assertThat(open.freeBlocks()).isEqualTo(8 - 2);

        t.releaseAll(sealed, open);
        other.releaseAll(sealed, open);
        assertThat(sealed.freeBlocks()).isEqualTo(8);
        assertThat(open.freeBlocks()).isEqualTo(8);
    }

    @Test
    void restoredBlocksAreMappedAsTheyWere() {
        BlockAllocator open = new BlockAllocator(2, "open ");
        BlockTable t = new BlockTable(4);
        t.appendSealed(5);
        t.appendSealed(3);
        t.setTail(open.allocate());
        t.advance(10, open);
        assertThat(t.sealedBlocks()).containsExactly(5, 3);
        assertThat(t.tail()).isEqualTo(0);
        assertThat(t.slot(9)).isEqualTo(1);
        assertThatThrownBy(() -> t.advance(13, open)).hasMessageContaining("needs 3 sealed blocks");
    }

    @Test
    void fullPoolFailsClearly() {
        BlockAllocator sealed = new BlockAllocator(2);
        BlockAllocator open = new BlockAllocator(4, "open ");
        BlockTable t = new BlockTable(16);
        assertThatThrownBy(() -> t.reserve(48, sealed, open)).hasMessageContaining("KV pool is full (2 blocks)");
        assertThatThrownBy(() -> new BlockTable(16).reserve(80, new BlockAllocator(8), open))
                .hasMessageContaining("KV pool is full (4 open blocks)");
        assertThatThrownBy(() -> sealed.release(5)).hasMessageContaining("not allocated");
    }

    @Test
    void layoutIsTheEnginesSlabOrder() {
        KvLayout l = new KvLayout(3, 2, 8, 4, KvCodec.F16);
        assertThat(l.kvDim()).isEqualTo(16);
        assertThat(l.sectionBytes()).isEqualTo(4 * 8 * 2);
        assertThat(l.blockBytes()).isEqualTo(2L * 3 * 2 * 4 * 8 * 2);
        assertThat(l.sealedSlabOffset(2, 1)).isEqualTo(2L * (2 * 2 + 1) * 64);
        assertThat(l.openBlockBytes()).isEqualTo(4L * 2 * 3 * 2 * 4 * 8);
        // open slot 6 = open block 1, offset 2; layer 2, head 1, V, dim 5
        assertThat(l.openIndex(6, 2, 1, 1, 5)).isEqualTo(l.openBlockFloats() + (((2 * 2 + 1) * 2 + 1) * 4 + 2) * 8 + 5);
        // KIVI int4/8: keys f16 scale+min per (8-token group, channel), values per (token, 8-channel group)
        KvLayout q4 = new KvLayout(1, 1, 16, 8, KvCodec.int4(8));
        assertThat(q4.sectionBytes()).isEqualTo(8 * 16 / 2 + 4 * 16);
        assertThatThrownBy(() -> new KvLayout(1, 1, 8, 4, KvCodec.INT8)).hasMessageContaining("must divide");
    }
}
