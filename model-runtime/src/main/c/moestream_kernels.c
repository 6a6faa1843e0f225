// Native Q8_0/Q4_0 row products for io.moestream.runtime.kernel.NativeKernels (JNI), and (AVX-512
// level) attention over float32 key/value blocks (attention_zmm.h, its own numerics notes).
//
// The same numbers as ScalarKernels, bit for bit: per block an exact integer dot of the weight
// quants with the activation's Q8_0 quants, then llama.cpp's float order —
//   Q8_0: 8 float lanes, lane j += fma(d_w * d_x, sum of products 4j..4j+3), then hsum_float_8;
//   Q4_0: per row acc = fma(isum, d_w * d_x, acc), block after block.
// Integer sums are exact in any order, so the int8 products use whatever the CPU has (AVX-512 VNNI
// vpdpbusd, or AVX2 vpmaddubsw + vpmaddwd); only the float steps are fixed, and they are written
// as explicit intrinsics (the file is compiled with -ffp-contract=off).
//
// Each kernel body is compiled twice (kernels_body.h): once for AVX2+FMA+F16C, once with VNNI;
// moestream_features() tells Java which the CPU runs. Java checks every offset and length before
// calling in: nothing here trusts a size it was not given by the checked caller.
#include <jni.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 256

typedef struct {
    const int8_t *q;   // blocks * 32 quants
    const float *d;    // blocks scales (already rounded through F16)
    const int32_t *s;  // blocks sums of the block's quants
} act_t;

static inline act_t act_at(jlong address, jint blocks) {
    act_t a;
    a.q = (const int8_t *) (intptr_t) address;
    a.d = (const float *) (intptr_t) (address + (jlong) blocks * 32);
    a.s = (const int32_t *) (intptr_t) (address + (jlong) blocks * 36);
    return a;
}

// the n (<= MAX_BATCH) activations whose native forms start at the addresses in xs; 0 when n is too large
static int read_acts(JNIEnv *env, jlongArray xs, jint n, jint blocks, act_t *acts) {
    jlong addresses[MAX_BATCH];
    if (n < 0 || n > MAX_BATCH) {
        return 0;
    }
    (*env)->GetLongArrayRegion(env, xs, 0, n, addresses);
    for (int k = 0; k < n; k++) {
        acts[k] = act_at(addresses[k], blocks);
    }
    return 1;
}

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#define SUFFIX avx2
#define WITH_BATCH 1
#define DOT4(a, b) _mm256_madd_epi16(_mm256_maddubs_epi16((a), (b)), _mm256_set1_epi16(1))
#include "kernels_body.h"
#undef DOT4
#undef SUFFIX
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")
#define SUFFIX vnni
#undef WITH_BATCH
#define WITH_BATCH 0
#define DOT4(a, b) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (a), (b))
#include "kernels_body.h"
#undef DOT4
#undef SUFFIX
#include "kernels_zmm.h"
#include "attention_zmm.h"
#pragma GCC pop_options

// 0: no kernel runs here; 1: AVX2 kernels; 2: VNNI kernels.
static int level(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("f16c")) {
        return 0;
    }
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni")) {
        return 2;
    }
    return 1;
}

JNIEXPORT jint JNICALL Java_io_moestream_runtime_kernel_NativeKernels_level(JNIEnv *env, jclass cls) {
    (void) env;
    (void) cls;
    return level();
}

JNIEXPORT jlong JNICALL Java_io_moestream_runtime_kernel_NativeKernels_address(JNIEnv *env, jclass cls, jobject buffer) {
    (void) cls;
    return (jlong) (intptr_t) (*env)->GetDirectBufferAddress(env, buffer);
}

