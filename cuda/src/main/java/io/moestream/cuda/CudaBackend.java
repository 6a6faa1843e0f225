package io.moestream.cuda;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD8;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import io.moestream.runtime.backend.AttentionBatch;
import io.moestream.runtime.backend.AttentionSpec;
import io.moestream.runtime.backend.Backend;
import io.moestream.runtime.backend.KvLayout;
import io.moestream.runtime.backend.KvPool;
import io.moestream.runtime.backend.RopeSpec;
import io.moestream.runtime.backend.Tensor;
import io.moestream.runtime.backend.WeightHandle;
import io.moestream.runtime.gguf.GgmlType;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.model.ModelConfig;
import io.moestream.runtime.model.YarnRope;
import io.moestream.runtime.moe.RoutingConfig;

import java.util.ArrayList;
import java.util.List;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;

/**
 * The {@link Backend} SPI on one NVIDIA GPU with our own kernels ({@code src/main/cuda}) launched
 * through JCuda's driver API. Every driver call is checked (JCuda exceptions are enabled in
 * {@link CudaDriver}). Ops run in order on this backend's stream (a blocking stream, so the
 * synchronous copies of {@link #write}/{@link #read} order with it); weights live in the shared
 * {@link CudaDevice} registry, activations and the KV pool belong to this instance.
 */
public final class CudaBackend implements Backend {

    private final CudaDevice device;
    private final CUstream stream = new CUstream();
    private final List<CudaWeight> acquired = new ArrayList<>();

    // grow-only scratch
    private final Scratch xq = new Scratch();        // int8 quantized activation rows
    private final Scratch xd = new Scratch();        // float scale per 32 activation values
    private final Scratch offsets = new Scratch();   // int (experts + 1) group offsets
    private final Scratch assign = new Scratch();    // int assignments sorted by expert
    private final Scratch partial = new Scratch();   // float split-K attention partials

    /** Opens {@code cuda:<deviceIndex>}; use {@link CudaBackendProvider#open} for checked opening. */
    public CudaBackend(int deviceIndex) {
        this.device = CudaDevice.get(deviceIndex);
        bind();
        cuStreamCreate(stream, CUstream_flags.CU_STREAM_DEFAULT);
    }

    @Override
    public String name() {
        return "cuda:" + device.index + " (" + device.description + ")";
    }

    /** Every codec; int4 needs an even group size (one thread writes both nibbles of a code byte). */
    @Override
    public boolean supports(KvCodec codec) {
        return KvKernelArgs.supported(codec);
    }

    /** Bytes of weights resident on this device (all backends together). */
    public long residentWeightBytes() {
        return device.residentBytes();
    }

    /** Streaming multiprocessors of the device. */
    public int multiprocessors() {
        return device.multiprocessors;
    }

    // ---- memory ------------------------------------------------------------------------------

    @Override
    public WeightHandle upload(String key, GgufTensor tensor) {
        bind();
        CudaWeight w = device.acquire(key, tensor);
        acquired.add(w);
        return w;
    }

    @Override
    public Tensor allocate(Tensor.DType dtype, int rows, int cols) {
        bind();
        long bytes = 4L * rows * cols;
        CUdeviceptr ptr = device.allocate(bytes, "a " + rows + " x " + cols + " " + dtype + " tensor");
        cuMemsetD8(ptr, (byte) 0, Math.max(4, bytes));
        return new CudaTensor(dtype, rows, cols, ptr, device);
    }

    @Override
    public void write(Tensor t, float[] src) {
        CudaTensor c = tensor(t, Tensor.DType.F32);
        checkLength(c, src.length);
        bind();
        cuMemcpyHtoD(c.ptr, Pointer.to(src), c.bytes());
    }

    @Override
    public void write(Tensor t, int[] src) {
        CudaTensor c = tensor(t, Tensor.DType.I32);
        checkLength(c, src.length);
        bind();
        cuMemcpyHtoD(c.ptr, Pointer.to(src), c.bytes());
    }

    @Override
    public void read(Tensor t, float[] dst) {
        CudaTensor c = tensor(t, Tensor.DType.F32);
        checkLength(c, dst.length);
        synchronize();
        cuMemcpyDtoH(Pointer.to(dst), c.ptr, c.bytes());
    }

