package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import io.moestream.runtime.backend.KvLayout;
import io.moestream.runtime.kv.KvCodec;
import io.moestream.runtime.kv.KvShape;
import io.moestream.runtime.kv.PagedKvCache;

import java.util.Random;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The device KV layout without a GPU: the index math the attention kernels use (their Java twins in
 * {@link KvKernelArgs}) reads, from the blocks the CPU engine's cache writes, exactly the values the
 * engine dequantizes, for every codec; open and sealed offsets agree with {@link KvLayout}.
 */
class KvKernelArgsTest {

    @ParameterizedTest
    @ValueSource(strings = {"f32", "f16", "int8/16", "int4/16", "int8/32", "int4/8"})
    void sealedLoadReadsTheEnginesBlocks(String codecName) {
        KvCodec codec = KvCodec.parse(codecName);
        KvShape shape = new KvShape(3, 2, 32, 1L);
        int b = 32;
        int length = 2 * b + 5;
        PagedKvCache cache = new PagedKvCache(shape, codec, b);
        Random r = new Random(5);
        float[] k = new float[shape.kvDim()];
        float[] v = new float[shape.kvDim()];
        for (int p = 0; p < length; p++) {
            for (int l = 0; l < shape.layers(); l++) {
                for (int i = 0; i < k.length; i++) {
                    k[i] = (float) r.nextGaussian() * (i % 7 == 3 ? 8 : 1) + i % 5;
                    v[i] = (float) r.nextGaussian();
                }
                cache.write(l, p, k, 0, v, 0);
            }
            cache.commit(p + 1);
        }
        KvLayout layout = new KvLayout(shape.layers(), shape.kvHeads(), shape.headDim(), b, codec);
        KvKernelArgs a = KvKernelArgs.of(layout);
        assertThat(KvKernelArgs.supported(codec)).isTrue();
        // a pool of two sealed blocks, as the device holds them: block i at i * blockBytes
        byte[] pool = new byte[Math.toIntExact(2 * a.blockBytes())];
        for (int i = 0; i < 2; i++) {
            byte[] block = cache.backendBlock(i);
            assertThat((long) block.length).isEqualTo(a.blockBytes());
            System.arraycopy(block, 0, pool, Math.toIntExact(i * a.blockBytes()), block.length);
        }
        for (int l = 0; l < shape.layers(); l++) {
            for (int h = 0; h < shape.kvHeads(); h++) {
                assertThat(a.sealedOffset(1, l, h)).isEqualTo(a.blockBytes() + layout.sealedSlabOffset(l, h));
                float[] keys = new float[length * shape.headDim()];
                float[] values = new float[length * shape.headDim()];
                cache.dequantize(l, h, keys, values);
                for (int p = 0; p < 2 * b; p++) {
                    for (int i = 0; i < shape.headDim(); i++) {
                        int e = p * shape.headDim() + i;
                        assertThat(a.sealedLoad(pool, p / b, l, h, 0, p % b, i)).as("%s K l%d h%d pos %d dim %d", codec, l, h, p, i)
                                .isEqualTo(keys[e]);
                        assertThat(a.sealedLoad(pool, p / b, l, h, 1, p % b, i)).as("%s V l%d h%d pos %d dim %d", codec, l, h, p, i)
                                .isEqualTo(values[e]);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"f32", "int8/8"})
    void openOffsetsAreTheLayoutsAndOddInt4GroupsAreRefused(String codecName) {
        KvLayout layout = new KvLayout(2, 3, 16, 8, KvCodec.parse(codecName));
        KvKernelArgs a = KvKernelArgs.of(layout);
        for (int block = 0; block < 3; block++) {
            for (int l = 0; l < 2; l++) {
                for (int h = 0; h < 3; h++) {
                    for (int kv = 0; kv < 2; kv++) {
                        assertThat(a.openOffset(block, l, h, kv)).isEqualTo(layout.openIndex(block * 8, l, h, kv, 0));
                    }
                }
            }
        }
        assertThat(KvKernelArgs.supported(KvCodec.int4(1))).isFalse();
        assertThat(KvKernelArgs.suffix(KvCodec.INT4)).isEqualTo("int4");
    }
}
