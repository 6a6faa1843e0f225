package io.moestream.runtime.backend;

import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.graph.Forward;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.model.ModelConfig;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/**
 * Runs the model's forward pass ({@link Forward}, the same as the CPU engine's) on a device
 * {@link Backend} ({@link DeviceOps}): one {@link #step} runs a batch that mixes prefill chunks and
 * decode tokens of several sequences, with their KV in a paged pool on the device. Each sequence
 * owns a {@link BlockTable}; rows of the batch are the tokens of all chunks, in order.
 *
 * <p>KV as in the engine's {@code PagedKvCache}: a block's positions are written as float32 into an
 * open block; in each layer, every block that the pass fills is compressed into a sealed block
 * ({@link Backend#kvSeal}) before attention, and a query reads the blocks before its own sealed and
 * its own block open. So chunking and batching do not change results, and the blocks are the
 * engine's bytes ({@link #sealedBlock}, {@link #tailBlock}, {@link #load} move them to and from
 * keyed state).
 *
 * <p>Not thread-safe: one instance per engine (Flink slot). Weights are shared per device.
 */
public final class BackendForward implements AutoCloseable {

    /**
     * @param maxRows     most tokens per forward pass (longer steps are split, as chunked prefill)
     * @param kvBlocks    sealed KV blocks in the pool
     * @param blockTokens positions per KV block
     * @param codec       storage of sealed blocks
     * @param openBlocks  open (float32) blocks in the pool: one per resident sequence with a partial
     *                    block, plus those a pass fills ({@link #openBlocksFor})
     */
    public record Options(int maxRows, int kvBlocks, int blockTokens, KvCodec codec, int openBlocks) {

        /** Sequences the four-argument constructor leaves open-block room for. */
        static final int DEFAULT_SEQUENCES = 8;

        public Options {
            if (maxRows <= 0 || kvBlocks <= 0 || blockTokens <= 0 || openBlocks <= 0) {
                throw new IllegalArgumentException("maxRows, kvBlocks, blockTokens and openBlocks must be positive");
            }
        }

        /** Room for the open blocks of {@value #DEFAULT_SEQUENCES} resident sequences. */
        public Options(int maxRows, int kvBlocks, int blockTokens, KvCodec codec) {
            this(maxRows, kvBlocks, blockTokens, codec, openBlocksFor(DEFAULT_SEQUENCES, maxRows, blockTokens));
        }

        /**
         * Open blocks enough for {@code sequences} resident sequences: each holds at most one between
         * steps, and a pass of {@code maxRows} rows over them maps at most {@code maxRows / B + 2} more
         * per sequence it touches.
         */
        public static int openBlocksFor(int sequences, int maxRows, int blockTokens) {
            return maxRows / blockTokens + 3 * sequences;
        }

        /** 64 rows per pass, 16-token F32 blocks, room for {@code sequences} full contexts. */
        public static Options forSequences(ModelConfig c, int sequences) {
            return forSequences(c, sequences, 16, KvCodec.F32);
        }

        /** 64 rows per pass, room for {@code sequences} full contexts with blocks of {@code blockTokens} in {@code codec}. */
        public static Options forSequences(ModelConfig c, int sequences, int blockTokens, KvCodec codec) {
            int perSeq = (c.contextLength() + blockTokens - 1) / blockTokens;
            return new Options(64, perSeq * sequences, blockTokens, codec, openBlocksFor(sequences, 64, blockTokens));
        }
    }

    /** One sequence's place in the KV pool. */
    public static final class Sequence {
        private final BlockTable table;

        Sequence(int blockTokens) {
            this.table = new BlockTable(blockTokens);
        }

        /** Positions held. */
        public int length() {
            return table.length();
        }

        /** Its block table (sealed and open blocks). */
        public BlockTable blocks() {
            return table;
        }
    }

    /** Tokens to append to a sequence in one step (a prefill chunk, or one decode token). */
    public record Chunk(Sequence sequence, int[] tokens) {}

    private final Backend backend;
    private final ModelConfig c;
    private final Options options;
    private final KvPool pool;
    private final BlockAllocator sealedBlocks;
    private final BlockAllocator openBlocks;
    private final int tableWidth;
    private final DeviceOps ops;
    private final Forward forward;