// out[outIndex + i] = row i . x for rows consecutive rows of w (+ off), rowBytes apart.
JNIEXPORT void JNICALL Java_io_moestream_runtime_kernel_NativeKernels_rows(JNIEnv *env, jclass cls, jint vnni,
        jint q4, jobject buffer, jlong off, jint rowBytes, jint rows, jint blocks, jlong x, jfloatArray out, jint outIndex) {
    (void) cls;
    const uint8_t *w = (const uint8_t *) (*env)->GetDirectBufferAddress(env, buffer) + off;
    act_t a = act_at(x, blocks);
    float *o = (*env)->GetPrimitiveArrayCritical(env, out, NULL);
    if (o == NULL) {
        return;
    }
    if (q4) {
        (vnni ? q4_rows_zmm : q4_rows_avx2)(w, rowBytes, rows, blocks, a, o + outIndex);
    } else {
        (vnni ? q8_rows_vnni : q8_rows_avx2)(w, rowBytes, rows, blocks, a, o + outIndex);
    }
    (*env)->ReleasePrimitiveArrayCritical(env, out, o, 0);
}

// The first 8 * groups rows of w (+ off, rowBytes apart) repacked for q4_groups_zmm into to (+ toOff);
// AVX-512 level only (the caller checks).
JNIEXPORT void JNICALL Java_io_moestream_runtime_kernel_NativeKernels_repackQ4(JNIEnv *env, jclass cls, jobject buffer,
        jlong off, jint rowBytes, jint groups, jint blocks, jobject to, jlong toOff) {
    (void) cls;
    const uint8_t *w = (const uint8_t *) (*env)->GetDirectBufferAddress(env, buffer) + off;
    q4_repack(w, (size_t) rowBytes, groups, blocks, (uint8_t *) (*env)->GetDirectBufferAddress(env, to) + toOff);
}

// out[outIndex + i] = row i . x for the 8 * groups rows repacked at w (+ off); AVX-512 level only.
JNIEXPORT void JNICALL Java_io_moestream_runtime_kernel_NativeKernels_groupsQ4(JNIEnv *env, jclass cls, jobject buffer,
        jlong off, jint groups, jint blocks, jlong x, jfloatArray out, jint outIndex) {
    (void) cls;
    const uint8_t *w = (const uint8_t *) (*env)->GetDirectBufferAddress(env, buffer) + off;
    act_t a = act_at(x, blocks);
    float *o = (*env)->GetPrimitiveArrayCritical(env, out, NULL);
    if (o == NULL) {
        return;
    }
    q4_groups_zmm(w, groups, blocks, a, o + outIndex);
    (*env)->ReleasePrimitiveArrayCritical(env, out, o, 0);
}

// out[k * rows + i] = row i . xs[k] for k < n (n <= MAX_BATCH, checked by the caller); AVX2 level
// (the AVX-512 level packs the activations: batchPacked).
JNIEXPORT void JNICALL Java_io_moestream_runtime_kernel_NativeKernels_batch(JNIEnv *env, jclass cls, jint q4, jobject buffer, jlong off, jint rowBytes, jint rows, jint blocks, jlongArray xs, jint n, jfloatArray out) {
    (void) cls;
    const uint8_t *w = (const uint8_t *) (*env)->GetDirectBufferAddress(env, buffer) + off;
    act_t acts[MAX_BATCH];
    if (!read_acts(env, xs, n, blocks, acts)) {
        return;
    }
    float *o = (*env)->GetPrimitiveArrayCritical(env, out, NULL);
    if (o == NULL) {
        return;
    }
    if (q4) {
        q4_batch_avx2(w, rowBytes, rows, blocks, acts, n, o);
    } else {
        q8_batch_avx2(w, rowBytes, rows, blocks, acts, n, o);
    }
    (*env)->ReleasePrimitiveArrayCritical(env, out, o, 0);
}

// Bytes the packed form of n activations of `blocks` blocks takes (see kernels_zmm.h).
JNIEXPORT jlong JNICALL Java_io_moestream_runtime_kernel_NativeKernels_packedBytes(JNIEnv *env, jclass cls, jint q4,
        jint n, jint blocks) {
    (void) env;
    (void) cls;
    return (jlong) packed_bytes(q4, n, blocks);
}

// Packs n activations (n <= MAX_BATCH) into `to` (packedBytes(q4, n, blocks) bytes, 64-byte aligned).
JNIEXPORT void JNICALL Java_io_moestream_runtime_kernel_NativeKernels_pack(JNIEnv *env, jclass cls, jint q4,
        jlongArray xs, jint n, jint blocks, jlong to) {
    (void) cls;
    act_t acts[MAX_BATCH];
    if (!read_acts(env, xs, n, blocks, acts)) {
        return;
    }
    (q4 ? pack_q4 : pack_q8)(acts, n, blocks, (uint8_t *) (intptr_t) to);
}

