package io.moestream.runtime.backend;

import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.model.Model;
import io.moestream.runtime.model.ModelConfig;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code llama}/{@code qwen3moe} forward pass (dense or MoE) written once against the
 * {@link Backend} SPI: one {@link #step} runs a batch that mixes prefill chunks and decode tokens of
 * several sequences, with their KV in a paged pool on the backend. Each sequence owns a
 * {@link BlockTable}; rows of the batch are the tokens of all chunks, in order.
 *
 * <p>Not thread-safe: one instance per engine (Flink slot). Weights are shared per device.
 */
public final class BackendForward implements AutoCloseable {

    /**
     * @param maxRows     most tokens per forward pass (longer steps are split, as chunked prefill)
     * @param kvBlocks    physical KV blocks in the pool
     * @param blockTokens positions per KV block
     * @param codec       KV element storage
     */
    public record Options(int maxRows, int kvBlocks, int blockTokens, KvCodec codec) {

        public Options {
            if (maxRows <= 0 || kvBlocks <= 0 || blockTokens <= 0) {
                throw new IllegalArgumentException("maxRows, kvBlocks and blockTokens must be positive");
            }
        }

        /** 64 rows per pass, 16-token F32 blocks, room for {@code sequences} full contexts. */
        public static Options forSequences(ModelConfig c, int sequences) {
            int perSeq = (c.contextLength() + 15) / 16;
            return new Options(64, perSeq * sequences, 16, KvCodec.F32);
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

        /** Its block table (to write changed blocks back to keyed state, or to map restored ones). */
        public BlockTable blocks() {
            return table;
        }
    }

    /** Tokens to append to a sequence in one step (a prefill chunk, or one decode token). */
    public record Chunk(Sequence sequence, int[] tokens) {}

    private final Backend backend;
    private final ModelConfig c;
    private final ResidentWeights w;
    private final Options options;
    private final KvPool pool;
    private final BlockAllocator allocator;
    private final RopeSpec rope;
    private final RouterSpec router;
    private final int tableWidth;

    // step metadata, I32, capacity maxRows
    private final Tensor tokenIds;  // (rows, 1)
    private final Tensor positions; // (rows, 1)
    private final Tensor slots;     // (rows, 1) pool slot of each row's position
    private final Tensor rowSeq;    // (rows, 1) index of the row's chunk
    private final Tensor rowLen;    // (rows, 1) positions the row attends to
    private final Tensor tables;    // (rows, tableWidth) block table of each chunk's sequence
    private final Tensor lastRows;  // (rows, 1) last row of each finishing chunk
    // activations, capacity maxRows (llama2.c names)
    private final Tensor x;      // (rows, dim) residual stream
    private final Tensor xb;     // (rows, dim) normalised input of a sub-layer
    private final Tensor xb2;    // (rows, dim) sub-layer output
    private final Tensor q;      // (rows, heads * headDim)
    private final Tensor k;      // (rows, kvDim)
    private final Tensor v;      // (rows, kvDim)
    private final Tensor att;    // (rows, heads * headDim) attention output
    private final Tensor hb;     // (rows * used, ffn) gate activations, per expert assignment for MoE
    private final Tensor hb2;    // (rows * used, ffn) up activations
    private final Tensor down;   // (rows * used, dim) expert outputs (MoE only)
    private final Tensor routerLogits; // (rows, experts)
    private final Tensor expertIds;    // (rows, used) I32
    private final Tensor expertWeights; // (rows, used)
    private final Tensor xLast;  // (rows, dim) residual of the finishing rows
    private final Tensor logits; // (rows, vocab)

    public BackendForward(Model model, Backend backend, Options options) throws GgufFormatException {
        this.backend = backend;
        this.c = model.config();
        this.options = options;
        if (!backend.supports(options.codec())) {
            throw new IllegalArgumentException("backend " + backend.name() + " cannot attend over " + options.codec() + " KV blocks");
        }
        this.w = ResidentWeights.upload(backend, model.gguf(), c);
        this.pool = backend.allocateKv(new KvLayout(c.layers(), c.kvHeads(), c.headDim(), options.blockTokens(), options.codec()),
                options.kvBlocks());
        this.allocator = new BlockAllocator(options.kvBlocks());
        this.rope = RopeSpec.of(c);
        this.router = c.isMoe() ? RouterSpec.mixtral(c.experts(), c.expertsUsed()) : null;
        this.tableWidth = (c.contextLength() + options.blockTokens() - 1) / options.blockTokens();

        int n = options.maxRows();
        int used = c.isMoe() ? c.expertsUsed() : 1;
        int ffn = c.isMoe() ? c.expertDim() : c.ffnDim();
        Tensor.DType i32 = Tensor.DType.I32;
        Tensor.DType f32 = Tensor.DType.F32;
        tokenIds = backend.allocate(i32, n, 1);
        positions = backend.allocate(i32, n, 1);
        slots = backend.allocate(i32, n, 1);
        rowSeq = backend.allocate(i32, n, 1);
        rowLen = backend.allocate(i32, n, 1);
        tables = backend.allocate(i32, n, tableWidth);
        lastRows = backend.allocate(i32, n, 1);
        x = backend.allocate(f32, n, c.dim());
        xb = backend.allocate(f32, n, c.dim());
        xb2 = backend.allocate(f32, n, c.dim());
        q = backend.allocate(f32, n, c.qDim());
        k = backend.allocate(f32, n, c.kvDim());
        v = backend.allocate(f32, n, c.kvDim());
        att = backend.allocate(f32, n, c.qDim());
        hb = backend.allocate(f32, n * used, ffn);
        hb2 = backend.allocate(f32, n * used, ffn);
        down = c.isMoe() ? backend.allocate(f32, n * used, c.dim()) : null;
        routerLogits = c.isMoe() ? backend.allocate(f32, n, c.experts()) : null;
        expertIds = c.isMoe() ? backend.allocate(i32, n, used) : null;
        expertWeights = c.isMoe() ? backend.allocate(f32, n, used) : null;
        xLast = backend.allocate(f32, n, c.dim());
        logits = backend.allocate(f32, n, c.vocabSize());
    }

    public Backend backend() {
        return backend;
    }

    /** The paged KV pool (read changed blocks with {@link Backend#readKvBlock}). */
    public KvPool pool() {
        return pool;
    }

    public BlockAllocator allocator() {
        return allocator;
    }

    public Sequence newSequence() {
        return new Sequence(options.blockTokens());
    }

    /** Frees the sequence's blocks. */
    public void release(Sequence s) {
        s.table.releaseAll(allocator);
    }

    /** Appends {@code tokens} to {@code s} and returns the logits at the last of them. */
    public float[] forward(Sequence s, int[] tokens) {
        return step(List.of(new Chunk(s, tokens)))[0];
    }

    /**
     * Runs the chunks (each a different sequence) as one batch, split into passes of at most
     * {@code maxRows} tokens, and returns the logits at the last token of each chunk, in order.
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
    }

    /** One forward pass over {@code n} rows; logits for the pieces that finish their chunk, else null. */
    private float[][] run(List<Piece> pass, int n) {
        int[] hTokens = new int[n];
        int[] hPos = new int[n];
        int[] hSlots = new int[n];
        int[] hRowSeq = new int[n];
        int[] hRowLen = new int[n];
        int[] hTables = new int[pass.size() * tableWidth];
        List<Integer> finishing = new ArrayList<>();
        int r = 0;
        int maxLen = 0;
        for (int p = 0; p < pass.size(); p++) {
            Piece piece = pass.get(p);
            BlockTable table = piece.source.sequence().table;
            int start = table.length();
            table.reserve(start + piece.count, allocator);
            for (int i = 0; i < piece.count; i++, r++) {
                hTokens[r] = piece.source.tokens()[piece.from + i];
                hPos[r] = start + i;
                hSlots[r] = table.slot(start + i);
                hRowSeq[r] = p;
                hRowLen[r] = start + i + 1;
                maxLen = Math.max(maxLen, hRowLen[r]);
            }
            int[] blocks = table.physicalBlocks();
            System.arraycopy(blocks, 0, hTables, p * tableWidth, blocks.length);
            if (piece.finishes()) {
                finishing.add(r - 1);
            }
        }
        Tensor tokensN = tokenIds.rows(n);
        Tensor posN = positions.rows(n);
        Tensor slotsN = slots.rows(n);
        backend.write(tokensN, hTokens);
        backend.write(posN, hPos);
        backend.write(slotsN, hSlots);
        backend.write(rowSeq.rows(n), hRowSeq);
        backend.write(rowLen.rows(n), hRowLen);
        backend.write(tables.rows(pass.size()), hTables);
        AttentionBatch batch = new AttentionBatch(rowSeq.rows(n), rowLen.rows(n), tables.rows(pass.size()), maxLen);

        Tensor xN = x.rows(n);
        Tensor xbN = xb.rows(n);
        Tensor xb2N = xb2.rows(n);
        Tensor qN = q.rows(n);
        Tensor kN = k.rows(n);
        Tensor vN = v.rows(n);
        Tensor attN = att.rows(n);

        backend.embed(w.tokenEmbedding, tokensN, xN);
        for (int l = 0; l < c.layers(); l++) {
            ResidentWeights.Layer layer = w.layers[l];

            // attention rmsnorm
            backend.rmsnorm(xN, layer.attnNorm, c.rmsEps(), xbN);

            // qkv matmuls
            backend.matmul(layer.wq, xbN, qN);
            backend.matmul(layer.wk, xbN, kN);
            backend.matmul(layer.wv, xbN, vN);

            // per-head QK norm (qwen3moe), then RoPE
            if (c.qkNorm()) {
                backend.rmsnorm(qN, layer.qNorm, c.rmsEps(), qN);
                backend.rmsnorm(kN, layer.kNorm, c.rmsEps(), kN);
            }
            backend.rope(qN, posN, rope);
            backend.rope(kN, posN, rope);

            // remember these positions' keys and values, then attend over the paged cache
            backend.kvStore(pool, l, kN, vN, slotsN);
            backend.attention(qN, pool, l, batch, attN);

            // output projection and residual
            backend.matmul(layer.wo, attN, xb2N);
            backend.add(xN, xb2N);

            // ffn rmsnorm, dense SwiGLU or mixture of experts, residual
            backend.rmsnorm(xN, layer.ffnNorm, c.rmsEps(), xbN);
            if (c.isMoe()) {
                int a = n * c.expertsUsed();
                Tensor idsN = expertIds.rows(n);
                Tensor weightsN = expertWeights.rows(n);
                backend.matmul(layer.router, xbN, routerLogits.rows(n));
                backend.route(routerLogits.rows(n), null, router, idsN, weightsN);
                backend.expertMatmul(layer.expertW1, xbN, idsN, hb.rows(a));
                backend.expertMatmul(layer.expertW3, xbN, idsN, hb2.rows(a));
                backend.swiglu(hb.rows(a), hb2.rows(a), hb.rows(a));
                backend.expertMatmul(layer.expertW2, hb.rows(a), idsN, down.rows(a));
                backend.combine(down.rows(a), weightsN, xb2N);
            } else {
                backend.matmul(layer.w1, xbN, hb.rows(n));
                backend.matmul(layer.w3, xbN, hb2.rows(n));
                backend.swiglu(hb.rows(n), hb2.rows(n), hb.rows(n));
                backend.matmul(layer.w2, hb.rows(n), xb2N);
            }
            backend.add(xN, xb2N);
        }
        for (Piece piece : pass) {
            BlockTable table = piece.source.sequence().table;
            table.advance(table.length() + piece.count);
        }

        float[][] out = new float[pass.size()][];
        int m = finishing.size();
        if (m == 0) {
            return out;
        }
        int[] hLast = finishing.stream().mapToInt(Integer::intValue).toArray();
        Tensor lastN = lastRows.rows(m);
        backend.write(lastN, hLast);
        backend.gather(xN, lastN, xLast.rows(m));
        backend.rmsnorm(xLast.rows(m), w.outputNorm, c.rmsEps(), xb.rows(m));
        backend.matmul(w.output, xb.rows(m), logits.rows(m));
        float[] all = new float[m * c.vocabSize()];
        backend.read(logits.rows(m), all);
        int f = 0;
        for (int p = 0; p < pass.size(); p++) {
            if (pass.get(p).finishes()) {
                out[p] = java.util.Arrays.copyOfRange(all, f * c.vocabSize(), (f + 1) * c.vocabSize());
                f++;
            }
        }
        return out;
    }

    @Override
    public void close() {
        for (Tensor t : new Tensor[] {tokenIds, positions, slots, rowSeq, rowLen, tables, lastRows, x, xb, xb2, q, k, v, att,
                hb, hb2, down, routerLogits, expertIds, expertWeights, xLast, logits}) {
            if (t != null) {
                t.close();
            }
        }
        pool.close();
    }
}
