package io.moestream.runtime.backend;

/**
 * Where each query row of an {@link Op#ATTENTION} call reads its keys and values: row r belongs to
 * sequence {@code rowSeq[r]} and sees its positions {@code 0..rowLen[r]-1} (causal); sequence s's
 * logical block i is physical block {@code blockTables[s][i]}. All three are I32 tensors on the
 * backend; {@code blockTables} is {@code [sequences][tableWidth]}.
 *
 * @param rowSeq      (rows, 1) sequence of each query row
 * @param rowLen      (rows, 1) visible positions of each query row
 * @param blockTables (sequences, tableWidth) physical block ids, unused entries 0
 * @param maxLen      the largest rowLen (sizes the split-K launch)
 */
public record AttentionBatch(Tensor rowSeq, Tensor rowLen, Tensor blockTables, int maxLen) {

    public int tableWidth() {
        return blockTables.cols();
    }
}
