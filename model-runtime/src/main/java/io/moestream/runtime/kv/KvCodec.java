package io.moestream.runtime.kv;

import java.util.Locale;

/**
 * How the keys and values of a <em>full</em> block are stored (the newest, partially filled block is
 * always kept in float32; see {@link PagedKvCache}).
 *
 * <ul>
 *   <li>{@code F32}, {@code F16}: plain elements.
 *   <li>{@code INT8}, {@code INT4}: KIVI-style asymmetric integer quantization. Keys are quantized
 *       <b>per channel</b>: for each channel of a head, a group of {@code groupSize} consecutive
 *       tokens shares one (scale, min) pair. Values are quantized <b>per token</b>: for each token,
 *       a group of {@code groupSize} consecutive channels of a head shares one (scale, min) pair.
 *       Scale and min are float16 (min rounded down, scale rounded up, so every code is in range);
 *       {@code x ~= min + scale * code}, {@code code in 0..2^bits-1}.
 * </ul>
 *
 * <p>Error bound of a quantized element (documented in docs/kv-cache.md and tested):
 * {@code |x - x'| <= (scale / 2) * (1 + 2^-9)} with {@code scale ~= (max - min + ulp16(min)) / (2^bits - 1)},
 * i.e. about 0.2 % of the group's range for int8 and 3.3 % for int4.
 *
 * <p>Immutable. The compute backends ({@code io.moestream.runtime.backend}) store their sealed KV
 * blocks with these codecs too, in the same byte layout.
 */
public final class KvCodec {

    /** Element storage kinds; {@link #id} is the byte written in the state formats (never reorder). */
    public enum Kind {
        F32(0, 32),
        F16(1, 16),
        INT8(2, 8),
        INT4(3, 4);

        final int id;
        final int bits;

        Kind(int id, int bits) {
            this.id = id;
            this.bits = bits;
        }

        static Kind ofId(int id) {
            for (Kind k : values()) {
                if (k.id == id) {
                    return k;
                }
            }
            throw new IllegalArgumentException("unknown KV codec id " + id);
        }
    }

    /** Default group size of the integer codecs (tokens per key group, channels per value group). */
    public static final int DEFAULT_GROUP = 32;

    public static final KvCodec F32 = new KvCodec(Kind.F32, 0);
    public static final KvCodec F16 = new KvCodec(Kind.F16, 0);
    public static final KvCodec INT8 = int8(DEFAULT_GROUP);
    public static final KvCodec INT4 = int4(DEFAULT_GROUP);

    private final Kind kind;
    private final int groupSize;

    private KvCodec(Kind kind, int groupSize) {
        this.kind = kind;
        this.groupSize = groupSize;
    }

    /** int8 KIVI with {@code groupSize} tokens per key group and channels per value group (1..255). */
    public static KvCodec int8(int groupSize) {
        return quantized(Kind.INT8, groupSize);
    }

    /** int4 KIVI with {@code groupSize} tokens per key group and channels per value group (2..255, even). */
    public static KvCodec int4(int groupSize) {
        return quantized(Kind.INT4, groupSize);
    }

    private static KvCodec quantized(Kind kind, int groupSize) {
        if (groupSize < 1 || groupSize > 255) {
            throw new IllegalArgumentException("KV codec group size must be in 1..255, got " + groupSize);
        }
        return new KvCodec(kind, groupSize);
    }

    /** Parses {@code f32}, {@code f16}, {@code int8}, {@code int4}, optionally {@code /G} for the group size. */
    public static KvCodec parse(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        int slash = t.indexOf('/');
        String name = slash < 0 ? t : t.substring(0, slash);
        int g = DEFAULT_GROUP;
        if (slash >= 0) {
            try {
                g = Integer.parseInt(t.substring(slash + 1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad KV codec group size in '" + s + "'");
            }
        }
        switch (name) {
            case "f32":
                return F32;
            case "f16":
                return F16;
            case "int8":
            case "q8":
                return int8(g);
            case "int4":
            case "q4":
                return int4(g);
            default:
                throw new IllegalArgumentException("unknown KV codec '" + s + "' (f32, f16, int8[/G], int4[/G])");
        }
    }

    static KvCodec of(int kindId, int groupSize) {
        Kind k = Kind.ofId(kindId);
        return k == Kind.F32 ? F32 : k == Kind.F16 ? F16 : quantized(k, groupSize);
    }

    public Kind kind() {
        return kind;
    }

    /** Group size of the integer codecs; 0 for F32/F16. */
    public int groupSize() {
        return groupSize;
    }

    /** Bits per stored element (excluding group scales). */
    public int bits() {
        return kind.bits;
    }

    public boolean quantized() {
        return kind == Kind.INT8 || kind == Kind.INT4;
    }

    /** Largest code of the integer codecs (255 or 15). */
    int qmax() {
        return (1 << kind.bits) - 1;
    }

    /** Checks that this codec can store blocks of {@code blockTokens} tokens of heads {@code headDim} wide. */
    public void checkFits(int blockTokens, int headDim) {
        checkFits(blockTokens, headDim, false);
    }

    /**
     * The same for a cache whose rows are key and value at once ({@code latent}: keys only, so the
     * group size need not divide the head dim).
     */
    public void checkFits(int blockTokens, int headDim, boolean latent) {
        if (!quantized()) {
            return;
        }
        if (latent && blockTokens % groupSize != 0) {
            throw new IllegalArgumentException("KV codec " + this + ": group size " + groupSize
                    + " must divide the block size " + blockTokens + " (key groups)");
        }
        if (!latent && (blockTokens % groupSize != 0 || headDim % groupSize != 0)) {
            throw new IllegalArgumentException("KV codec " + this + ": group size " + groupSize
                    + " must divide the block size " + blockTokens + " (key groups) and the head dim " + headDim + " (value groups)");
        }
        if (kind == Kind.INT4 && headDim % 2 != 0) {
            throw new IllegalArgumentException("KV codec " + this + " packs two channels per byte; head dim " + headDim + " is odd");
        }
    }

    /**
     * Bytes of one head's keys (or values) for {@code tokens} tokens in a full (sealed) block (keys:
     * {@code tokens / G * headDim} groups, values {@code tokens * (headDim / G)}: the same count
     * whenever G divides what it groups).
     */
    public long sectionBytes(int tokens, int headDim) {
        long n = (long) tokens * headDim;
        switch (kind) {
            case F32:
                return 4 * n;
            case F16:
                return 2 * n;
            default:
                long groups = n / groupSize;        // keys: (tokens/G) * headDim; values: tokens * (headDim/G)
                long codes = kind == Kind.INT8 ? n : n / 2;
                return codes + 4 * groups;           // f16 scale + f16 min per group
        }
    }

    /** Stored bytes per element including group scales (e.g. 1.125 for int8/32), for reporting. */
    public double bytesPerElement() {
        switch (kind) {
            case F32:
                return 4;
            case F16:
                return 2;
            default:
                return kind.bits / 8.0 + 4.0 / groupSize;
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof KvCodec && ((KvCodec) o).kind == kind && ((KvCodec) o).groupSize == groupSize;
    }

    @Override
    public int hashCode() {
        return kind.hashCode() * 31 + groupSize;
    }

    @Override
    public String toString() {
        return quantized() ? kind.name().toLowerCase(Locale.ROOT) + "/" + groupSize : kind.name().toLowerCase(Locale.ROOT);
    }
}