    @Override
    public void read(Tensor t, int[] dst) {
        CudaTensor c = tensor(t, Tensor.DType.I32);
        checkLength(c, dst.length);
        synchronize();
        cuMemcpyDtoH(Pointer.to(dst), c.ptr, c.bytes());
    }

    @Override
    public KvPool allocateKv(KvLayout layout, int blocks, int openBlocks) {
        if (!supports(layout.codec())) {
            throw new IllegalArgumentException("the CUDA backend has no kernels for " + layout.codec() + " KV blocks");
        }
        bind();
        long sealedBytes = layout.blockBytes() * blocks;
        long openBytes = layout.openBlockBytes() * openBlocks;
        CUdeviceptr sealed = device.allocate(sealedBytes, blocks + " sealed KV blocks");
        CUdeviceptr open;
        try {
            cuMemsetD8(sealed, (byte) 0, sealedBytes);
            open = device.allocate(openBytes, openBlocks + " open KV blocks");
        } catch (RuntimeException e) {
            cuMemFree(sealed);
            throw e;
        }
        cuMemsetD8(open, (byte) 0, openBytes);
        return new CudaKvPool(device, layout, blocks, openBlocks, sealed, open);
    }

    @Override
    public void writeKvBlock(KvPool pool, int block, byte[] bytes) {
        CudaKvPool p = pool(pool);
        upload(p.sealed, p.layout.blockBytes(), p.blocks, block, bytes);
    }

    @Override
    public byte[] readKvBlock(KvPool pool, int block) {
        CudaKvPool p = pool(pool);
        return download(p.sealed, p.layout.blockBytes(), p.blocks, block);
    }

    @Override
    public void writeOpenKvBlock(KvPool pool, int openBlock, byte[] bytes) {
        CudaKvPool p = pool(pool);
        upload(p.open, p.layout.openBlockBytes(), p.openBlocks, openBlock, bytes);
    }

    @Override
    public byte[] readOpenKvBlock(KvPool pool, int openBlock) {
        CudaKvPool p = pool(pool);
        return download(p.open, p.layout.openBlockBytes(), p.openBlocks, openBlock);
    }

    /** Copies {@code bytes} into block {@code block} of {@code count} blocks of {@code stride} bytes at {@code base}, after queued work. */
    private void upload(CUdeviceptr base, long stride, int count, int block, byte[] bytes) {
        checkBlock(block, count, bytes, stride);
        synchronize();
        cuMemcpyHtoD(base.withByteOffset(block * stride), Pointer.to(bytes), bytes.length);
    }

    /** Block {@code block} of {@code count} blocks of {@code stride} bytes at {@code base}, after queued work. */
    private byte[] download(CUdeviceptr base, long stride, int count, int block) {
        byte[] out = new byte[Math.toIntExact(stride)];
        checkBlock(block, count, out, stride);
        synchronize();
        cuMemcpyDtoH(Pointer.to(out), base.withByteOffset(block * stride), out.length);
        return out;
    }

    // ---- ops ---------------------------------------------------------------------------------

    @Override
    public void embed(WeightHandle table, Tensor tokens, Tensor out) {
        CudaWeight w = weight(table);
        CudaTensor ids = tensor(tokens, Tensor.DType.I32);
        CudaTensor o = tensor(out, Tensor.DType.F32);
        String kernel = "embed_" + suffix(w.type);
        if (ids.rows == 0) {
            return;
        }
        if (w.scales == null) { // plain types and the block types in their GGUF layout: (w, tokens, out, cols)
            launch(kernel, ids.rows, 1, 1, LaunchGeometry.ROW_THREADS, 0,
                    ptr(w.data), ptr(ids.ptr), ptr(o.ptr), i(w.cols));
        } else {
            launch(kernel, ids.rows, 1, 1, LaunchGeometry.ROW_THREADS, 0,
                    ptr(w.data), ptr(w.scales), ptr(ids.ptr), ptr(o.ptr), i(w.cols));
        }
    }

