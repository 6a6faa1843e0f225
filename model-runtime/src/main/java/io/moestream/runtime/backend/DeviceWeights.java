package io.moestream.runtime.backend;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.graph.TensorRole;
import io.moestream.runtime.model.ModelConfig;

import java.nio.ByteBuffer;

/**
 * A model's tensors uploaded to a device {@link Backend}, bound by {@link TensorRole}. Upload keys
 * are {@code <file path>#<tensor name>}, so every backend on a device shares one copy. A fused
 * {@code attn_qkv} is uploaded as its q, k and v row ranges (whole rows of the file's tensor, so the
 * products are the fused one's), under {@link TensorRole#ATTN_Q}, {@code ATTN_K} and {@code ATTN_V}.
 */
final class DeviceWeights {

    private static final int ROLES = TensorRole.values().length;

    private final int layers;
    private final WeightHandle[][] handles; // [layer or layers for the global roles][role]

    private DeviceWeights(int layers) {
        this.layers = layers;
        this.handles = new WeightHandle[layers + 1][ROLES];
    }

    /** Uploads every tensor the forward pass reads; NextN blocks are not. */
    static DeviceWeights upload(Backend backend, GgufFile f, ModelConfig c) throws GgufFormatException {
        String file = f.path().toAbsolutePath().toString();
        DeviceWeights w = new DeviceWeights(c.layers());
        TensorRole.bindAll(f, c, (role, l, t) -> {
            WeightHandle[] slot = w.handles[w.slot(l)];
            if (role == TensorRole.ATTN_QKV) {
                slot[TensorRole.ATTN_Q.ordinal()] = backend.upload(file + "#" + t.name() + "[q]", rows(t, 0, c.qDim()));
                slot[TensorRole.ATTN_K.ordinal()] = backend.upload(file + "#" + t.name() + "[k]", rows(t, c.qDim(), c.kvDim()));
                slot[TensorRole.ATTN_V.ordinal()] = backend.upload(file + "#" + t.name() + "[v]", rows(t, c.qDim() + c.kvDim(), c.kvDim()));
            } else {
                slot[role.ordinal()] = backend.upload(file + "#" + t.name(), t);
            }
        });
        WeightHandle[] global = w.handles[w.slot(-1)];
        if (global[TensorRole.OUTPUT.ordinal()] == null) {
            global[TensorRole.OUTPUT.ordinal()] = global[TensorRole.TOKEN_EMBD.ordinal()];
        }
        return w;
    }

    /** The handle of {@code role} in layer {@code l} (-1: global), or null when the layer has none. */
    WeightHandle get(TensorRole role, int l) {
        return handles[slot(l)][role.ordinal()];
    }

    private int slot(int l) {
        return l < 0 ? layers : l;
    }

    /** Rows {@code first..first+count-1} of a matrix, as a matrix of its own (a view of the mapped bytes). */
    static GgufTensor rows(GgufTensor t, int first, int count) {
        long cols = t.ne()[0];
        long rowBytes = t.type().bytesFor(cols);
        ByteBuffer slice = t.bytes().slice(Math.toIntExact(first * rowBytes), Math.toIntExact(count * rowBytes));
        return new GgufTensor(t.name() + "[" + first + ".." + (first + count - 1) + "]", t.type(), new long[] {cols, count}, slice);
    }
}
