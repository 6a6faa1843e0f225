// Runs blocks.cuh's decoding (the code the kernels run) on the host, for BlocksOnHostTest:
// usage: blocks_host <type 0..7 (BT_*)> <cols> <rows> < row bytes; prints the float bits of every
// value as dequant_value computes it, one 8-digit hex number per line.
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

int main(int argc, char** argv) {
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
