package io.moestream.runtime.backend;

/**
 * Where each query row of an {@link Backend#attention} call reads its keys and values: row r belongs to
 * sequence {@code rowSeq[r]} and sees its positions {@code 0..rowLen[r]-1} (causal). With
 * {@code p = rowLen[r] - 1}, the positions of the blocks before p's block are read from sealed blocks
 * (sequence s's logical block i is sealed block {@code blockTables[s][i]}), the positions of p's own
 * block from open block {@code rowOpen[r]}: exactly what the CPU engine's cache gives the query at p,
 * whatever else the step holds. All are I32 tensors on the backend; {@code blockTables} is
 * {@code [sequences][tableWidth]}.
 *
 * @param rowSeq      (rows, 1) sequence of each query row
 * @param rowLen      (rows, 1) visible positions of each query row
 * @param blockTables (sequences, tableWidth) sealed block ids, unused entries 0
 * @param rowOpen     (rows, 1) open block holding the row's own block
 * @param maxLen      the largest rowLen (sizes the split-K launch)
 */
public record AttentionBatch(Tensor rowSeq, Tensor rowLen, Tensor blockTables, Tensor rowOpen, int maxLen) {

    public int tableWidth() {
        return blockTables.cols();
    }
}