    @Override
    public void matmul(WeightHandle wh, Tensor x, Tensor out) {
        CudaWeight w = weight(wh);
        CudaTensor in = tensor(x, Tensor.DType.F32);
        CudaTensor o = tensor(out, Tensor.DType.F32);
        checkProduct(w, in, o);
        if (in.rows == 0) {
            return;
        }
        int grid = LaunchGeometry.matmulBlocks(w.rows);    // one warp per weight row
        int block = LaunchGeometry.matmulThreads();
        String kernel = "matmul_" + suffix(w.type);
        if (BlockDecoding.handles(w.type)) {
            quantize(in, w.type);
            // (blocks, xq, xd, out, rows, cols, n)
            launch(kernel, grid, 1, 1, block, 0, ptr(w.data), ptr(xq.ptr), ptr(xd.ptr), ptr(o.ptr), i(w.rows), i(w.cols), i(in.rows));
        } else if (w.scales == null) {
            // (weights, x, out, rows, cols, n)
            launch(kernel, grid, 1, 1, block, 0, ptr(w.data), ptr(in.ptr), ptr(o.ptr), i(w.rows), i(w.cols), i(in.rows));
        } else {
            quantize(in, w.type);
            // (quants, scales, xq, xd, out, rows, cols, n)
            launch(kernel, grid, 1, 1, block, 0, ptr(w.data), ptr(w.scales), ptr(xq.ptr), ptr(xd.ptr), ptr(o.ptr),
                    i(w.rows), i(w.cols), i(in.rows));
        }
    }

    @Override
    public void expertMatmul(WeightHandle wh, Tensor x, Tensor idsT, Tensor out) {
        CudaWeight w = weight(wh);
        CudaTensor in = tensor(x, Tensor.DType.F32);
        CudaTensor ids = tensor(idsT, Tensor.DType.I32);
        CudaTensor o = tensor(out, Tensor.DType.F32);
        int k = ids.cols;
        int assignments = ids.rows * k;
        boolean perAssignment = in.rows == assignments;
        if (!perAssignment && in.rows != ids.rows) {
            throw new IllegalArgumentException("expert x has " + in.rows + " rows; expected " + ids.rows + " tokens or " + assignments + " assignments");
        }
        checkProduct(w, in, o);
        if (assignments == 0) {
            return;
        }
        offsets.ensure(4L * (w.experts + 1));
        assign.ensure(4L * assignments);
        // (ids, assignments, experts, offsets, assign): one block sorts the assignments by expert
        launch("moe_group", 1, 1, 1, LaunchGeometry.ROW_THREADS, LaunchGeometry.groupSharedBytes(w.experts),
                ptr(ids.ptr), i(assignments), i(w.experts), ptr(offsets.ptr), ptr(assign.ptr));
        int gridX = LaunchGeometry.matmulBlocks(w.rows);   // one warp per expert row
        int gridY = w.experts;                              // one block column per expert
        int block = LaunchGeometry.matmulThreads();
        String kernel = "expert_matmul_" + suffix(w.type);
        if (BlockDecoding.handles(w.type)) {
            quantize(in, w.type);
            // (blocks, xq, xd, out, offsets, assign, rows, cols, k, perAssignment)
            launch(kernel, gridX, gridY, 1, block, 0, ptr(w.data), ptr(xq.ptr), ptr(xd.ptr), ptr(o.ptr), ptr(offsets.ptr),
                    ptr(assign.ptr), i(w.rows), i(w.cols), i(k), i(perAssignment ? 1 : 0));
        } else if (w.scales == null) {
            // (weights, x, out, offsets, assign, rows, cols, k, perAssignment)
            launch(kernel, gridX, gridY, 1, block, 0, ptr(w.data), ptr(in.ptr), ptr(o.ptr), ptr(offsets.ptr), ptr(assign.ptr),
                    i(w.rows), i(w.cols), i(k), i(perAssignment ? 1 : 0));
        } else {
            quantize(in, w.type);
            // (quants, scales, xq, xd, out, offsets, assign, rows, cols, k, perAssignment)
            launch(kernel, gridX, gridY, 1, block, 0, ptr(w.data), ptr(w.scales), ptr(xq.ptr), ptr(xd.ptr), ptr(o.ptr),
                    ptr(offsets.ptr), ptr(assign.ptr), i(w.rows), i(w.cols), i(k), i(perAssignment ? 1 : 0));
        }
    }

