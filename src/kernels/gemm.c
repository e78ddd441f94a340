/*
 * gemm.c - the "gemm" kernel (interface and layout: gemm.h).
 *
 * Design.  gemm_plan() validates the inputs against the parameters and works
 * out the output shape, M, N and each pair's K; both the kernel and its
 * out_bytes estimate use it.  The kernel then allocates the output chunk once
 * and, for each output batch item, walks the pairs calling ?gemm with the
 * operands' own leading dimensions (transposed operands and sub-ranges are
 * pointer offsets and trans flags, not copies), beta = 0 for the first pair
 * with a non-empty contraction and beta = 1 afterwards.  If every pair has
 * K == 0 the result is zero-filled, as NumPy's empty sum.  Plain C: no
 * Python; runs on a worker without the GIL.
 */
#include "kernels/gemm.h"

#include <pthread.h>
#include <string.h>

#include "cblas.h"

/* ------------------------------------------------------------------ */
/* OpenBLAS threads: one while any gemm kernel runs                    */

static pthread_mutex_t blas_mu = PTHREAD_MUTEX_INITIALIZER;
static int blas_active;   /* gemm kernels running */
static int blas_saved;    /* OpenBLAS threads before the first of them */

static void blas_enter(void)
{
    pthread_mutex_lock(&blas_mu);
    if (blas_active++ == 0) {
        blas_saved = scipy_openblas_get_num_threads();
        if (blas_saved != 1)
            scipy_openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_mu);
}

static void blas_leave(void)
{
    pthread_mutex_lock(&blas_mu);
    if (--blas_active == 0 && blas_saved != 1 && blas_saved > 0)
        scipy_openblas_set_num_threads(blas_saved);
    pthread_mutex_unlock(&blas_mu);
}

/* ------------------------------------------------------------------ */
/* planning                                                            */

typedef struct {
    int ndim;
    int64_t shape[CD_MAXDIMS];
    int64_t nbatch_items;            /* product of the output batch axes */
    int64_t M, N;                    /* full free sizes of A and B */
    int64_t m0, mlen, n0, nlen;      /* the part computed */
    int64_t a_bdim[CD_MAXDIMS];      /* A's batch axes, right-aligned, 1 where absent */
    int64_t b_bdim[CD_MAXDIMS];
} gplan;

static int64_t prod(const int64_t *s, int n)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        p *= s[i];
    return p;
}

