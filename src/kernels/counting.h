/*
 * counting.h - counting kernels (counting.c):
 *
 *   histogram(data, edges)   int64 counts of float64 data in the equal-width
 *                            bins of float64 `edges` (n + 1 of them, from
 *                            np.linspace), NumPy's np.histogram exactly
 *
 * The cd_kernel_fn signature and error contract are core/kernel.h's; the
 * descriptors are in the registry (registry.h).
 */
#ifndef CD_COUNTING_H
#define CD_COUNTING_H

#include "core/kernel.h"

int cd_k_histogram(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out,
                   cd_err *err);
int64_t cd_k_histogram_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in);

#endif /* CD_COUNTING_H */