    /**
     * Quantizes the rows of x into the xq/xd scratch as the CPU does for {@code weightType}: Q8_K per
     * 256 values for the K-quants, else Q8_0 per 32.
     */
    private void quantize(CudaTensor x, GgmlType weightType) {
        int per = BlockDecoding.q8k(weightType) ? 256 : 32;
        if (x.cols % per != 0) {
            throw new IllegalArgumentException(weightType + " products need a multiple of " + per + " columns, got " + x.cols);
        }
        long values = (long) x.rows * x.cols;
        long blocks = values / per;
        xq.ensure(values);
        xd.ensure(4 * blocks);
        // (x, xq, xd, blocks): one warp per block of 32 or 256 values
        launch(per == 256 ? "quantize_q8_k" : "quantize_q8_0", LaunchGeometry.quantizeBlocks(blocks), 1, 1,
                LaunchGeometry.quantizeThreads(), 0, ptr(x.ptr), ptr(xq.ptr), ptr(xd.ptr), i(Math.toIntExact(blocks)));
    }

    @Override
    public void rmsnorm(Tensor x, WeightHandle weight, float eps, Tensor out) {
        CudaTensor in = tensor(x, Tensor.DType.F32);
        CudaTensor o = tensor(out, Tensor.DType.F32);
        CudaWeight w = weight(weight);
        if (w.type != GgmlType.F32 || w.rows != 1) {
            throw new IllegalArgumentException("norm weight " + w.name + " must be an F32 vector");
        }
        int group = w.cols;
        if (in.cols % group != 0) {
            throw new IllegalArgumentException("rmsnorm group " + group + " does not divide row width " + in.cols);
        }
        int groups = in.rows * (in.cols / group);
        if (groups == 0) {
            return;
        }
        // (x, weight, out, group, eps): one block per group
        launch("rmsnorm", groups, 1, 1, LaunchGeometry.normThreads(group), 0, ptr(in.ptr), ptr(w.data), ptr(o.ptr), i(group), f(eps));
    }

    @Override
    public void rope(Tensor x, Tensor positions, RopeSpec spec) {
        CudaTensor v = tensor(x, Tensor.DType.F32);
        CudaTensor pos = tensor(positions, Tensor.DType.I32);
        if (v.rows == 0) {
            return;
        }
        int heads = v.cols / spec.headDim();
        YarnRope y = spec.yarn();
        // (x, positions, heads, headDim, ropeDims, neox, thetaScale, freqScale, extFactor, low, high, mscale): one block per row
        launch("rope", v.rows, 1, 1, LaunchGeometry.ROW_THREADS, 0, ptr(v.ptr), ptr(pos.ptr), i(heads), i(spec.headDim()),
                i(spec.ropeDims()), i(spec.type() == ModelConfig.RopeType.NEOX ? 1 : 0), f(spec.thetaScale()),
                f(y == null ? 1f : y.freqScale()), f(y == null ? 0f : y.extFactor()), f(y == null ? 0f : y.low()),
                f(y == null ? 0f : y.high()), f(y == null ? 1f : y.mscale()));
    }

    @Override
    public void kvStore(KvPool pool, int layer, Tensor k, Tensor v, Tensor slots) {
        CudaKvPool p = pool(pool);
        KvLayout l = p.layout;
        CudaTensor kt = tensor(k, Tensor.DType.F32);
        CudaTensor vt = tensor(v, Tensor.DType.F32);
        CudaTensor s = tensor(slots, Tensor.DType.I32);
        if (s.rows == 0) {
            return;
        }
        // one block per row: (open, k, v, slots, layer, layers, kvHeads, headDim, blockTokens)
        launch("kv_store", s.rows, 1, 1, LaunchGeometry.normThreads(l.kvDim()), 0, ptr(p.open), ptr(kt.ptr), ptr(vt.ptr),
                ptr(s.ptr), i(layer), i(l.layers()), i(l.kvHeads()), i(l.headDim()), i(l.blockTokens()));
    }

