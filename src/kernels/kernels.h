/*
 * kernels.h - the basic C kernels (kernels.c): add, sub, mul, sum, ones,
 * zeros, dot, spin, fail.  Each has the cd_kernel_fn signature (core/kernel.h):
 * on failure it returns a negative CD_E* code with err filled, *out NULL and
 * nothing it made left behind.  They are reached by name through the
 * registry (registry.h), which holds their descriptors; the functions are
 * declared here only so that the registry can point at them.
 */
#ifndef CD_KERNELS_H
#define CD_KERNELS_H

#include "core/kernel.h"

int cd_k_add(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err);
int cd_k_sub(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err);
int cd_k_mul(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err);
int cd_k_sum(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err);
int cd_k_ones(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err);
int cd_k_zeros(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err);
int cd_k_dot(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err);
int cd_k_spin(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err);
int cd_k_fail(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err);

/* Result sizes for the scheduler's memory accounting (0 when unknown). */
int64_t cd_k_bin_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in);
int64_t cd_k_sum_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in);
int64_t cd_k_fill_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in);
int64_t cd_k_dot_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in);
int64_t cd_k_scalar8_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in);

#endif /* CD_KERNELS_H */
