package io.moestream.runtime.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class BlockTableTest {

    @Test
    void translatesPositionsToPoolSlots() {
        BlockAllocator alloc = new BlockAllocator(8);
        BlockTable other = new BlockTable(4);
        other.reserve(5, alloc); // takes blocks 0 and 1
        BlockTable t = new BlockTable(4);
        t.reserve(9, alloc);     // 3 blocks: 2, 3, 4
        assertThat(t.physicalBlocks()).containsExactly(2, 3, 4);
        assertThat(t.slot(0)).isEqualTo(8);
        assertThat(t.slot(3)).isEqualTo(11);
        assertThat(t.slot(4)).isEqualTo(12);
        assertThat(t.slot(8)).isEqualTo(16);
        assertThatThrownBy(() -> t.slot(12)).isInstanceOf(IndexOutOfBoundsException.class);
        other.releaseAll(alloc);
        BlockTable third = new BlockTable(4);
        third.reserve(1, alloc);
        assertThat(third.physical(0)).isIn(0, 1);
        assertThat(alloc.freeBlocks()).isEqualTo(8 - 4);
    }

    @Test
    void dirtyBlocksCoverWhatAStepWrote() {
        BlockAllocator alloc = new BlockAllocator(8);
        BlockTable t = new BlockTable(4);
        t.reserve(6, alloc);
        t.advance(6);
        assertThat(t.dirtyBlocks(0)).containsExactly(0, 1);
        assertThat(t.dirtyBlocks(5)).containsExactly(1);
        t.reserve(7, alloc);
        t.advance(7);
        assertThat(t.dirtyBlocks(6)).containsExactly(1);
        assertThat(t.dirtyBlocks(7)).isEmpty();
        assertThatThrownBy(() -> t.advance(9)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void fullPoolFailsClearly() {
        BlockAllocator alloc = new BlockAllocator(2);
        BlockTable t = new BlockTable(16);
        assertThatThrownBy(() -> t.reserve(33, alloc)).hasMessageContaining("KV pool is full (2 blocks)");
        assertThatThrownBy(() -> alloc.release(5)).hasMessageContaining("not allocated");
    }

    @Test
    void layoutIndexesLayerKvTokenDim() {
        KvLayout l = new KvLayout(3, 2, 8, 4, KvCodec.F16);
        assertThat(l.kvDim()).isEqualTo(16);
        assertThat(l.blockElements()).isEqualTo(2L * 3 * 4 * 16);
        assertThat(l.blockBytes()).isEqualTo(2L * 3 * 4 * 16 * 2);
        // slot 6 = block 1, offset 2; layer 2, V, dim 5
        assertThat(l.elementIndex(6, 2, 1, 5)).isEqualTo(l.blockElements() + ((2 * 2 + 1) * 4 + 2) * 16 + 5);
        assertThatThrownBy(() -> new KvLayout(1, 1, 8, 4, KvCodec.Q4_KIVI)).hasMessageContaining("no block layout");
    }
}
