package io.moestream.runtime.model;

import io.moestream.runtime.gguf.GgufFile;
import io.moestream.runtime.gguf.GgufFormatException;
import io.moestream.runtime.gguf.GgufTensor;
import io.moestream.runtime.graph.TensorRole;

import java.nio.ByteBuffer;

/**
 * A model's tensors on the CPU, bound by {@link TensorRole}: matrices and expert stacks stay
 * memory-mapped ({@link WeightMatrix}), the small vectors (norms, biases, gates) are copied to the
 * heap. Shapes were checked against the {@link ModelConfig} by the binding.
 */
final class Weights {

    private static final int ROLES = TensorRole.values().length;

    private final int layers;
    /** [layer or {@code layers} for the global roles][role]; null where absent. */
    private final WeightMatrix[][] matrices;
    private final float[][][] vectors;
    private final WeightMatrix[][][] experts;

    private Weights(int layers) {
        this.layers = layers;
        this.matrices = new WeightMatrix[layers + 1][ROLES];
        this.vectors = new float[layers + 1][ROLES][];
        this.experts = new WeightMatrix[layers + 1][ROLES][];
    }

    /** Loads the running layers; trailing NextN blocks are not touched (llama.cpp skips them too). */
    static Weights from(GgufFile f, ModelConfig c) throws GgufFormatException {
        Weights w = new Weights(c.layers());
        TensorRole.bindAll(f, c, (role, l, t) -> {
            int slot = w.slot(l);
            switch (role.kind()) {
                case VECTOR -> w.vectors[slot][role.ordinal()] = floats(t);
                case MATRIX -> w.matrices[slot][role.ordinal()] = WeightMatrix.of(t);
                case EXPERTS -> w.experts[slot][role.ordinal()] = WeightMatrix.experts(t);
            }
        });
        int global = w.slot(-1);
        if (w.matrices[global][TensorRole.OUTPUT.ordinal()] == null) {
            w.matrices[global][TensorRole.OUTPUT.ordinal()] = w.matrices[global][TensorRole.TOKEN_EMBD.ordinal()];
        }
        return w;
    }

    /** The matrix of {@code role} in layer {@code l} (-1: global), or null. */
    WeightMatrix matrix(TensorRole role, int l) {
        return matrices[slot(l)][role.ordinal()];
    }

    /** The vector of {@code role} in layer {@code l} (-1: global), or null. */
    float[] vector(TensorRole role, int l) {
        return vectors[slot(l)][role.ordinal()];
    }

    /** The expert stack of {@code role} in layer {@code l}, one matrix per expert, or null. */
    WeightMatrix[] experts(TensorRole role, int l) {
        return experts[slot(l)][role.ordinal()];
    }

    private int slot(int l) {
        return l < 0 ? layers : l;
    }

    /** An F32 tensor's values, all of them (a 2-D one row after row). */
    private static float[] floats(GgufTensor t) {
        long n = 1;
        for (long d : t.ne()) {
            n *= d;
        }
        float[] v = new float[Math.toIntExact(n)];
        ByteBuffer b = t.bytes();
        for (int i = 0; i < v.length; i++) {
            v[i] = b.getFloat(4 * i);
        }
        return v;
    }
}