    @Override
    public void kvSeal(KvPool pool, int layer, Tensor seals) {
        CudaKvPool p = pool(pool);
        KvKernelArgs a = KvKernelArgs.of(p.layout);
        CudaTensor s = tensor(seals, Tensor.DType.I32);
        if (s.rows == 0) {
            return;
        }
        // grid (seals, kvHeads), one block per (open -> sealed pair, head): (open, sealed, seals, layer, layers, kvHeads,
        //   headDim, blockTokens, group, blockBytes, sectionBytes)
        launch("kv_seal_" + a.suffix(), s.rows, a.kvHeads(), 1, LaunchGeometry.ROW_THREADS, 0, ptr(p.open), ptr(p.sealed), ptr(s.ptr),
                i(layer), i(a.layers()), i(a.kvHeads()), i(a.headDim()), i(a.blockTokens()), i(a.group()), l(a.blockBytes()),
                l(a.sectionBytes()));
    }

    @Override
    public void attention(Tensor qT, KvPool pool, int layer, AttentionBatch batch, AttentionSpec spec, Tensor out) {
        CudaKvPool p = pool(pool);
        KvKernelArgs a = KvKernelArgs.of(p.layout);
        CudaTensor q = tensor(qT, Tensor.DType.F32);
        CudaTensor o = tensor(out, Tensor.DType.F32);
        int headDim = a.headDim();
        if (headDim > LaunchGeometry.MAX_HEAD_DIM) {
            throw new IllegalArgumentException("head dim " + headDim + " exceeds the attention kernel's " + LaunchGeometry.MAX_HEAD_DIM);
        }
        int heads = q.cols / headDim;
        int rows = q.rows;
        if (rows == 0) {
            return;
        }
        int splits = LaunchGeometry.attentionSplits(batch.maxLen(), rows, heads, device.multiprocessors);
        int chunk = LaunchGeometry.attentionChunk(batch.maxLen(), splits);
        partial.ensure(4 * LaunchGeometry.attentionScratchFloats(rows, heads, splits, headDim));
        // grid (heads, rows, splits), ATT_WARPS warps each: (q, sealed, open, rowSeq, rowLen, tables, rowOpen, partial, layer,
        //   layers, heads, kvHeads, headDim, blockTokens, group, tableWidth, chunk, scale, blockBytes, sectionBytes, window)
        launch("attention_partial_" + a.suffix(), heads, rows, splits, LaunchGeometry.attentionThreads(), 0,
                ptr(q.ptr), ptr(p.sealed), ptr(p.open), ptr(tensor(batch.rowSeq(), Tensor.DType.I32).ptr),
                ptr(tensor(batch.rowLen(), Tensor.DType.I32).ptr), ptr(tensor(batch.blockTables(), Tensor.DType.I32).ptr),
                ptr(tensor(batch.rowOpen(), Tensor.DType.I32).ptr), ptr(partial.ptr), i(layer), i(a.layers()), i(heads),
                i(a.kvHeads()), i(headDim), i(a.blockTokens()), i(a.group()), i(batch.tableWidth()), i(chunk), f(spec.scale()),
                l(a.blockBytes()), l(a.sectionBytes()), i(spec.window()));
        CUdeviceptr sinkPtr = new CUdeviceptr(); // null pointer when absent
        if (spec.sinks() != null) {
            CudaWeight s = weight(spec.sinks());
            if (s.type != GgmlType.F32 || s.rows != 1 || s.cols != heads) {
                throw new IllegalArgumentException("attention sinks " + s.name + " must be an F32 vector of " + heads);
            }
            sinkPtr = s.data;
        }
        // grid (heads, rows): (partial, out, heads, headDim, splits, sinks)
        launch("attention_reduce", heads, rows, 1, LaunchGeometry.normThreads(headDim), 0, ptr(partial.ptr), ptr(o.ptr), i(heads),
                i(headDim), i(splits), ptr(sinkPtr));
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        CudaTensor g = tensor(gate, Tensor.DType.F32);
        long n = (long) g.rows * g.cols;
        if (n == 0) {
            return;
        }
        // (gate, up, out, n): grid-stride
        launch("swiglu", LaunchGeometry.elementwiseBlocks(n), 1, 1, LaunchGeometry.ROW_THREADS, 0, ptr(g.ptr),
                ptr(tensor(up, Tensor.DType.F32).ptr), ptr(tensor(out, Tensor.DType.F32).ptr), l(n));
    }