static int same_dims(const int64_t *a, const int64_t *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static int read_params(const cd_kctx *ctx, cd_gemm_params *p, cd_err *err)
{
    if (ctx->params == NULL || ctx->params_size != sizeof(*p))
        return cd_err_set(err, CD_EVALUE, "kernel 'gemm': bad parameters (%zu bytes, want %zu)",
                          ctx->params_size, sizeof(*p));
    memcpy(p, ctx->params, sizeof(*p));
    if (p->magic != CD_GEMM_MAGIC || p->nbatch < 0 || p->a_nbatch < 0 || p->b_nbatch < 0 ||
        p->a_nbatch > p->nbatch || p->b_nbatch > p->nbatch || p->nbatch > CD_MAXDIMS ||
        p->a_split < 0 || p->b_split < 0 || p->trans_a < 0 || p->trans_a > 2 ||
        p->trans_b < 0 || p->trans_b > 2)
        return cd_err_set(err, CD_EVALUE, "kernel 'gemm': bad parameters");
    return 0;
}

/* Free-part size and contracted size of one operand block. */
static int split_sizes(const cd_chunk *c, int nb, int split, int trans, int is_a,
                       int64_t *free, int64_t *con, int *fstart, int *fnd)
{
    int rest, g2n;
    int64_t g1, g2;
    if (nb + split > c->ndim)
        return -1;
    rest = c->ndim - nb;
    g2n = rest - split;
    g1 = prod(c->shape + nb, split);
    g2 = prod(c->shape + nb + split, g2n);
    /* A: group 1 free unless transposed.  B: group 1 contracted unless transposed. */
    if ((is_a && !trans) || (!is_a && trans)) {
        *free = g1;
        *con = g2;
        *fstart = nb;
        *fnd = split;
    } else {
        *free = g2;
        *con = g1;
        *fstart = nb + split;
        *fnd = g2n;
    }
    return 0;
}

static int gemm_plan(const cd_gemm_params *p, int nin, cd_chunk *const *in, gplan *g,
                     cd_err *err)
{
    int np2 = nin / 2, afs, afn, bfs, bfn, fs, fn;
    const cd_chunk *a0, *b0;
    int64_t K0a, K0b, t;
    cd_dtype dt;

    if (nin < 2 || nin % 2 != 0)
        return cd_err_set(err, CD_ETYPE, "kernel 'gemm' takes pairs of blocks (A list, B list), "
                          "got %d inputs", nin);
    a0 = in[0];
    b0 = in[np2];
    dt = a0->dtype;
    if (dt != CD_FLOAT32 && dt != CD_FLOAT64 && dt != CD_COMPLEX64 && dt != CD_COMPLEX128)
        return cd_err_set(err, CD_ETYPE, "kernel 'gemm' takes float32, float64, complex64 or "
                          "complex128 blocks, not %s", cd_dtype_name[dt]);
    for (int i = 1; i < nin; i++)
        if (in[i]->dtype != dt)
            return cd_err_set(err, CD_ETYPE, "kernel 'gemm': blocks of dtypes %s and %s; cast "
                              "them to one dtype first", cd_dtype_name[dt],
                              cd_dtype_name[in[i]->dtype]);
    if (split_sizes(a0, p->a_nbatch, p->a_split, p->trans_a, 1, &g->M, &K0a, &afs, &afn) < 0 ||
        split_sizes(b0, p->b_nbatch, p->b_split, p->trans_b, 0, &g->N, &K0b, &bfs, &bfn) < 0)
        return cd_err_set(err, CD_EVALUE, "kernel 'gemm': blocks have too few dimensions for "
                          "the parameters");
    /* every pair: same batch and free axes as the first, K of A == K of B */
    for (int k = 0; k < np2; k++) {
        const cd_chunk *a = in[k], *b = in[np2 + k];
        int64_t Ma, Ka, Nb, Kb;
        if (split_sizes(a, p->a_nbatch, p->a_split, p->trans_a, 1, &Ma, &Ka, &fs, &fn) < 0 ||
            split_sizes(b, p->b_nbatch, p->b_split, p->trans_b, 0, &Nb, &Kb, &fs, &fn) < 0 ||
            a->ndim != a0->ndim || b->ndim != b0->ndim ||
            !same_dims(a->shape, a0->shape, p->a_nbatch) ||
            !same_dims(b->shape, b0->shape, p->b_nbatch) ||
            !same_dims(a->shape + afs, a0->shape + afs, afn) ||
            !same_dims(b->shape + bfs, b0->shape + bfs, bfn))
            return cd_err_set(err, CD_EVALUE, "kernel 'gemm': block %d of the contraction does "
                              "not match the first block's batch or free axes", k);
        if (Ka != Kb)
            return cd_err_set(err, CD_EVALUE, "kernel 'gemm': blocks %d have contracted lengths "
                              "%lld and %lld", k, (long long)Ka, (long long)Kb);
        if (Ka > INT32_MAX)
            goto too_big;
    }
    /* output: broadcast batch axes, then A's free axes, then B's */
    g->ndim = p->nbatch + afn + bfn;
    if (g->ndim > CD_MAXDIMS)
        return cd_err_set(err, CD_EVALUE, "kernel 'gemm': result would have %d dimensions",
                          g->ndim);
    g->nbatch_items = 1;
    for (int d = 0; d < p->nbatch; d++) {
        int da = d - (p->nbatch - p->a_nbatch), db = d - (p->nbatch - p->b_nbatch);
        int64_t la = da >= 0 ? a0->shape[da] : 1, lb = db >= 0 ? b0->shape[db] : 1;
        if (la != lb && la != 1 && lb != 1)
            return cd_err_set(err, CD_EVALUE, "kernel 'gemm': batch axes of lengths %lld and "
                              "%lld cannot be broadcast", (long long)la, (long long)lb);
        g->a_bdim[d] = la;
        g->b_bdim[d] = lb;
        g->shape[d] = la == 1 ? lb : la;
        g->nbatch_items *= g->shape[d];
    }
    memcpy(g->shape + p->nbatch, a0->shape + afs, (size_t)afn * sizeof(int64_t));
    memcpy(g->shape + p->nbatch + afn, b0->shape + bfs, (size_t)bfn * sizeof(int64_t));
    g->m0 = 0;
    g->mlen = g->M;
    g->n0 = 0;
    g->nlen = g->N;
    if (p->m1 >= 0) {
        if (afn != 1 || p->m0 < 0 || p->m0 > p->m1 || p->m1 > g->M)
            return cd_err_set(err, CD_EVALUE, "kernel 'gemm': bad row range [%lld, %lld)",
                              (long long)p->m0, (long long)p->m1);
        g->m0 = p->m0;
        g->mlen = p->m1 - p->m0;
        g->shape[p->nbatch] = g->mlen;
    }
    if (p->n1 >= 0) {
        if (bfn != 1 || p->n0 < 0 || p->n0 > p->n1 || p->n1 > g->N)
            return cd_err_set(err, CD_EVALUE, "kernel 'gemm': bad column range [%lld, %lld)",
                              (long long)p->n0, (long long)p->n1);
        g->n0 = p->n0;
        g->nlen = p->n1 - p->n0;
        g->shape[p->nbatch + afn] = g->nlen;
    }
    if (g->M > INT32_MAX || g->N > INT32_MAX)
        goto too_big;
    if (__builtin_mul_overflow(g->nbatch_items, g->mlen, &t) ||
        __builtin_mul_overflow(t, g->nlen, &t) ||
        __builtin_mul_overflow(t, (int64_t)cd_dtype_itemsize[dt], &t))
        return cd_err_set(err, CD_EOVERFLOW, "kernel 'gemm': result too large");
    return 0;
too_big:
    return cd_err_set(err, CD_EVALUE, "kernel 'gemm': a block exceeds BLAS's 32-bit size limit");
}

/* ------------------------------------------------------------------ */
/* the kernel                                                          */

static enum CBLAS_TRANSPOSE cblas_trans(int t)
{
    return t == 0 ? CblasNoTrans : t == 1 ? CblasTrans : CblasConjTrans;
}

/* Linear index into an operand's batch axes for output batch item `item`. */
static int64_t batch_lin(const gplan *g, int nbatch, const int64_t *bdim, int64_t item)
{
    int64_t lin = 0, mul = 1;
    for (int d = nbatch - 1; d >= 0; d--) {
        int64_t i = item % g->shape[d];
        item /= g->shape[d];
        if (bdim[d] != 1)
            lin += i * mul;
        mul *= bdim[d];
    }
    return lin;
}

static void call_gemm(cd_dtype dt, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                      int m, int n, int k, const void *a, int lda, const void *b, int ldb,
                      int beta1, void *c, int ldc)
{
    switch (dt) {
    case CD_FLOAT32:
        scipy_cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb,
                          beta1 ? 1.0f : 0.0f, c, ldc);
        break;
    case CD_FLOAT64:
        scipy_cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb,
                          beta1 ? 1.0 : 0.0, c, ldc);
        break;
    case CD_COMPLEX64: {
        const float one[2] = {1.0f, 0.0f}, zero[2] = {0.0f, 0.0f};
        scipy_cblas_cgemm(CblasRowMajor, ta, tb, m, n, k, one, a, lda, b, ldb,
                          beta1 ? one : zero, c, ldc);
        break;
    }
    default: {
        const double one[2] = {1.0, 0.0}, zero[2] = {0.0, 0.0};
        scipy_cblas_zgemm(CblasRowMajor, ta, tb, m, n, k, one, a, lda, b, ldb,
                          beta1 ? one : zero, c, ldc);
        break;
    }
    }
}

