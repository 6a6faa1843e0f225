package io.moestream.runtime.kv;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32;

/**
 * Versioned byte formats of the cache state (little-endian, each record ends with a CRC-32 of all
 * bytes before it). Version 2:
 *
 * <pre>
 * meta:  u32 magic "KVMT" (0x544D564B LE)  u16 version=2
 *        u16 layers  u16 kvHeads  u16 headDim  u64 fingerprint
 *        u8 flags (bit 0: latent)  u32 sliding window  u16 sliding period   ({@link KvShape.Attention})
 *        u8 codec kind (0 F32, 1 F16, 2 INT8, 3 INT4)  u8 group size (0 for F32/F16)
 *        u16 blockTokens  u32 length
 *        u32 sink  u32 window  bitset[ceil(layers*kvHeads/8)] streaming (bit i of byte i/8 = head l*kvHeads+h)
 *        u32 crc32
 * block: u32 magic "KVBK"  u16 version=2  u32 index
 *        u8 state (0 tail/F32, 1 sealed)  u8 codec kind  u8 group size
 *        u16 blockTokens  u16 tokens  u16 layers  u16 kvHeads  u16 headDim
 *        bitset[ceil(layers*kvHeads/8)] present (0 = dropped: streaming head or sliding layer out of window)
 *        for each present (layer, head) in order: K section, V section (HeadSlab layout of the codec;
 *        no V section when the metadata says latent)
 *        u32 crc32
 * </pre>
 *
 * Version 1 is version 2 without the three attention fields of the metadata (a plain shape: no
 * latent rows, no sliding layers); its blocks are laid out alike. Readers must keep accepting every
 * earlier version (golden files in the tests).
 */
public final class KvStateFormat {

    public static final int VERSION = 2;
    static final int META_MAGIC = 0x544D564B;  // "KVMT" little-endian
    static final int BLOCK_MAGIC = 0x4B42564B; // "KVBK" little-endian

    private KvStateFormat() {}

    static byte[] encodeMeta(KvCacheMeta m) {
        KvShape s = m.shape();
        HeadPolicy p = m.policy();
        int heads = s.headCount();
        ByteBuffer b = ByteBuffer.allocate(4 + 2 + 6 + 8 + 7 + 2 + 2 + 4 + 8 + (heads + 7) / 8 + 4).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(META_MAGIC).putShort((short) VERSION);
        b.putShort((short) s.layers()).putShort((short) s.kvHeads()).putShort((short) s.headDim()).putLong(s.fingerprint());
        KvShape.Attention a = s.attention();
        b.put((byte) (a.latent() ? 1 : 0)).putInt(a.window()).putShort((short) a.period());
        b.put((byte) m.codec().kind().id).put((byte) m.codec().groupSize());
        b.putShort((short) m.blockTokens()).putInt(m.length());
        b.putInt(p.sink()).putInt(p.window());
        byte[] bits = new byte[(heads + 7) / 8];
        for (int l = 0; l < s.layers(); l++) {
            for (int h = 0; h < s.kvHeads(); h++) {
                if (p.isStreaming(l, h)) {
                    int i = l * s.kvHeads() + h;
                    bits[i >> 3] |= (byte) (1 << (i & 7));
                }
            }
        }
        b.put(bits);
        putCrc(b);
        return b.array();
    }

    static KvCacheMeta decodeMeta(byte[] bytes) {
        ByteBuffer b = checked(bytes, META_MAGIC, "KV cache metadata");
        try {
            int version = b.getShort() & 0xFFFF;
            if (version < 1 || version > VERSION) {
                throw new KvStateException("KV cache metadata has version " + version + "; this reader knows 1.." + VERSION);
            }
            int layers = b.getShort() & 0xFFFF;
            int kvHeads = b.getShort() & 0xFFFF;
            int headDim = b.getShort() & 0xFFFF;
            long fp = b.getLong();
            KvShape.Attention attention = KvShape.Attention.PLAIN;
            if (version >= 2) {
                int flags = b.get() & 0xFF;
                if ((flags & ~1) != 0) {
                    throw new KvStateException("KV cache metadata has unknown flags 0x" + Integer.toHexString(flags));
                }
                attention = new KvShape.Attention(flags == 1, b.getInt(), b.getShort() & 0xFFFF);
            }
            int kind = b.get() & 0xFF;
            int group = b.get() & 0xFF;
            int blockTokens = b.getShort() & 0xFFFF;
            int length = b.getInt();
            int sink = b.getInt();
            int window = b.getInt();
            KvShape shape = new KvShape(layers, kvHeads, headDim, fp, attention);
            boolean[] streaming = new boolean[shape.headCount()];
            byte[] bits = new byte[(streaming.length + 7) / 8];
            b.get(bits);
            for (int i = 0; i < streaming.length; i++) {
                streaming[i] = (bits[i >> 3] & (1 << (i & 7))) != 0;
            }
            if (b.remaining() != 4) {
                throw new KvStateException("KV cache metadata has " + (b.remaining() - 4) + " unexpected trailing bytes");
            }
            return new KvCacheMeta(shape, KvCodec.of(kind, group), blockTokens, length,
                    HeadPolicy.of(layers, kvHeads, sink, window, streaming));
        } catch (BufferUnderflowException e) {
            throw new KvStateException("KV cache metadata is truncated (" + bytes.length + " bytes)", e);
        } catch (IllegalArgumentException e) {
            throw new KvStateException("KV cache metadata is invalid: " + e.getMessage(), e);
        }
    }