    @Override
    public void swigluOai(Tensor gate, Tensor up, float alpha, float limit, Tensor out) {
        CudaTensor g = tensor(gate, Tensor.DType.F32);
        long n = (long) g.rows * g.cols;
        if (n == 0) {
            return;
        }
        // (gate, up, out, n, alpha, limit): grid-stride
        launch("swiglu_oai", LaunchGeometry.elementwiseBlocks(n), 1, 1, LaunchGeometry.ROW_THREADS, 0, ptr(g.ptr),
                ptr(tensor(up, Tensor.DType.F32).ptr), ptr(tensor(out, Tensor.DType.F32).ptr), l(n), f(alpha), f(limit));
    }

    @Override
    public void addExpertBias(Tensor x, WeightHandle bias, Tensor ids) {
        CudaTensor a = tensor(x, Tensor.DType.F32);
        CudaTensor id = tensor(ids, Tensor.DType.I32);
        CudaWeight b = weight(bias);
        if (b.type != GgmlType.F32 || b.cols != a.cols || b.experts != 1) {
            throw new IllegalArgumentException("expert bias " + b.name + " must be F32 (experts, " + a.cols + ")");
        }
        if ((long) id.rows * id.cols != a.rows) {
            throw new IllegalArgumentException("expert bias: " + a.rows + " rows for " + id.rows + " x " + id.cols + " assignments");
        }
        long n = (long) a.rows * a.cols;
        if (n == 0) {
            return;
        }
        // (x, bias, ids, cols, n): grid-stride
        launch("add_expert_bias", LaunchGeometry.elementwiseBlocks(n), 1, 1, LaunchGeometry.ROW_THREADS, 0, ptr(a.ptr), ptr(b.data),
                ptr(id.ptr), i(a.cols), l(n));
    }

    @Override
    public void add(Tensor acc, Tensor d) {
        CudaTensor a = tensor(acc, Tensor.DType.F32);
        long n = (long) a.rows * a.cols;
        if (n == 0) {
            return;
        }
        // (acc, d, n): grid-stride
        launch("add", LaunchGeometry.elementwiseBlocks(n), 1, 1, LaunchGeometry.ROW_THREADS, 0, ptr(a.ptr),
                ptr(tensor(d, Tensor.DType.F32).ptr), l(n));
    }

    @Override
    public void scale(Tensor x, float s) {
        CudaTensor a = tensor(x, Tensor.DType.F32);
        long n = (long) a.rows * a.cols;
        if (n == 0) {
            return;
        }
        // (x, s, n): grid-stride
        launch("scale", LaunchGeometry.elementwiseBlocks(n), 1, 1, LaunchGeometry.ROW_THREADS, 0, ptr(a.ptr), f(s), l(n));
    }

    @Override
    public void addBias(Tensor x, WeightHandle bias) {
        CudaTensor a = tensor(x, Tensor.DType.F32);
        CudaWeight b = weight(bias);
        if (b.type != GgmlType.F32 || b.rows != 1 || b.cols != a.cols) {
            throw new IllegalArgumentException("bias " + b.name + " must be an F32 vector of " + a.cols);
        }
        long n = (long) a.rows * a.cols;
        if (n == 0) {
            return;
        }
        // (x, bias, cols, n): grid-stride
        launch("add_bias", LaunchGeometry.elementwiseBlocks(n), 1, 1, LaunchGeometry.ROW_THREADS, 0, ptr(a.ptr), ptr(b.data),
                i(a.cols), l(n));
    }