int cd_k_gemm(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    cd_gemm_params p;
    gplan g;
    cd_chunk *r;
    int rc, np2 = nin / 2;
    int64_t isz, cstride;
    cd_dtype dt;

    *out = NULL;
    rc = read_params(ctx, &p, err);
    if (rc < 0)
        return rc;
    rc = gemm_plan(&p, nin, in, &g, err);
    if (rc < 0)
        return rc;
    dt = in[0]->dtype;
    isz = cd_dtype_itemsize[dt];
    r = cd_chunk_new(dt, g.ndim, g.shape, err);
    if (r == NULL)
        return err != NULL ? err->code : CD_ENOMEM;
    if (r->size == 0) {
        *out = r;
        return 0;
    }
    cstride = g.mlen * g.nlen;
    blas_enter();
    for (int64_t item = 0; item < g.nbatch_items; item++) {
        int64_t alin = batch_lin(&g, p.nbatch, g.a_bdim, item);
        int64_t blin = batch_lin(&g, p.nbatch, g.b_bdim, item);
        char *c = (char *)r->data + item * cstride * isz;
        int started = 0;
        for (int k = 0; k < np2; k++) {
            const cd_chunk *a = in[k], *b = in[np2 + k];
            int64_t K = 0, Mx, aoff, boff, lda, ldb;
            int fs, fn;
            split_sizes(a, p.a_nbatch, p.a_split, p.trans_a, 1, &Mx, &K, &fs, &fn);
            if (K == 0)
                continue;
            if (cd_cancelled(ctx)) {
                blas_leave();
                cd_chunk_decref(r);
                return cd_err_set(err, CD_ECANCEL, "cancelled");
            }
            /* A is M x K (lda K) or, transposed, K x M (lda M) */
            lda = p.trans_a ? g.M : K;
            aoff = alin * g.M * K + (p.trans_a ? g.m0 : g.m0 * K);
            /* B is K x N (ldb N) or, transposed, N x K (ldb K) */
            ldb = p.trans_b ? K : g.N;
            boff = blin * g.N * K + (p.trans_b ? g.n0 * K : g.n0);
            call_gemm(dt, cblas_trans(p.trans_a), cblas_trans(p.trans_b), (int)g.mlen,
                      (int)g.nlen, (int)K, (const char *)a->data + aoff * isz, (int)lda,
                      (const char *)b->data + boff * isz, (int)ldb, started, c,
                      (int)g.nlen);
            started = 1;
        }
        if (!started)
            memset(c, 0, (size_t)(cstride * isz));
    }
    blas_leave();
    *out = r;
    return 0;
}

int64_t cd_k_gemm_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    cd_gemm_params p;
    gplan g;
    if (read_params(ctx, &p, NULL) < 0 || gemm_plan(&p, nin, in, &g, NULL) < 0)
        return 0;
    return prod(g.shape, g.ndim) * cd_dtype_itemsize[in[0]->dtype];
}