// out[k * rows + i] = row i . activation k of the packed activations (VNNI only).
JNIEXPORT void JNICALL Java_io_moestream_runtime_kernel_NativeKernels_batchPacked(JNIEnv *env, jclass cls, jint q4,
        jobject buffer, jlong off, jint rowBytes, jint rows, jint blocks, jlong packed, jint n, jfloatArray out) {
    (void) cls;
    const uint8_t *w = (const uint8_t *) (*env)->GetDirectBufferAddress(env, buffer) + off;
    float *o = (*env)->GetPrimitiveArrayCritical(env, out, NULL);
    if (o == NULL) {
        return;
    }
    (q4 ? q4_batch_packed : q8_batch_packed)(w, rowBytes, rows, blocks, (const uint8_t *) (intptr_t) packed, n, o);
    (*env)->ReleasePrimitiveArrayCritical(env, out, o, 0);
}

// ggml's x86 quantize_row_q8_0 of x[off .. off + n) (n a multiple of 32), written as Activation
// keeps it: q (int16, natural order), qi (int16, interleaved x0 x16 x1 x17 ... per block; NULL to
// skip), d (scales rounded through F16) and, at `to` (0 to skip), the native form (int8 quants,
// scales, int32 block sums). Same numbers as Activation.quantizeQ8_0: amax = max |x|,
// d = f16(amax / 127), q = round-half-even(x * (127 / amax)) (cvtps2dq under the JVM's default
// rounding mode, round to nearest even).
__attribute__((target("avx2,fma,f16c")))
static void quantize_q8(const float *x, int n, int16_t *q, int16_t *qi, float *d, uint8_t *to) {
    int blocks = n / 32;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < blocks; b++) {
        const float *xb = x + 32 * b;
        __m256 m = _mm256_setzero_ps();
        __m256 nan = _mm256_setzero_ps();
        for (int c = 0; c < 4; c++) {
            __m256 v = _mm256_loadu_ps(xb + 8 * c);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v));
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        // Java's Math.max propagates NaN; MAXPS does not
        float amax = _mm256_movemask_ps(nan) ? __builtin_nanf("") : _mm_cvtss_f32(h);
        float scale = _cvtsh_ss(_cvtss_sh(amax / 127.0f, 0));
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32_t vals[32];
        for (int c = 0; c < 4; c++) {
            __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 8 * c), _mm256_set1_ps(id)));
            _mm256_storeu_si256((__m256i *) (vals + 8 * c), v);
        }
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) {
            vals[j] = (int16_t) vals[j];  // NaN and infinities convert to INT_MIN; Java's (short) keeps its low bits, 0
            q[32 * b + j] = (int16_t) vals[j];
            sum += vals[j];
        }
        if (qi) {
            for (int j = 0; j < 16; j++) {
                qi[32 * b + 2 * j] = (int16_t) vals[j];
                qi[32 * b + 2 * j + 1] = (int16_t) vals[16 + j];
            }
        }
        d[b] = scale;
        if (to) {
            for (int j = 0; j < 32; j++) {
                to[32 * b + j] = (uint8_t) (int8_t) vals[j];
            }
            memcpy(to + (size_t) n + 4 * (size_t) b, &scale, 4);
            memcpy(to + (size_t) n + 4 * (size_t) (blocks + b), &sum, 4);
        }
    }
}

JNIEXPORT void JNICALL Java_io_moestream_runtime_kernel_NativeKernels_quantize(JNIEnv *env, jclass cls, jfloatArray x,
        jint off, jint n, jshortArray q, jshortArray qi, jfloatArray d, jlong to) {
    (void) cls;
    float *xs = (*env)->GetPrimitiveArrayCritical(env, x, NULL);
    int16_t *qs = (*env)->GetPrimitiveArrayCritical(env, q, NULL);
    int16_t *qis = qi ? (*env)->GetPrimitiveArrayCritical(env, qi, NULL) : NULL;
    float *ds = (*env)->GetPrimitiveArrayCritical(env, d, NULL);
    if (xs && qs && ds && (qis || !qi)) {
        quantize_q8(xs + off, n, qs, qis, ds, (uint8_t *) (intptr_t) to);
    }
    if (ds) (*env)->ReleasePrimitiveArrayCritical(env, d, ds, 0);
    if (qis) (*env)->ReleasePrimitiveArrayCritical(env, qi, qis, 0);
    if (qs) (*env)->ReleasePrimitiveArrayCritical(env, q, qs, 0);
    if (xs) (*env)->ReleasePrimitiveArrayCritical(env, x, xs, JNI_ABORT);
}

