/*
 * gemm.h - the "gemm" kernel: one output block of a tensor contraction,
 * accumulated by BLAS ?gemm over the blocks along the contracted axes.
 *
 * A task is (gemm_kernel, [A_0 ... A_{p-1}], [B_0 ... B_{p-1}]): the kernel
 * gets 2p chunks of one dtype (float32, float64, complex64, complex128) and
 * computes  C = sum_k op(A_k) op(B_k)  with gemm, beta = 0 for the first pair
 * whose contracted length is not zero and beta = 1 for the others, into one
 * new chunk.  No product of a single pair is ever materialised.
 *
 * Layout of a block, as stored (chunks are C-contiguous):
 *   A_k: [a_nbatch batch axes][group 1: a_split axes][group 2: the rest]
 *   B_k: [b_nbatch batch axes][group 1: b_split axes][group 2: the rest]
 * trans_a == 0: group 1 of A is its free part (M), group 2 contracted (K);
 * trans_a != 0: group 1 is contracted, group 2 free, and gemm reads A
 * transposed (trans_a == 2: conjugate-transposed, for vdot) - a transposed
 * operand is therefore handed over as its untransposed block, never copied.
 * trans_b == 0: group 1 of B is contracted (K), group 2 free (N);
 * trans_b != 0: group 1 free, group 2 contracted.
 * Batch axes are right-aligned against the output's nbatch leading axes and
 * broadcast where their length is 1 (NumPy's matmul rules).
 *
 * The result has shape [batch][A's free axes][B's free axes].  m0/m1 (n0/n1)
 * select rows [m0, m1) of M (columns of N) when m1 >= 0 (n1 >= 0): a block
 * product split into several tasks reads sub-matrices through gemm's leading
 * dimensions, again without copies; that needs exactly one free axis on that
 * side.
 *
 * While any gemm kernel runs, cdask's OpenBLAS is kept at one thread (the
 * scheduler's workers are the parallelism; OpenBLAS' own threads would
 * oversubscribe the cores); the setting in force before is restored when the
 * last running gemm kernel returns.
 */
#ifndef CD_GEMM_H
#define CD_GEMM_H

#include "core/kernel.h"

#define CD_GEMM_MAGIC 0x6d6d6731u   /* "1gmm": layout version */

typedef struct cd_gemm_params {
    uint32_t magic;
    int32_t nbatch;            /* batch axes of the output */
    int32_t a_nbatch, b_nbatch;
    int32_t a_split, b_split;
    int32_t trans_a, trans_b;  /* 0 no, 1 transpose, 2 conjugate transpose */
    int64_t m0, m1, n0, n1;    /* sub-ranges; m1 / n1 < 0: everything */
} cd_gemm_params;

/* The "gemm" kernel and its result size (registered in registry.h). */
int cd_k_gemm(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err);
int64_t cd_k_gemm_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in);

#endif /* CD_GEMM_H */