    // step metadata, I32, capacity maxRows
    private final Tensor tokenIds;  // (rows, 1)
    private final Tensor positions; // (rows, 1)
    private final Tensor slots;     // (rows, 1) open-block slot of each row's position
    private final Tensor seals;     // (rows, 2) {open, sealed} of each block the pass fills
    private final Tensor rowSeq;    // (rows, 1) index of the row's chunk
    private final Tensor rowLen;    // (rows, 1) positions the row attends to
    private final Tensor rowOpen;   // (rows, 1) open block of the row's own block
    private final Tensor tables;    // (rows, tableWidth) sealed blocks of each chunk's sequence
    private final Tensor lastRows;  // (rows, 1) last row of each finishing chunk

    public BackendForward(Model model, Backend backend, Options options) throws GgufFormatException {
        this.backend = backend;
        this.c = model.config();
        this.options = options;
        if (!backend.supports(options.codec())) {
            throw new IllegalArgumentException("backend " + backend.name() + " cannot attend over " + options.codec() + " KV blocks");
        }
        KvLayout layout = new KvLayout(c.layers(), c.kvHeads(), c.headDim(), options.blockTokens(), options.codec());
        DeviceWeights weights = DeviceWeights.upload(backend, model.gguf(), c);
        this.pool = backend.allocateKv(layout, options.kvBlocks(), options.openBlocks());
        this.sealedBlocks = new BlockAllocator(options.kvBlocks());
        this.openBlocks = new BlockAllocator(options.openBlocks(), "open ");
        this.tableWidth = (c.contextLength() + options.blockTokens() - 1) / options.blockTokens();
        int n = options.maxRows();
        Tensor.DType i32 = Tensor.DType.I32;
        tokenIds = backend.allocate(i32, n, 1);
        positions = backend.allocate(i32, n, 1);
        slots = backend.allocate(i32, n, 1);
        seals = backend.allocate(i32, n, 2);
        rowSeq = backend.allocate(i32, n, 1);
        rowLen = backend.allocate(i32, n, 1);
        rowOpen = backend.allocate(i32, n, 1);
        tables = backend.allocate(i32, n, tableWidth);
        lastRows = backend.allocate(i32, n, 1);
        this.ops = new DeviceOps(backend, c, weights, pool, n);
        this.forward = Forward.of(c, ops);
    }

    public Backend backend() {
        return backend;
    }

    public Options options() {
        return options;
    }

    /** The paged KV pool (read blocks with {@link #sealedBlock} and {@link #tailBlock}). */
    public KvPool pool() {
        return pool;
    }

    /** Free sealed blocks. */
    public int freeBlocks() {
        return sealedBlocks.freeBlocks();
    }

    public Sequence newSequence() {
        return new Sequence(options.blockTokens());
    }

    /**
     * A sequence of {@code length} positions from stored blocks (e.g. a context in keyed state): the
     * full blocks {@code sealed.apply(i)} for {@code i < length / B} and, when {@code length} is not a
     * multiple of B, the open {@code tail}, all in the {@link KvLayout} format.
     *
     * @throws IllegalStateException when the pool has no room (nothing is taken then)
     */
    public Sequence load(int length, IntFunction<byte[]> sealed, byte[] tail) {
        if (length < 0 || length > c.contextLength()) {
            throw new IllegalArgumentException("length " + length + " is outside 0.." + c.contextLength());
        }
        int bt = options.blockTokens();
        int full = length / bt;
        if (full > sealedBlocks.freeBlocks()) {
            throw new IllegalStateException("KV pool is full (" + sealedBlocks.capacity() + " blocks): a context of " + length
                    + " positions needs " + full + ", " + sealedBlocks.freeBlocks() + " are free");
        }
        if (length % bt != 0 && openBlocks.freeBlocks() == 0) {
            throw new IllegalStateException("KV pool is full (" + openBlocks.capacity() + " open blocks)");
        }
        Sequence s = newSequence();
        try {
            for (int i = 0; i < full; i++) {
                int block = sealedBlocks.allocate();
                s.table.appendSealed(block);
                backend.writeKvBlock(pool, block, sealed.apply(i));
            }
            if (length % bt != 0) {
                int open = openBlocks.allocate();
                s.table.setTail(open);
                backend.writeOpenKvBlock(pool, open, tail);
            }
            s.table.advance(length, openBlocks);
        } catch (RuntimeException e) {
            release(s);
            throw e;
        }
        return s;
    }