#define ATT_MAX_BLOCKS 1024

// Attention of one query's group of heads over float32 blocks (attention_zmm.h; AVX-512 level).
// Java checks every size: blocks <= ATT_MAX_BLOCKS, heads <= ATT_MAX_HEADS, each visible position's
// block present and long enough, att, q and out long enough.
JNIEXPORT void JNICALL Java_io_moestream_runtime_kernel_NativeKernels_attendNative(JNIEnv *env, jclass cls,
        jobjectArray kBlocks, jobjectArray vBlocks, jint blocks, jint bt, jint hd, jint len, jint a, jint b,
        jfloatArray q, jint qOff, jint heads, jfloat scale, jobjectArray att, jint lanes, jfloatArray out, jint outOff) {
    (void) cls;
    if (blocks < 1 || blocks > ATT_MAX_BLOCKS || heads < 1 || heads > ATT_MAX_HEADS
            || (*env)->EnsureLocalCapacity(env, 2 * blocks + heads + 4) != 0) {
        return;
    }
    jobject kr[ATT_MAX_BLOCKS], vr[ATT_MAX_BLOCKS], ar[ATT_MAX_HEADS];
    const float *kp[ATT_MAX_BLOCKS], *vp[ATT_MAX_BLOCKS];
    float *ap[ATT_MAX_HEADS];
    for (int i = 0; i < blocks; i++) {
        kr[i] = (*env)->GetObjectArrayElement(env, kBlocks, i);
        vr[i] = (*env)->GetObjectArrayElement(env, vBlocks, i);
    }
    for (int g = 0; g < heads; g++) {
        ar[g] = (*env)->GetObjectArrayElement(env, att, g);
    }
    int ok = 1;
    for (int i = 0; i < blocks; i++) {
        kp[i] = kr[i] ? (*env)->GetPrimitiveArrayCritical(env, kr[i], NULL) : NULL;
        vp[i] = vr[i] ? (*env)->GetPrimitiveArrayCritical(env, vr[i], NULL) : NULL;
        ok &= (kr[i] == NULL || kp[i] != NULL) && (vr[i] == NULL || vp[i] != NULL);
    }
    for (int g = 0; g < heads; g++) {
        ap[g] = (*env)->GetPrimitiveArrayCritical(env, ar[g], NULL);
        ok &= ap[g] != NULL;
    }
    float *qp = (*env)->GetPrimitiveArrayCritical(env, q, NULL);
    float *op = (*env)->GetPrimitiveArrayCritical(env, out, NULL);
    if (ok && qp && op) {
        attend_f32(kp, vp, bt, hd, len, a, b, qp + qOff, heads, scale, ap, lanes, op + outOff);
    }
    if (op) (*env)->ReleasePrimitiveArrayCritical(env, out, op, 0);
    if (qp) (*env)->ReleasePrimitiveArrayCritical(env, q, qp, JNI_ABORT);
    for (int g = heads - 1; g >= 0; g--) {
        if (ap[g]) (*env)->ReleasePrimitiveArrayCritical(env, ar[g], ap[g], 0);
    }
    for (int i = blocks - 1; i >= 0; i--) {
        if (vp[i]) (*env)->ReleasePrimitiveArrayCritical(env, vr[i], (void *) vp[i], JNI_ABORT);
        if (kp[i]) (*env)->ReleasePrimitiveArrayCritical(env, kr[i], (void *) kp[i], JNI_ABORT);
    }
}

// K-quant rows (NativeKQuant), AVX2 level
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include "kquant.h"
#pragma GCC pop_options