    /** The length of {@link #encodeBlock}'s result, without encoding. */
    static long encodedSize(KvBlock blk, KvShape s) {
        return 4 + 2 + 4 + 3 + 10 + (s.headCount() + 7) / 8 + blk.dataBytes() + 4;
    }

    static byte[] encodeBlock(KvBlock blk, KvShape s) {
        int heads = s.headCount();
        long size = encodedSize(blk, s);
        if (size > Integer.MAX_VALUE - 16) {
            throw new IllegalStateException("KV block of " + size + " bytes is too large for one state entry");
        }
        ByteBuffer b = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(BLOCK_MAGIC).putShort((short) VERSION).putInt(blk.index);
        b.put((byte) (blk.sealed ? 1 : 0)).put((byte) blk.codec.kind().id).put((byte) blk.codec.groupSize());
        b.putShort((short) blk.blockTokens).putShort((short) blk.tokens());
        b.putShort((short) s.layers()).putShort((short) s.kvHeads()).putShort((short) s.headDim());
        byte[] bits = new byte[(heads + 7) / 8];
        for (int i = 0; i < heads; i++) {
            if (blk.slabs[i] != null) {
                bits[i >> 3] |= (byte) (1 << (i & 7));
            }
        }
        b.put(bits);
        for (HeadSlab slab : blk.slabs) {
            if (slab != null) {
                slab.write(b);
            }
        }
        putCrc(b);
        return b.array();
    }

    /** Reads block {@code expectedIndex} of a cache with metadata {@code m}. */
    static KvBlock decodeBlock(byte[] bytes, KvCacheMeta m, int expectedIndex) {
        String what = "KV block " + expectedIndex;
        ByteBuffer b = checked(bytes, BLOCK_MAGIC, what);
        KvShape s = m.shape();
        try {
            int version = b.getShort() & 0xFFFF;
            if (version < 1 || version > VERSION) {
                throw new KvStateException(what + " has version " + version + "; this reader knows 1.." + VERSION);
            }
            if (version == 1 && s.latent()) {
                throw new KvStateException(what + " has version 1, which has no latent blocks, but the metadata says latent");
            }
            int index = b.getInt();
            int state = b.get() & 0xFF;
            int kind = b.get() & 0xFF;
            int group = b.get() & 0xFF;
            int blockTokens = b.getShort() & 0xFFFF;
            int tokens = b.getShort() & 0xFFFF;
            int layers = b.getShort() & 0xFFFF;
            int kvHeads = b.getShort() & 0xFFFF;
            int headDim = b.getShort() & 0xFFFF;
            if (index != expectedIndex) {
                throw new KvStateException(what + " holds block " + index);
            }
            if (layers != s.layers() || kvHeads != s.kvHeads() || headDim != s.headDim() || blockTokens != m.blockTokens()) {
                throw new KvStateException(what + " has shape " + layers + "x" + kvHeads + "x" + headDim + " B=" + blockTokens
                        + ", the metadata says " + s.layers() + "x" + s.kvHeads() + "x" + s.headDim() + " B=" + m.blockTokens());
            }
            int expectTokens = Math.min(blockTokens, m.length() - index * blockTokens);
            if (tokens != expectTokens || state > 1) {
                throw new KvStateException(what + " has " + tokens + " tokens (state " + state + "), expected " + expectTokens);
            }
            boolean sealed = state == 1;
            KvCodec codec = KvCodec.of(kind, group);
            if (sealed ? !codec.equals(m.codec()) : codec.kind() != KvCodec.Kind.F32) {
                throw new KvStateException(what + " has codec " + codec + ", expected " + (sealed ? m.codec() : KvCodec.F32));
            }
            if (sealed != (tokens == blockTokens)) {
                throw new KvStateException(what + ": only full blocks are sealed (tokens " + tokens + ", sealed " + sealed + ")");
            }
            int heads = s.headCount();
            byte[] bits = new byte[(heads + 7) / 8];
            b.get(bits);
            HeadSlab[] slabs = new HeadSlab[heads];
            for (int i = 0; i < heads; i++) {
                if ((bits[i >> 3] & (1 << (i & 7))) != 0) {
                    slabs[i] = HeadSlab.read(b, codec, tokens, headDim, blockTokens, s.latent());
                } else if (!sealed) {
                    throw new KvStateException(what + " is a tail block with a dropped head");
                }
            }
            if (b.remaining() != 4) {
                throw new KvStateException(what + " has " + (b.remaining() - 4) + " unexpected trailing bytes");
            }
            return new KvBlock(index, blockTokens, codec, slabs, sealed);
        } catch (BufferUnderflowException e) {
            throw new KvStateException(what + " is truncated (" + bytes.length + " bytes)", e);
        } catch (IllegalArgumentException e) {
            throw new KvStateException(what + " is invalid: " + e.getMessage(), e);
        }
    }

