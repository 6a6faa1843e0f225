// Runs blocks.cuh's decoding and sub-block products (the code the kernels run) on the host, for
// BlocksOnHostTest:
//   blocks_host <type 0..7 (BT_*)> <cols> <rows> < row bytes: the float bits of every value as
//     dequant_value computes it, one 8-digit hex number per line;
//   blocks_host <type> <cols> <rows> dot < row bytes, cols int8 activation quants, cols / QK float
//     scales: per row the sum of sub_dot over its sub-blocks in order, as hex float bits.
#include "blocks.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <vector>

template <int T>
static void dump(const std::vector<uint8_t>& w, int cols, int rows) {
    size_t rb = (size_t) (cols / BlockInfo<T>::values) * BlockInfo<T>::bytes;
    if (w.size() < rb * rows) {
        fprintf(stderr, "need %zu bytes, got %zu\n", rb * rows, w.size());
        exit(2);
    }
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < cols; i++) {
            float v = dequant_value<T>(w.data() + r * rb, i);
            uint32_t bits;
            memcpy(&bits, &v, 4);
            printf("%08x\n", bits);
        }
    }
}

template <int T>
static void dot(const std::vector<uint8_t>& in, int cols, int rows) {
    constexpr int QK = BlockInfo<T>::values;
    size_t rb = (size_t) (cols / QK) * BlockInfo<T>::bytes;
    if (in.size() != rb * rows + cols + 4 * (cols / QK)) {
        fprintf(stderr, "need %zu bytes, got %zu\n", rb * rows + cols + 4 * (cols / QK), in.size());
        exit(2);
    }
    std::vector<int8_t> xq(cols);
    memcpy(xq.data(), in.data() + rb * rows, cols);
    std::vector<float> xd(cols / QK);
    memcpy(xd.data(), in.data() + rb * rows + cols, 4 * (cols / QK));
    for (int r = 0; r < rows; r++) {
        float acc = 0.f;
        for (int s = 0; s < cols / 32; s++) {
            const uint8_t* b = in.data() + r * rb + (size_t) (s / (QK / 32)) * BlockInfo<T>::bytes;
            int j = s % (QK / 32);
            SubScales sc = sub_scales<T>(b, j);
            int wv[8];
            sub_pack<T>(b, j, wv);
            acc += sub_dot<T>(sc, wv, xq.data() + 32 * s, xd[s / (QK / 32)]);
        }
        uint32_t bits;
        memcpy(&bits, &acc, 4);
        printf("%08x\n", bits);
    }
}

int main(int argc, char** argv) {
    if (argc == 5) {
        int type = atoi(argv[1]), cols = atoi(argv[2]), rows = atoi(argv[3]);
        std::vector<uint8_t> in;
        int c;
        while ((c = getchar()) != EOF) in.push_back((uint8_t) c);
        switch (type) {
            case BT_Q2_K: dot<BT_Q2_K>(in, cols, rows); break;
            case BT_Q3_K: dot<BT_Q3_K>(in, cols, rows); break;
            case BT_Q4_K: dot<BT_Q4_K>(in, cols, rows); break;
            case BT_Q5_K: dot<BT_Q5_K>(in, cols, rows); break;
            case BT_Q6_K: dot<BT_Q6_K>(in, cols, rows); break;
            case BT_Q5_0: dot<BT_Q5_0>(in, cols, rows); break;
            case BT_IQ4_NL: dot<BT_IQ4_NL>(in, cols, rows); break;
            case BT_MXFP4: dot<BT_MXFP4>(in, cols, rows); break;
            default: fprintf(stderr, "unknown type %d\n", type); return 2;
        }
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: blocks_host <type> <cols> <rows> < bytes\n");
        return 2;
    }
    int type = atoi(argv[1]), cols = atoi(argv[2]), rows = atoi(argv[3]);
    std::vector<uint8_t> w;
    int c;
    while ((c = getchar()) != EOF) w.push_back((uint8_t) c);
    switch (type) {
        case BT_Q2_K: dump<BT_Q2_K>(w, cols, rows); break;
        case BT_Q3_K: dump<BT_Q3_K>(w, cols, rows); break;
        case BT_Q4_K: dump<BT_Q4_K>(w, cols, rows); break;
        case BT_Q5_K: dump<BT_Q5_K>(w, cols, rows); break;
        case BT_Q6_K: dump<BT_Q6_K>(w, cols, rows); break;
        case BT_Q5_0: dump<BT_Q5_0>(w, cols, rows); break;
        case BT_IQ4_NL: dump<BT_IQ4_NL>(w, cols, rows); break;
        case BT_MXFP4: dump<BT_MXFP4>(w, cols, rows); break;
        default: fprintf(stderr, "unknown type %d\n", type); return 2;
    }
    return 0;
}
