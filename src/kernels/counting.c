/*
 * counting.c - counting kernels (interface: counting.h; descriptors in the
 * registry, registry.h).
 *
 *   histogram(data, edges)   the counts of np.histogram(data, bins=n,
 *                            range=(edges[0], edges[n])) for float64 data,
 *                            `edges` being NumPy's n + 1 equal-width edges
 *
 * Design.  NumPy bins equal-width edges without searching them: it computes
 * a bin from (x - first) / (last - first) * n, truncated, and then moves it
 * by one where the edges say the estimate is off (rounding near an edge).
 * This kernel does the very same operations on each value, in double
 * precision and in the same order, so the counts are NumPy's exactly: a
 * value outside [first, last] or NaN is not counted, the last bin includes
 * its right edge.  It is one pass over the data with an n-long count array
 * (no index array, no temporary the size of a block as NumPy's blocks of
 * 65536 values need), polling the cancel flag between blocks.  Other
 * dtypes, weights and unequal bins are left to np.histogram in Python tasks.
 */
#include "kernels/counting.h"

#include <string.h>

#define BLOCK ((int64_t)1 << 18)   /* values between cancellation polls */

int cd_k_histogram(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out,
                   cd_err *err)
{
    const cd_chunk *a, *e;
    const double *x, *edges;
    double first, last, denom, numer;
    int64_t nb, *counts;
    cd_chunk *r;

    *out = NULL;
    if (nin != 2)
        return cd_err_set(err, CD_ETYPE,
                          "kernel 'histogram' takes 2 inputs (data, edges), got %d", nin);
    a = in[0];
    e = in[1];
    if (a->dtype != CD_FLOAT64 || e->dtype != CD_FLOAT64)
        return cd_err_set(err, CD_ETYPE,
                          "kernel 'histogram' takes float64 data and edges, got %s and %s",
                          cd_dtype_name[a->dtype], cd_dtype_name[e->dtype]);
    if (e->ndim != 1 || e->shape[0] < 2)
        return cd_err_set(err, CD_EVALUE,
                          "kernel 'histogram': the edges must be a 1-d array of at least 2 "
                          "values");
    nb = e->shape[0] - 1;
    edges = (const double *)e->data;
    first = edges[0];
    last = edges[nb];
    if (!(first < last))
        return cd_err_set(err, CD_EVALUE,
                          "kernel 'histogram': the edges must increase (first %g, last %g)",
                          first, last);
    r = cd_chunk_new(CD_INT64, 1, &nb, err);
    if (r == NULL)
        return err != NULL ? err->code : CD_ENOMEM;
    counts = (int64_t *)r->data;
    memset(counts, 0, (size_t)nb * sizeof(int64_t));
    denom = last - first;
    numer = (double)nb;
    x = (const double *)a->data;
    for (int64_t off = 0; off < a->size; off += BLOCK) {
        int64_t end = off + BLOCK < a->size ? off + BLOCK : a->size;
        if (off != 0 && cd_cancelled(ctx)) {
            cd_chunk_decref(r);
            return cd_err_set(err, CD_ECANCEL, "cancelled");
        }
        for (int64_t i = off; i < end; i++) {
            double v = x[i];
            int64_t k;
            if (!(v >= first && v <= last))     /* outside the range, or NaN */
                continue;
            k = (int64_t)(((v - first) / denom) * numer);
            if (k == nb)
                k--;
            if (v < edges[k])
                k--;
            if (v >= edges[k + 1] && k != nb - 1)
                k++;
            counts[k]++;
        }
    }
    *out = r;
    return 0;
}

int64_t cd_k_histogram_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    CD_UNUSED(ctx);
    if (nin != 2 || in[1]->ndim != 1 || in[1]->shape[0] < 2)
        return 0;
    return (in[1]->shape[0] - 1) * (int64_t)sizeof(int64_t);
}