// K-quant rows against native Q8_K activations, AVX-512 VNNI level
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512dq,avx512vnni")
#include "kquant_zmm.h"
#pragma GCC pop_options

// ggml's quantize_row_q8_K of x[off .. off + n) (n a multiple of 256), written as Activation keeps
// it (q as int16, d, bsums of 16 as int32) and in the native form kquant_zmm.h reads (kq8_at) at
// `to`. Same numbers as Q8K.quantize: per block the first value of largest magnitude (NaN never
// is) gives iscale = -127 / max, q = min(127, (int) rint(iscale * x)) with the product in float,
// d = 1 / iscale. Blocks whose max or iscale is not finite take the scalar path with Java's
// conversion rules (NaN to 0, saturation); the others round with cvtps2dq (nearest even under the
// JVM's rounding mode; NaN gives INT_MIN, whose low 16 bits are Java's (short) 0).
static int java_d2i(double v) {
    if (v != v) return 0;
    if (v >= 2147483647.0) return INT32_MAX;
    if (v <= -2147483648.0) return INT32_MIN;
    return (int) v;
}

__attribute__((target("avx2,fma,f16c")))
static void quantize_q8k(const float *x, int n, int16_t *q, float *d, int32_t *bsums, uint8_t *to) {
    int blocks = n / 256;
    int8_t *nq = (int8_t *) to, *nr = (int8_t *) (to + n);
    float *nd = (float *) (to + 2 * (size_t) n);
    int16_t *nbs = (int16_t *) (to + 2 * (size_t) n + 4 * (size_t) blocks);
    int16_t *nps = nbs + n / 16;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    static const int order[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    for (int b = 0; b < blocks; b++) {
        const float *xb = x + 256 * (size_t) b;
        __m256 m = _mm256_setzero_ps();
        for (int c = 0; c < 32; c++) {
            m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xb + 8 * c)), m);  // a NaN gives m back
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        int16_t *qb = q + 256 * (size_t) b;
        int32_t vals[256];
        if (amax == 0) {
            memset(vals, 0, sizeof vals);
            d[b] = 0;
        } else {
            float max = 0;
            for (int j = 0; j < 256; j++) {
                if (fabsf(xb[j]) == amax) {
                    max = xb[j];
                    break;
                }
            }
            float iscale = -127.f / max;
            if (isfinite(iscale) && isfinite(amax)) {
                __m256 is = _mm256_set1_ps(iscale);
                for (int c = 0; c < 32; c++) {
                    __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(xb + 8 * c)));
                    _mm256_storeu_si256((__m256i *) (vals + 8 * c), _mm256_min_epi32(v, _mm256_set1_epi32(127)));
                }
            } else {
                for (int j = 0; j < 256; j++) {
                    int v = java_d2i(rint((double) (iscale * xb[j])));
                    vals[j] = v < 127 ? v : 127;
                }
            }
            d[b] = 1 / iscale;
        }
        for (int j = 0; j < 256; j++) {
            qb[j] = (int16_t) vals[j];
            nq[256 * (size_t) b + j] = (int8_t) qb[j];
        }
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) {
                s += qb[16 * g + j];
            }
            bsums[16 * b + g] = s;
            nbs[16 * b + g] = (int16_t) s;
        }
        for (int p = 0; p < 8; p++) {
            nps[8 * b + p] = (int16_t) (nbs[16 * b + 2 * p] + nbs[16 * b + 2 * p + 1]);
            memcpy(nr + 256 * (size_t) b + 32 * p, nq + 256 * (size_t) b + 32 * order[p], 32);
        }
        nd[b] = d[b];
    }
}