    @Override
    public void addGated(Tensor acc, Tensor d, Tensor gate) {
        CudaTensor a = tensor(acc, Tensor.DType.F32);
        long n = (long) a.rows * a.cols;
        if (n == 0) {
            return;
        }
        // (acc, d, gate, cols, n): grid-stride
        launch("add_gated", LaunchGeometry.elementwiseBlocks(n), 1, 1, LaunchGeometry.ROW_THREADS, 0, ptr(a.ptr),
                ptr(tensor(d, Tensor.DType.F32).ptr), ptr(tensor(gate, Tensor.DType.F32).ptr), i(a.cols), l(n));
    }

    @Override
    public void route(Tensor logits, WeightHandle bias, RoutingConfig routing, Tensor ids, Tensor weights) {
        CudaTensor lg = tensor(logits, Tensor.DType.F32);
        if (lg.rows == 0) {
            return;
        }
        CUdeviceptr biasPtr = new CUdeviceptr(); // null pointer when absent
        if (bias != null) {
            CudaWeight b = weight(bias);
            if (b.type != GgmlType.F32 || b.rows != 1 || b.cols != routing.experts()) {
                throw new IllegalArgumentException("selection bias " + b.name + " must be an F32 vector of " + routing.experts());
            }
            biasPtr = b.data;
        }
        int gating = switch (routing.gating()) {
            case SOFTMAX -> 0;
            case SIGMOID -> 1;
            case SOFTMAX_WEIGHT -> 2;
        };
        int groups = routing.grouped() ? routing.groups() : 1;
        int groupsUsed = routing.grouped() ? routing.groupsUsed() : 1;
        // one block (one warp) per token: (logits, bias, ids, weights, experts, k, gating, normalize, scale, groups, groupsUsed)
        launch("route", lg.rows, 1, 1, LaunchGeometry.WARP, LaunchGeometry.routeSharedBytes(routing.experts()), ptr(lg.ptr),
                ptr(biasPtr), ptr(tensor(ids, Tensor.DType.I32).ptr), ptr(tensor(weights, Tensor.DType.F32).ptr), i(routing.experts()),
                i(routing.topK()), i(gating), i(routing.normalize() ? 1 : 0), f(routing.scale()), i(groups), i(groupsUsed));
    }

    @Override
    public void combine(Tensor expertOut, Tensor weights, Tensor out) {
        CudaTensor o = tensor(out, Tensor.DType.F32);
        CudaTensor w = tensor(weights, Tensor.DType.F32);
        if (o.rows == 0) {
            return;
        }
        // one block per token: (expertOut, weights, out, dim, k)
        launch("combine", o.rows, 1, 1, LaunchGeometry.ROW_THREADS, 0, ptr(tensor(expertOut, Tensor.DType.F32).ptr), ptr(w.ptr),
                ptr(o.ptr), i(o.cols), i(w.cols));
    }

    @Override
    public void gather(Tensor src, Tensor rows, Tensor out) {
        CudaTensor s = tensor(src, Tensor.DType.F32);
        CudaTensor r = tensor(rows, Tensor.DType.I32);
        if (r.rows == 0) {
            return;
        }
        // one block per output row: (src, rows, out, cols)
        launch("gather", r.rows, 1, 1, LaunchGeometry.ROW_THREADS, 0, ptr(s.ptr), ptr(r.ptr), ptr(tensor(out, Tensor.DType.F32).ptr),
                i(s.cols));
    }

    @Override
    public void synchronize() {
        bind();
        cuStreamSynchronize(stream);
    }

    @Override
    public void close() {
        synchronize();
        for (Scratch s : new Scratch[] {xq, xd, offsets, assign, partial}) {
            s.free();
        }
        for (CudaWeight w : acquired) {
            device.release(w);
        }
        acquired.clear();
        cuStreamDestroy(stream);
    }

    // ---- helpers -----------------------------------------------------------------------------

    /**
     * Makes this backend's device context current; always, since another backend on the same thread
     * may have switched it (a context switch costs well under a microsecond).
     */
    private void bind() {
        device.makeCurrent();
    }

    private void launch(String kernel, int gx, int gy, int gz, int block, int sharedBytes, Pointer... args) {
        bind();
        cuLaunchKernel(device.function(kernel), gx, gy, gz, block, 1, 1, sharedBytes, stream, Pointer.to(args), null);
    }

