package io.moestream.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class LaunchGeometryTest {

    @Test
    void productsCoverEveryRowWithOneWarp() {
        for (int rows : new int[] {1, 3, 4, 5, 127, 768, 4097, 151936}) {
            int blocks = LaunchGeometry.matmulBlocks(rows);
            assertThat((long) blocks * LaunchGeometry.MATMUL_WARPS).isGreaterThanOrEqualTo(rows);
            assertThat((long) (blocks - 1) * LaunchGeometry.MATMUL_WARPS).isLessThan(rows);
        }
        assertThat(LaunchGeometry.matmulThreads()).isEqualTo(128);
    }

    /** quantize_q8_0 / quantize_q8_k: one warp per 32- or 256-value block, every block of the activation rows covered once. */
    @Test
    void activationQuantizersCoverEveryBlock() {
        for (int per : new int[] {32, 256}) {
            for (long rows : new long[] {1, 3, 64, 512}) {
                for (long cols : new long[] {256, 768, 4096, 7168}) {
                    long blocks = rows * cols / per;
                    int grid = LaunchGeometry.quantizeBlocks(blocks);
                    long warps = (long) grid * LaunchGeometry.quantizeThreads() / LaunchGeometry.WARP;
                    assertThat(warps).isGreaterThanOrEqualTo(blocks);
                    assertThat(warps - blocks).isLessThan(LaunchGeometry.quantizeThreads() / LaunchGeometry.WARP);
                }
            }
        }
    }

    @Test
    void splitKCoversEveryPositionAndFillsTheDevice() {
        int sms = 132;
        for (int maxLen : new int[] {1, 2, 63, 64, 65, 1403, 4096, 32768, 131072}) {
            for (int rows : new int[] {1, 8, 64}) {
                for (int heads : new int[] {1, 4, 32}) {
                    int splits = LaunchGeometry.attentionSplits(maxLen, rows, heads, sms);
                    int chunk = LaunchGeometry.attentionChunk(maxLen, splits);
                    assertThat(splits).isBetween(1, LaunchGeometry.MAX_SPLITS);
                    assertThat((long) splits * chunk).as("len %d rows %d heads %d", maxLen, rows, heads).isGreaterThanOrEqualTo(maxLen);
                    assertThat((long) (splits - 1) * chunk).isLessThan(maxLen); // no split starts past the end
                    if (splits > 1) {
                        assertThat(chunk).isGreaterThanOrEqualTo(LaunchGeometry.MIN_SPLIT_POSITIONS);
                    }
                }
            }
        }
        // one long decode row on 32 heads: enough splits to give every SM work
        int s = LaunchGeometry.attentionSplits(32768, 1, 32, sms);
        assertThat((long) s * 32).isGreaterThanOrEqualTo(2L * sms - 32);
        // a big batch needs no split
        assertThat(LaunchGeometry.attentionSplits(4096, 64, 32, sms)).isEqualTo(1);
        assertThat(LaunchGeometry.attentionScratchFloats(2, 3, 4, 64)).isEqualTo(2L * 3 * 4 * 66);
    }

    @Test
    void rowKernelsUseWholeWarps() {
        for (int g : new int[] {1, 16, 32, 33, 80, 128, 4096}) {
            int t = LaunchGeometry.normThreads(g);
            assertThat(t % 32).isZero();
            assertThat(t).isBetween(32, 256);
        }
        assertThat(LaunchGeometry.elementwiseBlocks(1)).isEqualTo(1);
        assertThat(LaunchGeometry.elementwiseBlocks(1L << 40)).isEqualTo(65535);
        assertThat(LaunchGeometry.quantizeBlocks(9)).isEqualTo(2);
        assertThat(LaunchGeometry.routeSharedBytes(256)).isLessThanOrEqualTo(48 * 1024);
    }
}