    /** Sealed logical block {@code i} of {@code s} in the {@link KvLayout} format (a block of keyed state). */
    public byte[] sealedBlock(Sequence s, int i) {
        return backend.readKvBlock(pool, s.table.sealed(i));
    }

    /** The open block holding {@code s}'s partial last block (float32 {@link KvLayout} format), or null when there is none. */
    public byte[] tailBlock(Sequence s) {
        int open = s.table.tail();
        return open < 0 ? null : backend.readOpenKvBlock(pool, open);
    }

    /** Frees the sequence's blocks. */
    public void release(Sequence s) {
        s.table.releaseAll(sealedBlocks, openBlocks);
    }

    /** Appends {@code tokens} to {@code s} and returns the logits at the last of them. */
    public float[] forward(Sequence s, int[] tokens) {
        return step(List.of(new Chunk(s, tokens)))[0];
    }

    /**
     * Runs the chunks (each a different sequence) as one batch, split into passes of at most
     * {@code maxRows} tokens, and returns the logits at the last token of each chunk, in order.
     *
     * @throws IllegalArgumentException before any work when a chunk is empty, has a token outside the
     *                                  vocabulary, exceeds the context, or two chunks share a sequence
     * @throws IllegalStateException    when the pool is full; the passes before it stay applied
     */
    public float[][] step(List<Chunk> chunks) {
        Map<Sequence, Boolean> seen = new IdentityHashMap<>();
        for (Chunk ch : chunks) {
            if (seen.put(ch.sequence(), Boolean.TRUE) != null) {
                throw new IllegalArgumentException("a step holds at most one chunk per sequence");
            }
            if (ch.tokens().length == 0) {
                throw new IllegalArgumentException("a chunk needs at least one token");
            }
            for (int t : ch.tokens()) {
                if (t < 0 || t >= c.vocabSize()) {
                    throw new IllegalArgumentException("token id " + t + " is outside the vocabulary 0.." + (c.vocabSize() - 1));
                }
            }
            int after = ch.sequence().length() + ch.tokens().length;
            if (after > c.contextLength()) {
                throw new IllegalArgumentException("chunk needs " + after + " positions, more than the context length " + c.contextLength());
            }
        }
        float[][] out = new float[chunks.size()][];
        int[] done = new int[chunks.size()];
        boolean remaining = true;
        while (remaining) {
            List<Piece> pass = new ArrayList<>();
            int rows = 0;
            for (int i = 0; i < chunks.size() && rows < options.maxRows(); i++) {
                int left = chunks.get(i).tokens().length - done[i];
                if (left > 0) {
                    int take = Math.min(left, options.maxRows() - rows);
                    pass.add(new Piece(i, chunks.get(i), done[i], take));
                    done[i] += take;
                    rows += take;
                }
            }
            float[][] passLogits = run(pass, rows);
            for (int p = 0; p < pass.size(); p++) {
                if (passLogits[p] != null) {
                    out[pass.get(p).chunk] = passLogits[p];
                }
            }
            remaining = false;
            for (int i = 0; i < chunks.size(); i++) {
                remaining |= done[i] < chunks.get(i).tokens().length;
            }
        }
        return out;
    }

    /** Tokens {@code from .. from+count-1} of chunk {@code chunk}. */
    private record Piece(int chunk, Chunk source, int from, int count) {
        boolean finishes() {
            return from + count == source.tokens().length;
        }

        BlockTable table() {
            return source.sequence().table;
        }
    }

    /** Fails, before anything changes, when the pool cannot map the blocks the pass writes. */
    private void checkRoom(List<Piece> pass) {
        int sealed = 0;
        int open = 0;
        for (Piece p : pass) {
            int to = p.table().length() + p.count;
            sealed += p.table().sealedNeeded(to);
            open += p.table().openNeeded(to);
        }
        if (sealed > sealedBlocks.freeBlocks()) {
            throw new IllegalStateException("KV pool is full (" + sealedBlocks.capacity() + " blocks): the step needs " + sealed
                    + " more, " + sealedBlocks.freeBlocks() + " are free; finish or evict a sequence first");
        }
        if (open > openBlocks.freeBlocks()) {
            throw new IllegalStateException("KV pool is full (" + openBlocks.capacity() + " open blocks): the step needs " + open
                    + " more, " + openBlocks.freeBlocks() + " are free");
        }
    }