    private static Pointer ptr(CUdeviceptr p) {
        return Pointer.to(p);
    }

    private static Pointer i(int v) {
        return Pointer.to(new int[] {v});
    }

    private static Pointer l(long v) {
        return Pointer.to(new long[] {v});
    }

    private static Pointer f(float v) {
        return Pointer.to(new float[] {v});
    }

    /** Every kernel entry point this class launches (checked against the built manifest by a test). */
    static List<String> kernelNames() {
        List<String> out = new ArrayList<>(List.of("quantize_q8_0", "quantize_q8_k", "moe_group", "rmsnorm", "rope", "kv_store", "attention_reduce",
                "swiglu", "swiglu_oai", "add_expert_bias", "add", "scale", "add_bias", "add_gated", "route", "combine", "gather"));
        for (GgmlType t : WEIGHT_TYPES) {
            out.add("matmul_" + suffix(t));
            out.add("expert_matmul_" + suffix(t));
            out.add("embed_" + suffix(t));
        }
        for (KvCodec c : new KvCodec[] {KvCodec.F32, KvCodec.F16, KvCodec.INT8, KvCodec.INT4}) {
            out.add("kv_seal_" + KvKernelArgs.suffix(c));
            out.add("attention_partial_" + KvKernelArgs.suffix(c));
        }
        return out;
    }

    /** The weight types with product, expert-product and embedding kernels. */
    static final List<GgmlType> WEIGHT_TYPES = List.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0,
            GgmlType.Q5_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ4_NL, GgmlType.MXFP4);

    static String suffix(GgmlType t) {
        if (!WEIGHT_TYPES.contains(t)) {
            throw new IllegalArgumentException("the CUDA backend has no kernels for " + t);
        }
        return t.name().toLowerCase(java.util.Locale.ROOT);
    }

    /** A host array must hold the whole tensor: the copies move {@code rows * cols} elements. */
    private static void checkLength(CudaTensor c, int length) {
        if (length < (long) c.rows * c.cols) {
            throw new IllegalArgumentException("array of " + length + " for a tensor of " + c.rows + " x " + c.cols);
        }
    }

    private static void checkProduct(CudaWeight w, CudaTensor in, CudaTensor o) {
        if (in.cols != w.cols || o.cols != w.rows) {
            throw new IllegalArgumentException(w.name + " is (" + w.rows + ", " + w.cols + "); x has " + in.cols + " cols and out " + o.cols);
        }
    }

    private static void checkBlock(int block, int blocks, byte[] bytes, long expected) {
        if (block < 0 || block >= blocks) {
            throw new IndexOutOfBoundsException("KV block " + block + " of " + blocks);
        }
        if (bytes.length != expected) {
            throw new IllegalArgumentException("KV block has " + bytes.length + " bytes, the layout needs " + expected);
        }
    }

    private CudaWeight weight(WeightHandle h) {
        if (h instanceof CudaWeight w && w.device == device.index) {
            return w;
        }
        throw new IllegalArgumentException(h + " was not uploaded to " + name());
    }

    private static CudaKvPool pool(KvPool p) {
        if (p instanceof CudaKvPool c) {
            return c;
        }
        throw new IllegalArgumentException(p + " is not a CUDA KV pool");
    }

    private static CudaTensor tensor(Tensor t, Tensor.DType dtype) {
        if (!(t instanceof CudaTensor c)) {
            throw new IllegalArgumentException(t + " is not a CUDA tensor");
        }
        if (c.dtype != dtype) {
            throw new IllegalArgumentException(t + " should be " + dtype);
        }
        return c;
    }

    /** A device buffer that only grows. */
    private final class Scratch {
        CUdeviceptr ptr;
        long bytes;

        void ensure(long needed) {
            if (needed > bytes) {
                bind();
                free();
                long size = Math.max(needed, 2 * bytes);
                ptr = device.allocate(size, "scratch");
                bytes = size;
            }
        }

        void free() {
            if (ptr != null) {
                cuMemFree(ptr);
                ptr = null;
                bytes = 0;
            }
        }
    }
}
