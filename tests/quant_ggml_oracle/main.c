#include "shim.h"
#include <stdlib.h>
#include "ref.c"

#define NBLK 64
#define N (NBLK*QK_K)
static uint64_t st = 0x853c49e6748fea9bULL;
static uint32_t next(void) { st = st*6364136223846793005ULL + 1442695040888963407ULL; return (uint32_t)(st >> 33); }

static void gen(float *x) {
    for (int i = 0; i < N; i++) {
        int64_t u = 0;
        for (int k = 0; k < 4; k++) u += (int64_t)(next() >> 7);
        u -= 2LL << 24;
        int b = i / QK_K;
        float scale = ldexpf(1.0f, -24 - (b % 7));
        x[i] = (float)u * scale;
    }
    // edge cases: all-zero block, constant block, outlier, all-positive, tiny values
    for (int i = 0; i < QK_K; i++) {
        x[5*QK_K + i] = 0.0f;
        x[6*QK_K + i] = 0.75f;
        x[8*QK_K + i] = fabsf(x[8*QK_K + i]);
        x[9*QK_K + i] = -fabsf(x[9*QK_K + i]);
        x[10*QK_K + i] *= 1e-30f;
    }
    x[7*QK_K + 3] = 50.0f;
    x[11*QK_K + 200] = -40.0f;
    for (int i = 0; i < 32; i++) x[12*QK_K + 64 + i] = 0.0f; // one zero group inside a block
}

static void dump(const char *name, const void *q, size_t qn, const float *deq) {
    char fn[64];
    snprintf(fn, sizeof fn, "out/%s.q", name); FILE *f = fopen(fn, "wb"); fwrite(q, 1, qn, f); fclose(f);
    snprintf(fn, sizeof fn, "out/%s.deq", name); f = fopen(fn, "wb"); fwrite(deq, 4, N, f); fclose(f);
}


int main(void) {
    static float x[N], y[N];
    gen(x);
    FILE *f = fopen("out/input.f32", "wb"); fwrite(x, 4, N, f); fclose(f);
    { static block_q4_0 q[N/32]; quantize_row_q4_0_ref(x, q, N); dequantize_row_q4_0(q, y, N); dump("q4_0", q, sizeof q, y); }
    { static block_q4_1 q[N/32]; quantize_row_q4_1_ref(x, q, N); dequantize_row_q4_1(q, y, N); dump("q4_1", q, sizeof q, y); }
    { static block_q5_0 q[N/32]; quantize_row_q5_0_ref(x, q, N); dequantize_row_q5_0(q, y, N); dump("q5_0", q, sizeof q, y); }
    { static block_q5_1 q[N/32]; quantize_row_q5_1_ref(x, q, N); dequantize_row_q5_1(q, y, N); dump("q5_1", q, sizeof q, y); }
    { static block_q8_0 q[N/32]; quantize_row_q8_0_ref(x, q, N); dequantize_row_q8_0(q, y, N); dump("q8_0", q, sizeof q, y); }
    { static block_q2_K q[N/256]; quantize_row_q2_K_ref(x, q, N); dequantize_row_q2_K(q, y, N); dump("q2_k", q, sizeof q, y); }
    { static block_q3_K q[N/256]; quantize_row_q3_K_ref(x, q, N); dequantize_row_q3_K(q, y, N); dump("q3_k", q, sizeof q, y); }
    { static block_q4_K q[N/256]; quantize_row_q4_K_ref(x, q, N); dequantize_row_q4_K(q, y, N); dump("q4_k", q, sizeof q, y); }
    { static block_q5_K q[N/256]; quantize_row_q5_K_ref(x, q, N); dequantize_row_q5_K(q, y, N); dump("q5_k", q, sizeof q, y); }
    { static block_q6_K q[N/256]; quantize_row_q6_K_ref(x, q, N); dequantize_row_q6_K(q, y, N); dump("q6_k", q, sizeof q, y); }
    return 0;
}