JNIEXPORT void JNICALL Java_io_moestream_runtime_kernel_NativeKQuant_quantize(JNIEnv *env, jclass cls, jfloatArray x,
        jint off, jint n, jshortArray q, jfloatArray d, jintArray bsums, jlong to) {
    (void) cls;
    float *xs = (*env)->GetPrimitiveArrayCritical(env, x, NULL);
    int16_t *qs = (*env)->GetPrimitiveArrayCritical(env, q, NULL);
    float *ds = (*env)->GetPrimitiveArrayCritical(env, d, NULL);
    int32_t *bs = (*env)->GetPrimitiveArrayCritical(env, bsums, NULL);
    if (xs && qs && ds && bs) {
        quantize_q8k(xs + off, n, qs, ds, bs, (uint8_t *) (intptr_t) to);
    }
    if (bs) (*env)->ReleasePrimitiveArrayCritical(env, bsums, bs, 0);
    if (ds) (*env)->ReleasePrimitiveArrayCritical(env, d, ds, 0);
    if (qs) (*env)->ReleasePrimitiveArrayCritical(env, q, qs, 0);
    if (xs) (*env)->ReleasePrimitiveArrayCritical(env, x, xs, JNI_ABORT);
}

// Q4_K/Q5_K/Q6_K rows against n (<= KQ_MAX_ACTS) activations in their native Q8_K form (AVX-512
// VNNI level; the caller checks the level, every size and each activation's form):
// out[k * rows + i] = row i . activation k, in gemm order when gemm is set (Q4_K only). Returns 0 (out
// untouched) for a type without a kernel here.
JNIEXPORT jint JNICALL Java_io_moestream_runtime_kernel_NativeKQuant_batch(JNIEnv *env, jclass cls, jint type,
        jint gemm, jobject buffer, jlong off, jint rowBytes, jint rows, jint blocks, jlongArray xs, jint n, jfloatArray out) {
    (void) cls;
    if (n < 1 || n > KQ_MAX_ACTS) {
        return 0;
    }
    const uint8_t *w = (const uint8_t *) (*env)->GetDirectBufferAddress(env, buffer) + off;
    jlong addresses[KQ_MAX_ACTS];
    kq8_t acts[KQ_MAX_ACTS];
    (*env)->GetLongArrayRegion(env, xs, 0, n, addresses);
    for (int k = 0; k < n; k++) {
        acts[k] = kq8_at(addresses[k], blocks * 256);
    }
    float *o = (*env)->GetPrimitiveArrayCritical(env, out, NULL);
    if (o == NULL) {
        return 0;
    }
    int done = kz_rows(type, gemm, w, (size_t) rowBytes, rows, blocks, acts, n, o);
    (*env)->ReleasePrimitiveArrayCritical(env, out, o, 0);
    return done;
}

// The first 16 * groups Q4_K (type KQ_Q4_K) or Q5_K rows of w (+ off, rowBytes apart) repacked for
// kz_q4k_groups / kz_q5k_groups into to; AVX-512 level only (the caller checks it and every size).
JNIEXPORT void JNICALL Java_io_moestream_runtime_kernel_NativeKQuant_repackK(JNIEnv *env, jclass cls, jint type,
        jobject buffer, jlong off, jint rowBytes, jint groups, jint blocks, jobject to) {
    (void) cls;
    const uint8_t *w = (const uint8_t *) (*env)->GetDirectBufferAddress(env, buffer) + off;
    uint8_t *t = (uint8_t *) (*env)->GetDirectBufferAddress(env, to);
    (type == KQ_Q4_K ? kz_q4k_repack : kz_q5k_repack)(w, (size_t) rowBytes, groups, blocks, t);
}

// out[outIndex + i] = row i . x for the 16 * groups Q4_K (type KQ_Q4_K) or Q5_K rows repacked at
// w (+ off), x in its native Q8_K form; AVX-512 level only (the caller checks it and every size).
JNIEXPORT void JNICALL Java_io_moestream_runtime_kernel_NativeKQuant_groupsK(JNIEnv *env, jclass cls, jint type,
        jobject buffer, jlong off, jint groups, jint blocks, jlong x, jfloatArray out, jint outIndex) {
    (void) cls;
    const uint8_t *w = (const uint8_t *) (*env)->GetDirectBufferAddress(env, buffer) + off;
    kq8_t a = kq8_at(x, blocks * 256);
    float *o = (*env)->GetPrimitiveArrayCritical(env, out, NULL);
    if (o == NULL) {
        return;
    }
    (type == KQ_Q4_K ? kz_q4k_groups : kz_q5k_groups)(w, groups, blocks, a, o + outIndex);
    (*env)->ReleasePrimitiveArrayCritical(env, out, o, 0);
}
