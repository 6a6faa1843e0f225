package io.moestream.cuda;

import io.moestream.runtime.backend.KvLayout;
import io.moestream.runtime.gguf.Float16;
import io.moestream.runtime.kv.KvCodec;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The KV arguments of the {@code attention.cu} kernels for one {@link KvLayout}, and the Java twins of
 * their index math ({@code open_offset}, {@code sealed_offset}, {@code sealed_load}), so that the
 * device layout is tested without a GPU against the bytes the CPU engine writes.
 *
 * @param layers       transformer layers
 * @param kvHeads      key/value heads
 * @param headDim      width of one head
 * @param blockTokens  positions per block (B)
 * @param group        KIVI group size (0 for F32/F16)
 * @param blockBytes   bytes of one sealed block
 * @param sectionBytes bytes of one K or V section of a sealed block
 * @param codec        storage of sealed blocks
 */
record KvKernelArgs(int layers, int kvHeads, int headDim, int blockTokens, int group, long blockBytes, long sectionBytes,
        KvCodec codec) {

    static KvKernelArgs of(KvLayout l) {
        return new KvKernelArgs(l.layers(), l.kvHeads(), l.headDim(), l.blockTokens(), l.codec().groupSize(), l.blockBytes(),
                l.sectionBytes(), l.codec());
    }

    /** Whether the kernels handle {@code codec}: all of them, int4 with an even group (a code byte is one thread's). */
    static boolean supported(KvCodec codec) {
        return codec.kind() != KvCodec.Kind.INT4 || codec.groupSize() % 2 == 0;
    }

    /** Kernel name suffix: {@code kv_seal_<suffix>}, {@code attention_partial_<suffix>}. */
    static String suffix(KvCodec codec) {
        return switch (codec.kind()) {
            case F32 -> "f32";
            case F16 -> "f16";
            case INT8 -> "int8";
            case INT4 -> "int4";
        };
    }

    String suffix() {
        return suffix(codec);
    }

    /** {@code open_offset}: float index of (block, layer, head, K|V, token 0) in the open blocks. */
    long openOffset(int block, int layer, int head, int kv) {
        return ((((long) block * layers + layer) * kvHeads + head) * 2 + kv) * blockTokens * headDim;
    }

    /** {@code sealed_offset}: byte offset of (block, layer, head)'s K section in the sealed blocks. */
    long sealedOffset(int block, int layer, int head) {
        return block * blockBytes + 2 * ((long) layer * kvHeads + head) * sectionBytes;
    }

    /**
     * {@code sealed_load}: element (t, i) of the K ({@code kv = 0}) or V section of (layer, head) of a
     * sealed block held in {@code pool} at block {@code block}, dequantized as the kernel does.
     */
    float sealedLoad(byte[] pool, int block, int layer, int head, int kv, int t, int i) {
        ByteBuffer b = ByteBuffer.wrap(pool).order(ByteOrder.LITTLE_ENDIAN);
        int sec = Math.toIntExact(sealedOffset(block, layer, head) + kv * sectionBytes);
        int e = t * headDim + i;
        switch (codec.kind()) {
            case F32:
                return b.getFloat(sec + 4 * e);
            case F16:
                return Float16.toFloat(b.getShort(sec + 2 * e));
            default:
                int groups = kv == 0 ? (blockTokens / group) * headDim : blockTokens * (headDim / group);
                int g = kv == 0 ? (t / group) * headDim + i : t * (headDim / group) + i / group;
                float scale = Float16.toFloat(b.getShort(sec + 2 * g));
                float min = Float16.toFloat(b.getShort(sec + 2 * (groups + g)));
                int codes = sec + 4 * groups;
                int code = codec.kind() == KvCodec.Kind.INT8 ? pool[codes + e] & 0xFF : (pool[codes + (e >> 1)] >> ((e & 1) * 4)) & 0xF;
                return min + scale * code;
        }
    }
}