    // ---- backend block format (io.moestream.runtime.backend.KvLayout) ---------------------------

    /**
     * Bytes of a block in the backends' format: per (layer, KV head) in order, the K section then the
     * V section ({@link HeadSlab#write}). A sealed block is exactly the data part of its
     * {@link #encodeBlock} record (all heads present); an open block is float32 with room for every
     * position of the block ({@code capacity} = B), unwritten positions zero.
     */
    static long backendBlockBytes(KvCodec codec, KvShape s, int tokens) {
        return s.headCount() * HeadSlab.bytes(codec, tokens, s.headDim(), false);
    }

    /** A sealed block with every head present, in the backend format. */
    static byte[] backendSealed(KvBlock blk, KvShape s) {
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(backendBlockBytes(blk.codec, s, blk.blockTokens)))
                .order(ByteOrder.LITTLE_ENDIAN);
        for (HeadSlab slab : blk.slabs) {
            slab.write(b);
        }
        return b.array();
    }

    /** A tail block as a backend open block: float32, {@code B} positions per slab. */
    static byte[] backendOpen(KvBlock blk, KvShape s) {
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(backendBlockBytes(KvCodec.F32, s, blk.blockTokens)))
                .order(ByteOrder.LITTLE_ENDIAN);
        for (HeadSlab slab : blk.slabs) {
            ((HeadSlab.F32Slab) slab).writeCapacity(b);
        }
        return b.array();
    }

    /** Reads a backend sealed block as block {@code index} of a cache. */
    static KvBlock fromBackendSealed(byte[] bytes, KvShape s, KvCodec codec, int blockTokens, int index) {
        checkBackendSize(bytes, backendBlockBytes(codec, s, blockTokens), "sealed", index);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        HeadSlab[] slabs = new HeadSlab[s.headCount()];
        for (int i = 0; i < slabs.length; i++) {
            slabs[i] = HeadSlab.read(b, codec, blockTokens, s.headDim(), blockTokens, false);
        }
        return new KvBlock(index, blockTokens, codec, slabs, true);
    }

    /** Reads the first {@code tokens} positions of a backend open block as the tail block {@code index}. */
    static KvBlock fromBackendOpen(byte[] bytes, KvShape s, int blockTokens, int index, int tokens) {
        checkBackendSize(bytes, backendBlockBytes(KvCodec.F32, s, blockTokens), "open", index);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        HeadSlab[] slabs = new HeadSlab[s.headCount()];
        for (int i = 0; i < slabs.length; i++) {
            HeadSlab.F32Slab f = HeadSlab.F32Slab.read(b, blockTokens, s.headDim(), blockTokens, false);
            f.tokens = tokens;
            slabs[i] = f;
        }
        return new KvBlock(index, blockTokens, KvCodec.F32, slabs, false);
    }

    private static void checkBackendSize(byte[] bytes, long expected, String kind, int index) {
        if (bytes == null || bytes.length != expected) {
            throw new KvStateException("backend " + kind + " KV block " + index + " has " + (bytes == null ? "no" : bytes.length)
                    + " bytes, the layout needs " + expected);
        }
    }

    private static void putCrc(ByteBuffer b) {
        CRC32 crc = new CRC32();
        crc.update(b.array(), 0, b.position());
        b.putInt((int) crc.getValue());
        if (b.hasRemaining()) {
            throw new IllegalStateException("KV state size mismatch: " + b.remaining() + " bytes left");
        }
    }

    /** Checks length, magic and CRC; returns a buffer positioned after the magic. */
    private static ByteBuffer checked(byte[] bytes, int magic, String what) {
        if (bytes == null) {
            throw new KvStateException(what + " is missing");
        }
        if (bytes.length < 10) {
            throw new KvStateException(what + " is truncated (" + bytes.length + " bytes)");
        }
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (b.getInt(0) != magic) {
            throw new KvStateException(what + " has a bad magic number 0x" + Integer.toHexString(b.getInt(0)) + " (not KV state)");
        }
        CRC32 crc = new CRC32();
        crc.update(bytes, 0, bytes.length - 4);
        int stored = b.getInt(bytes.length - 4);
        if ((int) crc.getValue() != stored) {
            throw new KvStateException(what + " is corrupted: CRC-32 mismatch (stored 0x" + Integer.toHexString(stored)
                    + ", computed 0x" + Integer.toHexString((int) crc.getValue()) + ", " + bytes.length + " bytes)");
        }
        b.position(4);
        b.limit(bytes.length);
        return b;
    }
}
