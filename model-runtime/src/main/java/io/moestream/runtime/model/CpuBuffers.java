package io.moestream.runtime.model;

import io.moestream.runtime.kernel.DotOrder;

import java.util.Arrays;

/** The CPU backend's activation matrices for up to {@code capacity} tokens per step (llama2.c names). */
final class CpuBuffers {
    final int capacity;
    final float[][] x;             // (n, dim) residual stream
    final float[][] xb;            // (n, dim) normalised input of a sub-layer
    final float[][] xb2;           // (n, dim) sub-layer output
    final float[][] qkv;           // (n, qDim + 2 kvDim), fused QKV only
    final float[][] q;             // (n, heads * headDim)
    final float[][] k;             // (n, kvHeads * headDim)
    final float[][] v;             // (n, kvHeads * headDim)
    final float[][] attOut;        // (n, heads * headDim)
    final float[][] hb;            // (n, widest ffn) gate activation
    final float[][] hb2;           // (n, widest ffn) up activation
    final float[][] ffnOut;        // (n, dim) the shared expert's output
    final float[][] qa;            // (n, qLoraRank) MLA query latent
    final float[][] qb;            // (n, heads * (qkNope + qkRope)) MLA queries before absorption
    final float[][] vo;            // (n, heads * vHead) MLA head values
    final float[][] ropeCos;       // (n, ropeDims / 2)
    final float[][] ropeSin;       // (n, ropeDims / 2)
    final int[][] chosen;          // (n, expertsUsed) routed experts
    final float[][] chosenWeights; // (n, expertsUsed) their weights
    final float[] routerLogits;    // (experts)
    final DotOrder[] decodeOrder;  // (n) all VEC_DOT
    final float[][][] expertOut;   // (n, expertsUsed, dim) weighted expert outputs
    final float[][] expertGate;    // (n * expertsUsed, expertDim) routed rows' gate activations, grouped by expert
    final float[][] expertUp;      // (n * expertsUsed, expertDim) their up activations
    final float[][] expertDown;    // (n * expertsUsed, dim) their expert outputs

    CpuBuffers(ModelConfig c, int capacity) {
        this.capacity = capacity;
        int ffn = Math.max(c.ffnDim(), Math.max(c.expertDim(), c.sharedExpertDim()));
        x = new float[capacity][c.dim()];
        xb = new float[capacity][c.dim()];
        xb2 = new float[capacity][c.dim()];
        qkv = new float[c.fusedQkv() ? capacity : 0][c.qDim() + 2 * c.kvDim()];
        q = new float[capacity][c.qDim()];
        k = new float[capacity][c.kvDim()];
        v = new float[capacity][c.kvDim()];
        attOut = new float[capacity][c.qDim()];
        hb = new float[capacity][ffn];
        hb2 = new float[capacity][ffn];
        ffnOut = new float[c.isMoe() ? capacity : 0][c.dim()];
        ModelConfig.Mla mla = c.mla();
        qa = new float[mla != null ? capacity : 0][mla != null ? mla.qLoraRank() : 0];
        qb = new float[mla != null ? capacity : 0][mla != null ? c.heads() * mla.qHead() : 0];
        vo = new float[mla != null ? capacity : 0][mla != null ? c.heads() * mla.vHead() : 0];
        ropeCos = new float[capacity][c.ropeDims() / 2];
        ropeSin = new float[capacity][c.ropeDims() / 2];
        chosen = new int[capacity][c.expertsUsed()];
        chosenWeights = new float[capacity][c.expertsUsed()];
        routerLogits = new float[Math.max(1, c.experts())];
        decodeOrder = new DotOrder[capacity];
        expertOut = new float[c.isMoe() ? capacity : 0][c.expertsUsed()][c.dim()];
        int routed = c.isMoe() ? capacity * c.expertsUsed() : 0;
        expertGate = new float[routed][c.expertDim()];
        expertUp = new float[routed][c.expertDim()];
        expertDown = new float[routed][c.dim()];
        Arrays.fill(decodeOrder, DotOrder.VEC_DOT);
    }
}
