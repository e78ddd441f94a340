/*
 * registry.h - the kernels known by name: the one table of them, written as
 * an X-macro (as numexpr's opcodes.hpp) and expanded in registry.c into the
 * descriptors and cd_builtin_kernels, in this order (the order of
 * cdask._core.kernels).  Kernel objects pickle as a name plus parameter
 * bytes, so these names are stable.
 *
 * X(name, doc, min_in, max_in, fn, out_bytes, work_bytes, flags): the fields
 * of cd_kernel_desc (core/kernel.h); the descriptor is cd_kdesc_<name>.
 *
 * The "ufunc" and "fused" kernels are not in the table: their parameters
 * hold pointers meaningful only in this process, so they are made by the
 * Python glue only and pickle by re-resolving (ufunc.h, fused.h).
 */
#ifndef CD_REGISTRY_H
#define CD_REGISTRY_H

#include "core/kernel.h"

#define CD_KERNEL_TABLE(X)                                                                       \
    X(add, "add(a, b): elementwise a + b (one dtype; equal shapes or a 1-element side).",       \
      2, 2, cd_k_add, cd_k_bin_out_bytes, NULL, 0)                                               \
    X(sub, "sub(a, b): elementwise a - b (one dtype; equal shapes or a 1-element side).",       \
      2, 2, cd_k_sub, cd_k_bin_out_bytes, NULL, 0)                                               \
    X(mul, "mul(a, b): elementwise a * b (one dtype; equal shapes or a 1-element side).",       \
      2, 2, cd_k_mul, cd_k_bin_out_bytes, NULL, 0)                                               \
    X(sum, "sum(*chunks): 0-d sum of all elements of all inputs (one dtype; pairwise for floats).", \
      1, -1, cd_k_sum, cd_k_sum_out_bytes, NULL, 0)                                              \
    X(ones, "ones(n): float64 vector of n ones.", 1, 1, cd_k_ones, cd_k_fill_out_bytes, NULL, 0) \
    X(zeros, "zeros(n): float64 vector of n zeros.", 1, 1, cd_k_zeros, cd_k_fill_out_bytes, NULL, 0) \
    X(dot, "dot(a, b): float32/float64 vector.vector -> 0-d, or matrix @ matrix (BLAS).",       \
      2, 2, cd_k_dot, cd_k_dot_out_bytes, NULL, 0)                                               \
    X(gemm,                                                                                      \
      "gemm([A blocks], [B blocks]): one output block of a contraction, sum of op(A_k) op(B_k) " \
      "accumulated by BLAS ?gemm (beta = 1) into one chunk; params: cd_gemm_params.",           \
      2, -1, cd_k_gemm, cd_k_gemm_out_bytes, NULL, 0)                                            \
    X(spin, "spin(seconds): busy-wait that long (cancellable); returns the seconds waited.",    \
      1, 1, cd_k_spin, cd_k_scalar8_out_bytes, NULL, 0)                                          \
    X(fail, "fail(*args): always raises ValueError (tests error handling).",                    \
      0, -1, cd_k_fail, NULL, NULL, 0)                                                           \
    X(histogram,                                                                                 \
      "histogram(data, edges): int64 counts of float64 data in NumPy's equal-width float64 "     \
      "edges, as np.histogram.", 2, 2, cd_k_histogram, cd_k_histogram_out_bytes, NULL, 0)

/* One descriptor per row: cd_kdesc_add, cd_kdesc_gemm, ... */
#define CD_X_DECL(name, doc, lo, hi, fn, ob, wb, fl) extern const cd_kernel_desc cd_kdesc_##name;
CD_KERNEL_TABLE(CD_X_DECL)
#undef CD_X_DECL

/* Every descriptor of the table, in its order, NULL-terminated. */
extern const cd_kernel_desc *const cd_builtin_kernels[];

/* Look a kernel up by name; NULL if unknown (or name is NULL). */
const cd_kernel_desc *cd_kernel_find(const char *name);

/* A name for messages and task records: desc->name, or, for kernels
 * parameterised by an operation (a NumPy loop), that operation's name.
 * Never NULL. */
const char *cd_kernel_display_name(const cd_kernel_desc *desc, const void *params, size_t params_size);

#endif /* CD_REGISTRY_H */
