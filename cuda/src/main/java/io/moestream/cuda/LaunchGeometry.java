package io.moestream.cuda;

/**
 * Grid and block sizes of every launch, as pure functions of the shapes (unit-tested for odd
 * shapes without a GPU). Constants mirror {@code common.cuh} and {@code attention.cu}.
 */
public final class LaunchGeometry {

    /** Threads per warp. */
    public static final int WARP = 32;
    /** Warps per block in the products ({@code WARPS_PER_BLOCK}): one warp per weight row. */
    public static final int MATMUL_WARPS = 4;
    /** Input rows one pass of a warp serves ({@code TILE}). */
    public static final int TILE = 8;
    /** Warps per attention block ({@code ATT_WARPS}). */
    public static final int ATTENTION_WARPS = 4;
    /** Largest head the attention kernel holds in registers ({@code MAX_PER_LANE * 32}). */
    public static final int MAX_HEAD_DIM = 256;
    /** Fewest positions a split-K split walks. */
    public static final int MIN_SPLIT_POSITIONS = 64;
    /** Most splits per (head, row). */
    public static final int MAX_SPLITS = 64;
    /** Threads of element-wise and per-row kernels. */
    public static final int ROW_THREADS = 256;

    private LaunchGeometry() {}

    /** Blocks of a product over {@code rows} weight rows: one warp each. */
    public static int matmulBlocks(int rows) {
        return ceilDiv(rows, MATMUL_WARPS);
    }

    public static int matmulThreads() {
        return MATMUL_WARPS * WARP;
    }

    /** Blocks of quantize_q8_0 over {@code blocks} 32-value blocks, 8 warps per block. */
    public static int quantizeBlocks(long blocks) {
        return Math.toIntExact(ceilDiv(blocks, 8));
    }

    public static int quantizeThreads() {
        return 8 * WARP;
    }

    /** Threads of a norm block over groups of {@code group} values: a multiple of 32, at most 256. */
    public static int normThreads(int group) {
        return Math.min(ROW_THREADS, ceilDiv(group, WARP) * WARP);
    }

    /** Blocks of a grid-stride element-wise kernel over {@code n} elements. */
    public static int elementwiseBlocks(long n) {
        return (int) Math.max(1, Math.min(65535, ceilDiv(n, ROW_THREADS)));
    }

    /**
     * Split-K splits for attention: enough blocks to fill {@code sms} multiprocessors twice over,
     * but no split shorter than {@link #MIN_SPLIT_POSITIONS} positions.
     */
    public static int attentionSplits(int maxLen, int rows, int heads, int sms) {
        int wanted = ceilDiv(2 * sms, Math.max(1, rows * heads));
        int byLength = Math.max(1, maxLen / MIN_SPLIT_POSITIONS);
        return Math.max(1, Math.min(Math.min(wanted, byLength), MAX_SPLITS));
    }

    /** Positions per split so that {@code splits} splits cover {@code maxLen}. */
    public static int attentionChunk(int maxLen, int splits) {
        return Math.max(1, ceilDiv(maxLen, splits));
    }

    public static int attentionThreads() {
        return ATTENTION_WARPS * WARP;
    }

    /** Floats of the split-K scratch: per (row, head, split) a max, a sum and headDim outputs. */
    public static long attentionScratchFloats(int rows, int heads, int splits, int headDim) {
        return (long) rows * heads * splits * (headDim + 2);
    }

    /** Dynamic shared memory of route: two float arrays and one int array of {@code experts}. */
    public static int routeSharedBytes(int experts) {
        return 3 * experts * 4;
    }

    /** Dynamic shared memory of moe_group: experts + 1 ints. */
    public static int groupSharedBytes(int experts) {
        return (experts + 1) * 4;
    }

    static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }
}