    /** One forward pass over {@code n} rows; logits for the pieces that finish their chunk, else null. */
    private float[][] run(List<Piece> pass, int n) {
        checkRoom(pass);
        int bt = options.blockTokens();
        int[] hTokens = new int[n];
        int[] hPos = new int[n];
        int[] hSlots = new int[n];
        int[] hSeals = new int[2 * n];
        int[] hRowSeq = new int[n];
        int[] hRowLen = new int[n];
        int[] hRowOpen = new int[n];
        int[] hTables = new int[pass.size() * tableWidth];
        List<Integer> finishing = new ArrayList<>();
        int r = 0;
        int sealCount = 0;
        int maxLen = 0;
        for (int p = 0; p < pass.size(); p++) {
            Piece piece = pass.get(p);
            BlockTable table = piece.table();
            int start = table.length();
            int end = start + piece.count;
            table.reserve(end, sealedBlocks, openBlocks);
            for (int i = 0; i < piece.count; i++, r++) {
                hTokens[r] = piece.source.tokens()[piece.from + i];
                hPos[r] = start + i;
                hSlots[r] = table.slot(start + i);
                hRowSeq[r] = p;
                hRowLen[r] = start + i + 1;
                hRowOpen[r] = table.open((start + i) / bt);
                maxLen = Math.max(maxLen, hRowLen[r]);
            }
            for (int j = start / bt; j < end / bt; j++) { // blocks this pass fills
                hSeals[2 * sealCount] = table.open(j);
                hSeals[2 * sealCount + 1] = table.sealed(j);
                sealCount++;
            }
            int[] blocks = table.sealedBlocks();
            System.arraycopy(blocks, 0, hTables, p * tableWidth, blocks.length);
            if (piece.finishes()) {
                finishing.add(r - 1);
            }
        }
        int m = finishing.size();
        Tensor tokensN = tokenIds.rows(n);
        Tensor sealsN = sealCount == 0 ? null : seals.rows(sealCount);
        Tensor lastN = m == 0 ? null : lastRows.rows(m);
        backend.write(tokensN, hTokens);
        backend.write(positions.rows(n), hPos);
        backend.write(slots.rows(n), hSlots);
        if (sealsN != null) {
            backend.write(sealsN, Arrays.copyOf(hSeals, 2 * sealCount));
        }
        backend.write(rowSeq.rows(n), hRowSeq);
        backend.write(rowLen.rows(n), hRowLen);
        backend.write(rowOpen.rows(n), hRowOpen);
        backend.write(tables.rows(pass.size()), hTables);
        if (lastN != null) {
            backend.write(lastN, finishing.stream().mapToInt(Integer::intValue).toArray());
        }
        AttentionBatch batch = new AttentionBatch(rowSeq.rows(n), rowLen.rows(n), tables.rows(pass.size()), rowOpen.rows(n), maxLen);
        ops.begin(new DeviceOps.Pass(n, tokensN, positions.rows(n), slots.rows(n), sealsN, batch, lastN));
        forward.run();
        for (Piece piece : pass) {
            BlockTable table = piece.table();
            table.advance(table.length() + piece.count, openBlocks);
        }

        float[][] out = new float[pass.size()][];
        float[] all = ops.logitsOut();
        int f = 0;
        for (int p = 0; p < pass.size(); p++) {
            if (pass.get(p).finishes()) {
                out[p] = Arrays.copyOfRange(all, f * c.vocabSize(), (f + 1) * c.vocabSize());
                f++;
            }
        }
        return out;
    }

    @Override
    public void close() {
        for (Tensor t : new Tensor[] {tokenIds, positions, slots, seals, rowSeq, rowLen, rowOpen, tables, lastRows}) {
            t.close();
        }
        ops.close();
        pool.close();
    }
}
