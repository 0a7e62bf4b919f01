#pragma once
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <float.h>
#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#define GGML_RESTRICT
#define MIN(a,b) ((a) < (b) ? (a) : (b))
#define MAX(a,b) ((a) > (b) ? (a) : (b))
#define GROUP_MAX_EPS 1e-15f
#define QK_K 256
#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
typedef uint16_t ggml_half;
static inline ggml_half GGML_FP32_TO_FP16(float f) { _Float16 h = (_Float16)f; uint16_t b; memcpy(&b, &h, 2); return b; }
static inline float GGML_FP16_TO_FP32(ggml_half b) { _Float16 h; memcpy(&h, &b, 2); return (float)h; }
typedef struct { ggml_half d; uint8_t qs[16]; } block_q4_0;
typedef struct { ggml_half d; ggml_half m; uint8_t qs[16]; } block_q4_1;
typedef struct { ggml_half d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;
typedef struct { ggml_half d; ggml_half m; uint8_t qh[4]; uint8_t qs[16]; } block_q5_1;
typedef struct { ggml_half d; int8_t qs[32]; } block_q8_0;
typedef struct { uint8_t scales[16]; uint8_t qs[64]; ggml_half d; ggml_half dmin; } block_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; ggml_half d; } block_q3_K;
typedef struct { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qs[128]; } block_q4_K;
typedef struct { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } block_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d; } block_q6_K;
