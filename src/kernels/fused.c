/*
 * fused.c - the "fused" kernel (interface and program layout: fused.h): a
 * chain of NumPy's own elementwise inner loops run over a chunk in one pass,
 * block by block, on a C worker without the GIL.  Pure C: no Python here.
 *
 * Design.
 *
 *   - Registers.  Register r < nin is input r; register nin + s is the result
 *     of step s.  A register is "scalar" when it holds one element for the
 *     whole output: a size-1 input, or a step whose operands are all scalar
 *     registers or constants.  Scalar steps are computed once, before the
 *     blocks, by a one-element loop call (as NumPy computes them on size-1
 *     arrays), and every scalar operand is passed to the loops with stride
 *     0, as NumPy passes a size-1 operand next to a full one.
 *   - Shapes.  The output shape is NumPy's broadcast of the inputs the
 *     program uses; every non-scalar register is evaluated over that whole
 *     shape, in blocks of B consecutive output elements (C order).  So each
 *     element of an intermediate is what NumPy's step-by-step evaluation
 *     computes for the element it broadcasts from (the loops are
 *     elementwise), and the output is written exactly once.
 *   - Blocks.  Per block: an input of the output's own shape is pointed at
 *     in its chunk (no copy); a broadcast input is gathered (rows copied or
 *     an element replicated, along merged axes) into a scratch buffer of B
 *     elements.  Then each step in program order: an operand whose register
 *     dtype is not the loop's dtype is cast into a scratch buffer (cd_cast,
 *     the "ufunc" kernel's casts, i.e. NumPy's astype); the loop is called on
 *     the B contiguous elements and writes the step's own scratch buffer -
 *     the last step writes straight into the output chunk.  No chunk-sized
 *     temporary is ever allocated: scratch is O(B * registers).
 *   - Rows.  Where the output has two or more merged axes and the inner one
 *     is at least 8192 elements long (NumPy's buffer size; the threshold
 *     the "ufunc" kernel uses), blocks do not cross rows, and an input that
 *     is broadcast along the row, with every step computed only from such
 *     registers, is "row-constant": one element per block, computed by a
 *     one-element loop call and passed to later loops with stride 0, the
 *     way NumPy passes an operand broadcast along its inner loop.  Shorter
 *     rows are gathered into contiguous blocks, as NumPy's buffered
 *     iterator (and the "ufunc" kernel) does.  Matching NumPy's call
 *     pattern matters for the few results that depend on it, such as which
 *     NaN's payload survives when both operands are NaN.
 *   - Choice of B.  B starts at 4096 elements (the same order as NumPy's
 *     8192-element buffers and numexpr's 1024; large enough that the per-call
 *     overhead of the loops vanishes), or at 1024 for a reduction (measured
 *     on mean(x[x > 0]) over 200M float64: 1024 keeps the block in L1 between
 *     the mask loop and the masked sum, and beat 2048-8192 by 10-40%;
 *     elementwise chains of transcendental loops ran best at 4096-8192), and
 *     is halved, down to 512, while the
 *     scratch of all registers and cast buffers would exceed 512 KiB: half
 *     of a typical 1-2 MiB L2, the rest being left to the streams of the
 *     inputs and the output.  B is always a power of two >= 512, a multiple
 *     of every SIMD width, so the loops' vector bodies and scalar tails fall
 *     where they fall on NumPy's whole-array calls.
 *   - Floating-point errors are raised by the loops (and the casts) into
 *     the thread's flags; the kernel is CD_KF_FPE so its callers clear and
 *     read them.  Integer power loops with a negative exponent are refused
 *     with NumPy's message before the call (CD_UF_CHECK_NEG_EXPONENT), as in
 *     the "ufunc" kernel.
 *   - Cancellation is polled between blocks.
 */
#include "kernels/fused.h"
#include "kernels/broadcast.h"

#include <stdlib.h>
#include <string.h>

#define CD_FUSED_B0 ((int64_t)4096)          /* preferred block, elements */
#define CD_FUSED_B0_RED ((int64_t)1024)      /* preferred block of a reduction */
#define CD_FUSED_BMIN ((int64_t)512)         /* smallest block */
#define CD_FUSED_BUDGET ((int64_t)512 << 10) /* scratch bytes aimed for */
#define CD_FUSED_LONGROW ((int64_t)8192)     /* rows this long keep stride-0 operands */

#define NREG (CD_FUSED_MAXIN + CD_FUSED_MAXSTEPS)
#define CD_FUSED_MAXTRAIL ((CD_FUSED_MAXIN + 1) * (2 + 2 * CD_MAXDIMS))
#define CD_FUSED_ROWCUT ((int64_t)512)       /* rows at least this long are walked
                                                row by row in boxes (see "Views") */

/* ------------------------------------------------------------------ */
/* parameters                                                          */

/* A box of a chunk an operand is read through (or the store writes). */
typedef struct {
    int has;
    int ndim;
    int64_t start[CD_MAXDIMS];
    int64_t shape[CD_MAXDIMS];    /* inputs only: the store's box has the output's shape */
} fview;

/* The trailing words into views[0 .. nin] (views[nin]: the store's box);
 * views may be NULL to only check them.  0, or -1 if they are malformed. */
static int parse_views(const cd_fused_params *p, fview *views)
{
    const int64_t *t = CD_FUSED_TRAIL(p);
    int64_t n = p->ntrail, at = 0;
    int seen[CD_FUSED_MAXIN + 1] = {0};
    if (views != NULL)
        memset(views, 0, (size_t)(p->nin + 1) * sizeof(fview));
    while (at < n) {
        int64_t which, nd, need;
        int store, slot;
        if (n - at < 2)
            return -1;
        which = t[at];
        nd = t[at + 1];
        store = which == -1;
        if (nd < 0 || nd > CD_MAXDIMS || (!store && (which < 0 || which >= p->nin)) ||
            (store && !(p->flags & CD_FUSED_STORE)))
            return -1;
        need = 2 + nd * (store ? 1 : 2);
        if (n - at < need)
            return -1;
        slot = store ? p->nin : (int)which;
        if (seen[slot])
            return -1;
        seen[slot] = 1;
        for (int64_t a = 0; a < nd; a++) {
            if (t[at + 2 + a] < 0 || (!store && t[at + 2 + nd + a] < 0))
                return -1;
            if (views != NULL) {
                views[slot].start[a] = t[at + 2 + a];
                views[slot].shape[a] = store ? 0 : t[at + 2 + nd + a];
            }
        }
        if (views != NULL) {
            views[slot].has = 1;
            views[slot].ndim = (int)nd;
        }
        at += need;
    }
    if ((p->flags & CD_FUSED_STORE) && !seen[p->nin])
        return -1;
    return 0;
}

/* The dtype of register r (input r, or step r - nin's result). */
static int32_t reg_dtype(const cd_fused_params *p, int r)
{
    if (r < p->nin)
        return p->in_dtype[r];
    return p->step[r - p->nin].uf.loop[p->step[r - p->nin].uf.nin];
}

/* A validated, aligned copy of the params (free() it); NULL and err set. */
static cd_fused_params *read_params(const cd_kctx *ctx, cd_err *err)
{
    cd_fused_params h, *p;
    if (ctx->params == NULL || ctx->params_size < sizeof(h))
        goto bad;
    memcpy(&h, ctx->params, sizeof(h));
    if (h.magic != CD_FUSED_MAGIC || h.nin < 0 || h.nin > CD_FUSED_MAXIN ||
        h.nsteps < (h.red.kind != CD_RED_NONE ? 0 : 1) ||
        h.nsteps > CD_FUSED_MAXSTEPS || h.ntrail < 0 || h.ntrail > CD_FUSED_MAXTRAIL ||
        (h.flags & ~(uint32_t)CD_FUSED_STORE) != 0 ||
        ctx->params_size != CD_FUSED_PARAMS_SIZE(h.nsteps, h.ntrail))
        goto bad;
    p = malloc(ctx->params_size);
    if (p == NULL) {
        cd_err_set(err, CD_ENOMEM, "kernel 'fused': out of memory");
        return NULL;
    }
    memcpy(p, ctx->params, ctx->params_size);
    for (int i = 0; i < p->nin; i++)
        if (p->in_dtype[i] < 0 || p->in_dtype[i] >= CD_NDTYPES)
            goto corrupt;
    for (int s = 0; s < p->nsteps; s++) {
        cd_fused_step *st = &p->step[s];
        st->uf.name[CD_UFUNC_NAMELEN - 1] = '\0';
        if (st->uf.magic != CD_UFUNC_MAGIC || st->uf.nin < 1 || st->uf.nin > CD_UFUNC_MAXIN ||
            st->uf.nout != 1 || st->uf.fn == NULL)
            goto corrupt;
        for (int i = 0; i <= st->uf.nin; i++)
            if (st->uf.loop[i] < 0 || st->uf.loop[i] >= CD_NDTYPES)
                goto corrupt;
        for (int i = 0; i < st->uf.nin; i++) {
            const cd_fused_ref *r = &st->op[i];
            if (!((r->kind == CD_FR_IN && r->index >= 0 && r->index < p->nin) ||
                  (r->kind == CD_FR_STEP && r->index >= 0 && r->index < s) ||
                  r->kind == CD_FR_CONST))
                goto corrupt;
        }
    }
    if (parse_views(p, NULL) < 0)
        goto corrupt;
    if (p->red.kind != CD_RED_NONE) {
        const cd_fused_red *rd = &p->red;
        int nreg = p->nin + p->nsteps;
        if (rd->kind < CD_RED_SUM || rd->kind > CD_RED_MAX || (p->flags & CD_FUSED_STORE) ||
            rd->value < 0 || rd->value >= nreg || rd->mask < -1 || rd->mask >= nreg ||
            rd->dt < 0 || rd->dt >= CD_NDTYPES || rd->out_dt < 0 || rd->out_dt >= CD_NDTYPES ||
            rd->uf.magic != CD_UFUNC_MAGIC || rd->uf.nin != 2 || rd->uf.fn == NULL ||
            rd->uf.loop[0] != rd->dt || rd->uf.loop[1] != rd->dt || rd->uf.loop[2] != rd->dt ||
            (rd->mask >= 0 && reg_dtype(p, rd->mask) != CD_BOOL))
            goto corrupt;
    }
    return p;
corrupt:
    free(p);
bad:
    cd_err_set(err, CD_EINTERNAL, "kernel 'fused': bad parameters (%zu bytes)", ctx->params_size);
    return NULL;
}

/* Which inputs the program reads. */
static void mark_used(const cd_fused_params *p, int *used)
{
    for (int i = 0; i < p->nin; i++)
        used[i] = 0;
    for (int s = 0; s < p->nsteps; s++)
        for (int i = 0; i < p->step[s].uf.nin; i++)
            if (p->step[s].op[i].kind == CD_FR_IN)
                used[p->step[s].op[i].index] = 1;
    if (p->red.kind != CD_RED_NONE) {   /* a reduction may read inputs directly */
        if (p->red.value < p->nin)
            used[p->red.value] = 1;
        if (p->red.mask >= 0 && p->red.mask < p->nin)
            used[p->red.mask] = 1;
    }
}

/* NumPy's broadcast of the used inputs' shapes; 0 or CD_EVALUE (with a
 * message when err is not NULL). */
static int broadcast(const cd_fused_params *p, const int *used, const int *nds,
                     const int64_t (*shapes)[CD_MAXDIMS], int *ndim, int64_t *shape, cd_err *err)
{
    const int64_t *sp[CD_FUSED_MAXIN];
    for (int i = 0; i < p->nin; i++)
        sp[i] = shapes[i];
    if (cd_broadcast_shape(p->nin, used, nds, sp, ndim, shape) == 0)
        return 0;
    if (err != NULL) {
        char buf[CD_ERRMSG];
        cd_fmt_shapes(buf, sizeof(buf), p->nin, used, nds, sp, 0);
        cd_err_set(err, CD_EVALUE,
                   "fused kernel: operands could not be broadcast together with shapes %s", buf);
    }
    return CD_EVALUE;
}

/* ------------------------------------------------------------------ */
/* gathering broadcast inputs                                          */

typedef struct {
    int nd;                       /* merged axes, >= 1 */
    int64_t len[CD_MAXDIMS];
    int64_t st[CD_FUSED_MAXIN + 1][CD_MAXDIMS];   /* element strides; [nin]: output */
} fwalk;

/* Element strides of each used input over the output's axes (cst: the
 * strides of its chunk along its own axes; 0 where it broadcasts); length-1
 * axes dropped, adjacent axes merged where every operand's strides chain. */
static void plan_walk(const cd_fused_params *p, const int *used, const int *nds,
                      const int64_t (*shapes)[CD_MAXDIMS], const int64_t (*cst)[CD_MAXDIMS],
                      int ndim, const int64_t *shape, fwalk *w)
{
    int64_t st[CD_FUSED_MAXIN + 1][CD_MAXDIMS];
    for (int i = 0; i < p->nin; i++) {
        if (used[i])
            cd_broadcast_strides(ndim, nds[i], shapes[i], cst[i], st[i]);
        else
            for (int a = 0; a < ndim; a++)
                st[i][a] = 0;
    }
    cd_broadcast_strides(ndim, ndim, shape, NULL, st[p->nin]);
    w->nd = cd_merge_axes(p->nin + 1, ndim, shape, (const int64_t (*)[CD_MAXDIMS])st, w->len, w->st);
}

/* The walk of the store's box: output and destination strides, merged. */
static void plan_dest_walk(int ndim, const int64_t *shape, const int64_t *dst_cst, fwalk *w)
{
    int64_t st[CD_FUSED_MAXIN + 1][CD_MAXDIMS];
    int64_t s = 1;
    for (int a = ndim - 1; a >= 0; a--) {
        st[0][a] = dst_cst[a];
        st[1][a] = s;
        s *= shape[a];
    }
    w->nd = cd_merge_axes(2, ndim, shape, (const int64_t (*)[CD_MAXDIMS])st, w->len, w->st);
}

/* Element offset in operand `op` of output element `f` (flat, C order). */
static int64_t elem_offset(const fwalk *w, int op, int64_t f)
{
    int64_t off = 0;
    for (int a = w->nd - 1; a >= 0; a--) {
        off += (f % w->len[a]) * w->st[op][a];
        f /= w->len[a];
    }
    return off;
}

/* Move the walk position (multi-index idx, element offset *off in operand
 * op) forward by run elements, which stay within the current inner row. */
static void walk_advance(const fwalk *w, int op, int64_t *idx, int64_t *off, int64_t run)
{
    int inner = w->nd - 1;
    *off += run * w->st[op][inner];
    idx[inner] += run;
    if (idx[inner] < w->len[inner])
        return;
    *off -= w->len[inner] * w->st[op][inner];
    idx[inner] = 0;
    for (int a = inner - 1; a >= 0; a--) {
        idx[a]++;
        *off += w->st[op][a];
        if (idx[a] < w->len[a])
            break;
        *off -= w->st[op][a] * w->len[a];
        idx[a] = 0;
    }
}

/* n copies of the isz-byte element at dst (dst[0] already holds it). */
static void replicate(char *dst, int isz, int64_t n)
{
    int64_t have = 1;
    while (have < n) {
        int64_t k = have < n - have ? have : n - have;
        memcpy(dst + have * isz, dst, (size_t)(k * isz));
        have += k;
    }
}

/*
 * Copy between the contiguous buffer buf and output elements [start,
 * start + m) of operand `op` of the walk (data at base, isz bytes per
 * element): to_buf gathers (operand -> buf; a zero inner stride replicates
 * one element), else scatters (buf -> operand, which has no zero strides).
 * Always inlined into gather and scatter, so each is compiled for its own
 * direction.
 */
static inline __attribute__((always_inline)) void
walk_copy(const fwalk *w, int op, char *base, int isz, int64_t start, int64_t m, char *buf,
          int to_buf)
{
    int64_t idx[CD_MAXDIMS], off = 0, rem = start;
    int inner = w->nd - 1;
    int64_t s = w->st[op][inner];
    for (int a = inner; a >= 0; a--) {
        idx[a] = rem % w->len[a];
        rem /= w->len[a];
        off += idx[a] * w->st[op][a];
    }
    while (m > 0) {
        int64_t run = w->len[inner] - idx[inner];
        if (run > m)
            run = m;
        if (s == 1) {
            if (to_buf)
                memcpy(buf, base + off * isz, (size_t)(run * isz));
            else
                memcpy(base + off * isz, buf, (size_t)(run * isz));
        } else if (to_buf && s == 0) {
            memcpy(buf, base + off * isz, (size_t)isz);
            replicate(buf, isz, run);
        } else if (to_buf) {
            for (int64_t j = 0; j < run; j++)
                memcpy(buf + j * isz, base + (off + j * s) * isz, (size_t)isz);
        } else {
            for (int64_t j = 0; j < run; j++)
                memcpy(base + (off + j * s) * isz, buf + j * isz, (size_t)isz);
        }
        buf += run * isz;
        m -= run;
        walk_advance(w, op, idx, &off, run);
    }
}

/* Output elements [start, start + m) of broadcast operand `op` (data at src,
 * isz bytes per element) into the contiguous buffer dst. */
static void gather(const fwalk *w, int op, const char *src, int isz, int64_t start, int64_t m,
                   char *dst)
{
    walk_copy(w, op, (char *)src, isz, start, m, dst, 1);
}

/* The contiguous buffer src (m output elements from `start`) into operand
 * `op` of the walk (data at dst, isz bytes per element, no zero strides). */
static void scatter(const fwalk *w, int op, char *dst, int isz, int64_t start, int64_t m,
                    const char *src)
{
    walk_copy(w, op, dst, isz, start, m, (char *)src, 0);
}

/* ------------------------------------------------------------------ */
/* the kernel                                                          */

typedef struct {
    cd_dtype dt;
    int isz;
    int scalar;                   /* one element, stride 0 */
    int direct;                   /* input of the output's shape: points into its chunk */
    int rowc;                     /* long rows only: constant along the row, one element
                                     passed with stride 0 (see "Rows" above) */
    const char *data;             /* input: chunk data */
    char *buf;                    /* scratch of B elements (gathered input, step result) */
    char *cur;                    /* the register's elements for the current block */
    _Alignas(16) unsigned char one[16];   /* scalar value */
} freg;

typedef struct {
    char *cast;                   /* scratch of B elements in the loop dtype, or NULL */
    int scalar;                   /* operand passed with stride 0 from val */
    _Alignas(16) unsigned char val[16];
} fopnd;


/* The register an operand reads (constants: -1). */
static int reg_of(const cd_fused_params *p, const cd_fused_ref *r)
{
    return r->kind == CD_FR_IN ? r->index : r->kind == CD_FR_STEP ? p->nin + r->index : -1;
}

/* Which registers are scalar, given which inputs are (scalar_in[i]). */
static void mark_scalar(const cd_fused_params *p, const int *scalar_in, int *scalar_reg)
{
    for (int i = 0; i < p->nin; i++)
        scalar_reg[i] = scalar_in[i];
    for (int s = 0; s < p->nsteps; s++) {
        int sc = 1;
        for (int i = 0; i < p->step[s].uf.nin; i++) {
            int r = reg_of(p, &p->step[s].op[i]);
            if (r >= 0 && !scalar_reg[r])
                sc = 0;
        }
        scalar_reg[p->nin + s] = sc;
    }
}

/* Scratch bytes per block element: gathered inputs, intermediate step
 * results and cast operands (scalar ones and the output take none). */
static int64_t bytes_per_elem(const cd_fused_params *p, const int *scalar_reg, const int *gathered)
{
    int64_t b = 0;
    for (int i = 0; i < p->nin; i++)
        if (gathered[i])
            b += cd_dtype_itemsize[p->in_dtype[i]];
    for (int s = 0; s < p->nsteps; s++) {
        const cd_fused_step *st = &p->step[s];
        if (scalar_reg[p->nin + s])
            continue;
        if (s < p->nsteps - 1)
            b += cd_dtype_itemsize[st->uf.loop[st->uf.nin]];
        for (int i = 0; i < st->uf.nin; i++) {
            int r = reg_of(p, &st->op[i]), rdt;
            if (r < 0 || scalar_reg[r])
                continue;
            rdt = r < p->nin ? p->in_dtype[r] : p->step[r - p->nin].uf.loop[p->step[r - p->nin].uf.nin];
            if (rdt != st->uf.loop[i])
                b += cd_dtype_itemsize[st->uf.loop[i]];
        }
    }
    return b;
}

static int64_t choose_block_from(int64_t B, int64_t bpe);

static int64_t choose_block(int64_t bpe)
{
    return choose_block_from(CD_FUSED_B0, bpe);
}

static int64_t choose_block_from(int64_t B, int64_t bpe)
{
    while (B > CD_FUSED_BMIN && B * bpe > CD_FUSED_BUDGET)
        B /= 2;
    return B;
}

int64_t cd_fused_block_elems(const cd_fused_params *p)
{
    int none[CD_FUSED_MAXIN] = {0}, all[CD_FUSED_MAXIN], sc[NREG];
    for (int i = 0; i < CD_FUSED_MAXIN; i++)
        all[i] = 1;
    mark_scalar(p, none, sc);
    return choose_block(bytes_per_elem(p, sc, all));
}

/* Call step s's loop on m elements into `dst`; 0 or CD_EVALUE. */
static int run_step(const cd_fused_step *st, freg *regs, const cd_fused_params *p,
                    fopnd *ops, int64_t m, char *dst, cd_err *err)
{
    const cd_ufunc_params *uf = &st->uf;
    char *args[CD_UFUNC_MAXIN + 1];
    intptr_t steps[CD_UFUNC_MAXIN + 1], dims[1];
    int n = uf->nin;
    for (int i = 0; i < n; i++) {
        int r = reg_of(p, &st->op[i]);
        if (ops[i].scalar) {
            args[i] = (char *)ops[i].val;
            steps[i] = 0;
        } else if (regs[r].rowc) {
            args[i] = regs[r].cur;
            if (ops[i].cast != NULL) {
                cd_cast(regs[r].dt, regs[r].cur, (cd_dtype)uf->loop[i], ops[i].cast, 1);
                args[i] = ops[i].cast;
            }
            steps[i] = 0;
        } else if (ops[i].cast != NULL) {
            cd_cast(regs[r].dt, regs[r].cur, (cd_dtype)uf->loop[i], ops[i].cast, m);
            args[i] = ops[i].cast;
            steps[i] = cd_dtype_itemsize[uf->loop[i]];
        } else {
            args[i] = regs[r].cur;
            steps[i] = regs[r].isz;
        }
    }
    args[n] = dst;
    steps[n] = cd_dtype_itemsize[uf->loop[n]];
    if ((uf->flags & CD_UF_CHECK_NEG_EXPONENT) && n == 2 &&
        cd_ufunc_any_negative(uf->loop[1], args[1], m, steps[1]))
        return cd_err_set(err, CD_EVALUE, "Integers to negative integer powers are not allowed.");
    dims[0] = (intptr_t)m;
    uf->fn(args, dims, steps, uf->data);
    return 0;
}

/* Smallest itemsize among the loop operands of the non-scalar steps. */
static int min_itemsize(const cd_fused_params *p, const int *scalar_reg)
{
    int m = 16;
    for (int s = 0; s < p->nsteps; s++) {
        const cd_fused_step *st = &p->step[s];
        if (scalar_reg[p->nin + s])
            continue;
        for (int i = 0; i <= st->uf.nin; i++)
            if (cd_dtype_itemsize[st->uf.loop[i]] < m)
                m = cd_dtype_itemsize[st->uf.loop[i]];
    }
    return m < 1 ? 1 : m;
}

/* ------------------------------------------------------------------ */
/* reductions in the same pass                                         */

typedef struct {
    int64_t count;                /* elements reduced */
    double s[2], c[2];            /* floating sums (real, imaginary) and their compensations */
    uint64_t isum;                /* integer sums, modulo 2^64 */
    int have;                     /* min/max: ext holds a value */
    _Alignas(16) unsigned char ext[16];
} racc;

static void racc_init(racc *a)
{
    memset(a, 0, sizeof(*a));
}

/* Neumaier's compensated addition of x to (s, c); infinities and NaN add plainly. */
static void neumaier(double *s, double *c, double x)
{
    double t;
    if (!__builtin_isfinite(*s) || !__builtin_isfinite(x)) {
        *s += x;
        return;
    }
    t = *s + x;
    if (__builtin_fabs(*s) >= __builtin_fabs(x))
        *c += (*s - t) + x;
    else
        *c += (x - t) + *s;
    *s = t;
}

/* m elements of register g as a contiguous buffer: its own, or scratch
 * filled from its single element (scalar and row-constant registers). */
static const char *materialize(const freg *g, int64_t m, char *scratch)
{
    if (!g->scalar && !g->rowc)
        return g->cur;
    memcpy(scratch, g->cur, (size_t)g->isz);
    replicate(scratch, g->isz, m);
    return scratch;
}

/* Copy the elements of v (isz bytes each) where mask is true to dst; the count. */
static int64_t compact(const char *v, const unsigned char *mask, int64_t m, int isz, char *dst)
{
    int64_t k = 0;
    switch (isz) {
#define CD_COMPACT(T)                                       \
    {                                                       \
        const T *src = (const T *)(const void *)v;          \
        T *out = (T *)(void *)dst;                          \
        for (int64_t i = 0; i < m; i++) {                   \
            out[k] = src[i];                                \
            k += mask[i] != 0;                              \
        }                                                   \
        return k;                                           \
    }
    case 1: CD_COMPACT(uint8_t)
    case 2: CD_COMPACT(uint16_t)
    case 4: CD_COMPACT(uint32_t)
    case 8: CD_COMPACT(uint64_t)
#undef CD_COMPACT
    default:
        for (int64_t i = 0; i < m; i++)
            if (mask[i])
                memcpy(dst + (k++) * isz, v + i * isz, (size_t)isz);
        return k;
    }
}

/* The hot loops of masked reductions are built twice, for the baseline
 * instruction set and for AVX2, and the loader picks one (GCC's
 * target_clones: an ifunc resolved once, from the CPU's features). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define CD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CD_CLONES
#endif

/* Sum of the n mask bytes (each 0 or 1). */
CD_CLONES static int64_t count_bytes(const unsigned char *m, int64_t n)
{
    int64_t c = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, m + i, 8);
        c += (int64_t)((w * 0x0101010101010101ull) >> 56);   /* bytes are 0/1: no carry */
    }
    for (; i < n; i++)
        c += m[i];
    return c;
}

/* Sum of the n bool bytes (0/1) where the mask (may be NULL) is set. */
CD_CLONES static int64_t count_masked(const unsigned char *v, const unsigned char *m, int64_t n)
{
    int64_t c = 0, i = 0;
    if (m == NULL)
        return count_bytes(v, n);
    for (; i + 8 <= n; i += 8) {
        uint64_t a, b;
        memcpy(&a, v + i, 8);
        memcpy(&b, m + i, 8);
        c += (int64_t)(((a & b) * 0x0101010101010101ull) >> 56);
    }
    for (; i < n; i++)
        c += v[i] & m[i];
    return c;
}

typedef double cd_v4d __attribute__((vector_size(32)));
typedef int64_t cd_v4i __attribute__((vector_size(32)));

/* Sum of the float64 values where the mask is set, in eight lanes (a
 * masked-out element adds +0.0, so inf and NaN outside the selection never
 * reach the sum): the reduction of x[mask] without compacting x[mask].
 * Each lane's mask comes from four mask bytes broadcast and tested. */
CD_CLONES static double masked_sum_f64(const double *v, const unsigned char *m, int64_t n)
{
    const cd_v4i lanes = {0xff, 0xff00, 0xff0000, 0xff000000};
    cd_v4d acc0 = {0.0, 0.0, 0.0, 0.0}, acc1 = {0.0, 0.0, 0.0, 0.0};
    double s = 0.0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint32_t u0, u1;
        cd_v4d x0, x1;
        cd_v4i b0, b1;
        memcpy(&u0, m + i, 4);
        memcpy(&u1, m + i + 4, 4);
        memcpy(&x0, v + i, sizeof(x0));
        memcpy(&x1, v + i + 4, sizeof(x1));
        b0 = (cd_v4i){u0, u0, u0, u0} & lanes;
        b1 = (cd_v4i){u1, u1, u1, u1} & lanes;
        acc0 += (cd_v4d)((cd_v4i)x0 & (b0 != 0));
        acc1 += (cd_v4d)((cd_v4i)x1 & (b1 != 0));
    }
    acc0 += acc1;
    for (; i < n; i++)
        if (m[i])
            s += v[i];
    return ((acc0[0] + acc0[1]) + (acc0[2] + acc0[3])) + s;
}

/* Reduce one block of the value register (masked) into the accumulator. */
static void reduce_block(const cd_fused_red *rd, const freg *regs, int64_t m, char *vbuf,
                         char *mbuf, char *cbuf, char *kbuf, racc *a)
{
    const freg *vg = &regs[rd->value];
    const char *v = materialize(vg, m, vbuf);
    int isz = cd_dtype_itemsize[rd->dt];
    int64_t k = m;
    char *args[3];
    intptr_t steps[3], dims[1];
    _Alignas(16) unsigned char blk[16];
    /* fast paths: counts of booleans, masked float64 sums */
    if (rd->kind == CD_RED_SUM && vg->dt == CD_BOOL && rd->dt == CD_INT64) {
        const unsigned char *mk = rd->mask >= 0
            ? (const unsigned char *)materialize(&regs[rd->mask], m, mbuf) : NULL;
        int64_t c = count_masked((const unsigned char *)v, mk, m);
        a->count += mk != NULL ? count_bytes(mk, m) : m;
        a->isum += (uint64_t)c;
        return;
    }
    if ((rd->kind == CD_RED_SUM || rd->kind == CD_RED_MEAN) && rd->mask >= 0 &&
        vg->dt == CD_FLOAT64 && rd->dt == CD_FLOAT64) {
        const unsigned char *mk = (const unsigned char *)materialize(&regs[rd->mask], m, mbuf);
        int64_t c = count_bytes(mk, m);
        if (c > 0) {
            a->count += c;
            neumaier(&a->s[0], &a->c[0], masked_sum_f64((const double *)(const void *)v, mk, m));
        }
        return;
    }
    if (vg->dt != (cd_dtype)rd->dt) {
        cd_cast(vg->dt, v, (cd_dtype)rd->dt, cbuf, m);
        v = cbuf;
    }
    if (rd->mask >= 0) {
        const unsigned char *mk = (const unsigned char *)materialize(&regs[rd->mask], m, mbuf);
        k = compact(v, mk, m, isz, kbuf);
        v = kbuf;
    }
    if (k == 0)
        return;
    a->count += k;
    steps[0] = 0;
    steps[1] = isz;
    steps[2] = 0;
    if (rd->kind == CD_RED_MIN || rd->kind == CD_RED_MAX) {
        if (!a->have) {
            memcpy(a->ext, v, (size_t)isz);
            a->have = 1;
            v += isz;
            k--;
        }
        if (k > 0) {
            args[0] = (char *)a->ext;
            args[1] = (char *)v;
            args[2] = (char *)a->ext;
            dims[0] = (intptr_t)k;
            rd->uf.fn(args, dims, steps, rd->uf.data);
        }
        return;
    }
    /* sums: the block's sum as NumPy reduces (first element, then the loop
     * over the rest: pairwise for floating types), added into the total */
    memcpy(blk, v, (size_t)isz);
    if (k > 1) {
        args[0] = (char *)blk;
        args[1] = (char *)v + isz;
        args[2] = (char *)blk;
        dims[0] = (intptr_t)(k - 1);
        rd->uf.fn(args, dims, steps, rd->uf.data);
    }
    switch (rd->dt) {
    case CD_FLOAT64: {
        double x;
        memcpy(&x, blk, 8);
        neumaier(&a->s[0], &a->c[0], x);
        break;
    }
    case CD_COMPLEX128: {
        double x[2];
        memcpy(x, blk, 16);
        neumaier(&a->s[0], &a->c[0], x[0]);
        neumaier(&a->s[1], &a->c[1], x[1]);
        break;
    }
    default: {   /* int64, uint64: wrapping */
        uint64_t x;
        memcpy(&x, blk, 8);
        a->isum += x;
        break;
    }
    }
}

static double racc_total(const racc *a, int i)
{
    double r = a->s[i] + a->c[i];
    return __builtin_isfinite(a->s[i]) ? r : a->s[i];
}

/* The partial chunk of a reduction (see fused.h); NULL and err set. */
static cd_chunk *racc_result(const cd_fused_red *rd, const racc *a, cd_err *err)
{
    _Alignas(16) unsigned char tot[16];
    int64_t shape[1];
    cd_chunk *r;
    memset(tot, 0, sizeof(tot));
    if (rd->kind == CD_RED_MIN || rd->kind == CD_RED_MAX) {
        shape[0] = a->have ? 1 : 0;
        r = cd_chunk_new((cd_dtype)rd->out_dt, 1, shape, err);
        if (r != NULL && a->have)
            cd_cast((cd_dtype)rd->dt, a->ext, (cd_dtype)rd->out_dt, r->data, 1);
        return r;
    }
    if (rd->dt == CD_FLOAT64) {
        double x = racc_total(a, 0);
        memcpy(tot, &x, 8);
    } else if (rd->dt == CD_COMPLEX128) {
        double x[2] = {racc_total(a, 0), racc_total(a, 1)};
        memcpy(tot, x, 16);
    } else {
        memcpy(tot, &a->isum, 8);
    }
    if (rd->kind == CD_RED_SUM) {
        r = cd_chunk_new((cd_dtype)rd->out_dt, 0, NULL, err);
        if (r != NULL)
            cd_cast((cd_dtype)rd->dt, tot, (cd_dtype)rd->out_dt, r->data, 1);
        return r;
    }
    /* mean: [count, sum] in the accumulation dtype (float64 or complex128) */
    shape[0] = 2;
    r = cd_chunk_new((cd_dtype)rd->out_dt, 1, shape, err);
    if (r != NULL) {
        _Alignas(16) unsigned char cnt[16];
        double c = (double)a->count;
        int osz = cd_dtype_itemsize[rd->out_dt];
        memset(cnt, 0, sizeof(cnt));
        memcpy(cnt, &c, 8);
        cd_cast(CD_FLOAT64, cnt, (cd_dtype)rd->out_dt, r->data, 1);
        cd_cast((cd_dtype)rd->dt, tot, (cd_dtype)rd->out_dt, (char *)r->data + osz, 1);
    }
    return r;
}

static int k_fused(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    cd_fused_params *p;
    int used[CD_FUSED_MAXIN] = {0}, scalar_in[CD_FUSED_MAXIN] = {0}, gathered[CD_FUSED_MAXIN] = {0};
    int pointable[CD_FUSED_MAXIN];
    int scalar_reg[NREG], nds[CD_FUSED_MAXIN];
    int64_t shapes[CD_FUSED_MAXIN][CD_MAXDIMS], cst[CD_FUSED_MAXIN][CD_MAXDIMS];
    int64_t shape[CD_MAXDIMS], B, size, rowlen = 0, cut = 0, lo = 0, hi = 0;
    int64_t dcst[CD_MAXDIMS];
    int ndim = 0, rc = 0, last, store, out_dt, red, walked = 0;
    cd_chunk *r = NULL, *dest = NULL;
    char *slab = NULL, *obuf = NULL, *ddata = NULL;
    char *vbuf = NULL, *mbuf = NULL, *cbuf = NULL, *kbuf = NULL;   /* reduction scratch */
    racc acc;
    freg *regs = NULL;
    fopnd *ops = NULL;   /* [nsteps][CD_UFUNC_MAXIN] */
    fview *views = NULL;
    fwalk w, dw;

    *out = NULL;
    p = read_params(ctx, err);
    if (p == NULL)
        return err != NULL && err->code ? err->code : CD_EINTERNAL;
    last = p->nsteps - 1;
    store = (p->flags & CD_FUSED_STORE) != 0;
    red = p->red.kind != CD_RED_NONE;
    out_dt = red ? p->red.out_dt : p->step[last].uf.loop[p->step[last].uf.nin];
    racc_init(&acc);
    if (nin != p->nin + store) {
        rc = cd_err_set(err, CD_ETYPE, "fused kernel takes %d input%s, got %d", p->nin + store,
                        p->nin + store == 1 ? "" : "s", nin);
        goto fail;
    }
    views = malloc((size_t)(p->nin + 1) * sizeof(fview));
    if (views == NULL)
        goto nomem;
    parse_views(p, views);   /* checked by read_params */
    nin = p->nin;
    mark_used(p, used);
    for (int i = 0; i < nin; i++) {
        const cd_chunk *c = in[i];
        const fview *v = &views[i];
        if (used[i] && c->dtype != (cd_dtype)p->in_dtype[i]) {
            rc = cd_err_set(err, CD_ETYPE, "fused kernel: input %d has dtype %s, expected %s", i,
                            cd_dtype_name[c->dtype], cd_dtype_name[p->in_dtype[i]]);
            goto fail;
        }
        nds[i] = c->ndim;
        {
            int64_t s64 = 1;
            for (int a = c->ndim - 1; a >= 0; a--) {
                cst[i][a] = s64;
                s64 *= c->shape[a];
            }
        }
        if (!v->has) {
            memcpy(shapes[i], c->shape, (size_t)c->ndim * sizeof(int64_t));
            continue;
        }
        if (v->ndim != c->ndim) {
            rc = cd_err_set(err, CD_EVALUE, "fused kernel: input %d is viewed with %d axes, "
                            "its chunk has %d", i, v->ndim, c->ndim);
            goto fail;
        }
        for (int a = 0; a < c->ndim; a++) {
            if (v->start[a] > c->shape[a] || v->shape[a] > c->shape[a] - v->start[a]) {
                rc = cd_err_set(err, CD_EVALUE, "fused kernel: the view of input %d does not "
                                "fit its chunk along axis %d (%lld + %lld > %lld)", i, a,
                                (long long)v->start[a], (long long)v->shape[a],
                                (long long)c->shape[a]);
                goto fail;
            }
            shapes[i][a] = v->shape[a];
        }
    }
    rc = broadcast(p, used, nds, (const int64_t (*)[CD_MAXDIMS])shapes, &ndim, shape, err);
    if (rc < 0)
        goto fail;
    size = 1;
    for (int a = 0; a < ndim; a++)
        size *= shape[a];
    if (store) {
        const fview *v = &views[nin];
        int64_t s64 = 1;
        dest = in[nin];
        if (dest->dtype != (cd_dtype)out_dt || dest->ndim != ndim || v->ndim != ndim) {
            rc = cd_err_set(err, CD_ETYPE, "fused kernel: the destination (%s, %d axes) does not "
                            "take a %s result of %d axes", cd_dtype_name[dest->dtype], dest->ndim,
                            cd_dtype_name[out_dt], ndim);
            goto fail;
        }
        for (int a = ndim - 1; a >= 0; a--) {
            if (v->start[a] > dest->shape[a] || shape[a] > dest->shape[a] - v->start[a]) {
                rc = cd_err_set(err, CD_EVALUE, "fused kernel: the result does not fit its "
                                "destination along axis %d (%lld + %lld > %lld)", a,
                                (long long)v->start[a], (long long)shape[a],
                                (long long)dest->shape[a]);
                goto fail;
            }
            dcst[a] = s64;
            s64 *= dest->shape[a];
        }
        ddata = dest->data;
        for (int a = 0; a < ndim; a++)
            ddata += v->start[a] * dcst[a] * cd_dtype_itemsize[out_dt];
        lo = p->span_lo < 0 ? 0 : p->span_lo > size ? size : p->span_lo;
        hi = p->span_hi < 0 || p->span_hi > size ? size : p->span_hi;
        if (hi < lo)
            hi = lo;
        r = cd_chunk_new(CD_INT64, 0, NULL, err);
    } else if (red) {
        lo = 0;
        hi = size;
    } else {
        lo = 0;
        hi = size;
        r = cd_chunk_new((cd_dtype)out_dt, ndim, shape, err);
    }
    if (r == NULL && !red) {
        rc = err != NULL && err->code ? err->code : CD_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < nin; i++) {
        int64_t n = 1;
        int whole = !views[i].has;
        for (int a = 0; a < nds[i]; a++)
            n *= shapes[i][a];
        if (views[i].has) {
            whole = 1;
            for (int a = 0; a < nds[i]; a++)
                whole &= views[i].start[a] == 0 && views[i].shape[a] == in[i]->shape[a];
        }
        scalar_in[i] = used[i] && n == 1;
        gathered[i] = used[i] && !scalar_in[i] && (n != size || !whole);
        pointable[i] = 0;
    }
    mark_scalar(p, scalar_in, scalar_reg);
    B = choose_block_from(red ? CD_FUSED_B0_RED : CD_FUSED_B0,
                          bytes_per_elem(p, scalar_reg, gathered) +
                          (store ? cd_dtype_itemsize[out_dt] : 0) +
                          (red ? 16 + 1 + 2 * cd_dtype_itemsize[p->red.dt] : 0));
    if (size < B)
        B = size < 1 ? 1 : size;

    regs = calloc((size_t)(nin + p->nsteps), sizeof(freg));
    ops = calloc((size_t)p->nsteps * CD_UFUNC_MAXIN, sizeof(fopnd));
    if (regs == NULL || ops == NULL)
        goto nomem;
    /* one slab for every scratch buffer, each 64-byte aligned */
    {
        int64_t total = 0, at = 0;
        for (int pass = 0; pass < 2; pass++) {
#define CD_TAKE(ptr, bytes)                                       \
    do {                                                          \
        int64_t nb_ = ((int64_t)(bytes) + 63) & ~(int64_t)63;     \
        if (pass == 1)                                            \
            (ptr) = slab + at;                                    \
        at += nb_;                                                \
    } while (0)
            at = 0;
            for (int i = 0; i < nin; i++) {
                int64_t off = 0;
                regs[i].dt = (cd_dtype)p->in_dtype[i];
                regs[i].isz = cd_dtype_itemsize[regs[i].dt];
                regs[i].scalar = scalar_in[i];
                regs[i].direct = used[i] && !scalar_in[i] && !gathered[i];
                if (views[i].has)
                    for (int a = 0; a < nds[i]; a++)
                        off += views[i].start[a] * cst[i][a];
                regs[i].data = (const char *)in[i]->data + off * regs[i].isz;
                if (gathered[i])
                    CD_TAKE(regs[i].buf, B * regs[i].isz);
            }
            for (int s = 0; s < p->nsteps; s++) {
                const cd_fused_step *st = &p->step[s];
                freg *g = &regs[nin + s];
                g->dt = (cd_dtype)st->uf.loop[st->uf.nin];
                g->isz = cd_dtype_itemsize[g->dt];
                g->scalar = scalar_reg[nin + s];
                if (!g->scalar && (s < last || red))
                    CD_TAKE(g->buf, B * g->isz);
                for (int i = 0; i < st->uf.nin; i++) {
                    fopnd *o = &ops[s * CD_UFUNC_MAXIN + i];
                    int rg = reg_of(p, &st->op[i]);
                    o->scalar = rg < 0 || scalar_reg[rg];
                    if (!o->scalar && regs[rg].dt != (cd_dtype)st->uf.loop[i])
                        CD_TAKE(o->cast, B * cd_dtype_itemsize[st->uf.loop[i]]);
                }
            }
            if (store)
                CD_TAKE(obuf, B * cd_dtype_itemsize[out_dt]);
            if (red) {
                CD_TAKE(vbuf, B * 16);
                CD_TAKE(mbuf, B);
                CD_TAKE(cbuf, B * cd_dtype_itemsize[p->red.dt]);
                CD_TAKE(kbuf, B * cd_dtype_itemsize[p->red.dt]);
            }
#undef CD_TAKE
            if (pass == 0) {
                total = at;
                if (total > 0) {
                    slab = aligned_alloc(64, (size_t)total);
                    if (slab == NULL)
                        goto nomem;
                }
            }
        }
    }

    /* scalar registers: inputs, then scalar steps (once), then scalar operands */
    for (int i = 0; i < nin; i++) {
        if (regs[i].scalar) {
            memcpy(regs[i].one, regs[i].data, (size_t)regs[i].isz);
            regs[i].cur = (char *)regs[i].one;
        }
    }
    for (int s = 0; s < p->nsteps; s++) {
        const cd_fused_step *st = &p->step[s];
        freg *g = &regs[nin + s];
        for (int i = 0; i < st->uf.nin; i++) {
            fopnd *o = &ops[s * CD_UFUNC_MAXIN + i];
            int rg = reg_of(p, &st->op[i]);
            if (rg < 0)
                memcpy(o->val, st->op[i].val, sizeof(o->val));
            else if (o->scalar)
                cd_cast(regs[rg].dt, regs[rg].one, (cd_dtype)st->uf.loop[i], o->val, 1);
        }
        if (g->scalar) {
            rc = run_step(st, regs, p, &ops[s * CD_UFUNC_MAXIN], 1, (char *)g->one, err);
            if (rc < 0)
                goto fail;
            g->cur = (char *)g->one;
        }
    }
    if (!red && regs[nin + last].scalar) {
        /* size is 0 or 1: every used input is size 1 */
        if (size > 0 && lo < hi)
            memcpy(store ? ddata : (char *)r->data, regs[nin + last].one,
                   (size_t)regs[nin + last].isz);
        goto done;
    }
    if (size == 0 || lo >= hi)
        goto done;

    plan_walk(p, used, nds, (const int64_t (*)[CD_MAXDIMS])shapes,
              (const int64_t (*)[CD_MAXDIMS])cst, ndim, shape, &w);
    if (store)
        plan_dest_walk(ndim, shape, dcst, &dw);
    walked = 1;
    /* blocks of memory-mapped files: start reading them in now */
    for (int i = 0; i < nin; i++) {
        if (!in[i]->mapped || !used[i] || regs[i].scalar || regs[i].direct)
            continue;
        {
            int64_t a = elem_offset(&w, i, lo), b = elem_offset(&w, i, hi - 1);
            cd_chunk_will_need(in[i], regs[i].data + a * regs[i].isz, (b + 1 - a) * regs[i].isz);
        }
    }
    {
        int inner = w.nd - 1;
        int64_t L = w.len[inner];
        if (w.nd > 1 && L >= CD_FUSED_LONGROW) {   /* long rows: see "Rows" above */
            rowlen = L;
            for (int i = 0; i < nin; i++)
                regs[i].rowc = gathered[i] && w.st[i][inner] == 0;
            for (int s = 0; s < p->nsteps; s++) {
                const cd_fused_step *st = &p->step[s];
                int rc_ = !regs[nin + s].scalar;
                for (int i = 0; i < st->uf.nin && rc_; i++) {
                    int rg = reg_of(p, &st->op[i]);
                    if (rg >= 0 && !regs[rg].scalar && !regs[rg].rowc)
                        rc_ = 0;
                }
                regs[nin + s].rowc = rc_ && (s < last || red);
            }
        }
        /* Views: walk row by row, pointing into the rows of viewed inputs and
         * writing straight into the destination's rows, when the rows are
         * long and hold a whole number of 64-byte vectors of every loop
         * operand (so the loops' vector bodies and tails fall as on
         * contiguous data); otherwise gather and scatter. */
        {
            int64_t q = 64 / min_itemsize(p, scalar_reg);
            int any = 0;
            int rows = w.nd > 1 && L >= CD_FUSED_ROWCUT && L % q == 0;
            for (int i = 0; i < nin; i++) {
                pointable[i] = gathered[i] && !regs[i].rowc && views[i].has &&
                               w.st[i][inner] == 1 && (w.nd == 1 || rows);
                any |= pointable[i] && w.nd > 1;
            }
            if (any)
                cut = L;
            if (store && dw.nd > 1) {
                int64_t Ld = dw.len[dw.nd - 1];
                if (Ld >= CD_FUSED_ROWCUT && Ld % q == 0 && (cut == 0 || cut % Ld == 0 ||
                                                             Ld % cut == 0))
                    cut = cut == 0 || Ld < cut ? Ld : cut;
            }
        }
    }
    for (int64_t b0 = lo; b0 < hi;) {
        int64_t m = hi - b0 < B ? hi - b0 : B;
        char *odst;
        if (rowlen > 0 && b0 / rowlen != (b0 + m - 1) / rowlen)
            m = rowlen - b0 % rowlen;   /* blocks do not cross rows */
        if (cut > 0 && b0 / cut != (b0 + m - 1) / cut)
            m = cut - b0 % cut;
        if (cd_cancelled(ctx)) {
            rc = cd_err_set(err, CD_ECANCEL, "cancelled");
            goto fail;
        }
        for (int i = 0; i < nin; i++) {
            if (regs[i].direct) {
                regs[i].cur = (char *)regs[i].data + b0 * regs[i].isz;
            } else if (regs[i].rowc ||
                       (pointable[i] && (b0 % w.len[w.nd - 1]) + m <= w.len[w.nd - 1])) {
                regs[i].cur = (char *)regs[i].data + elem_offset(&w, i, b0) * regs[i].isz;
            } else if (regs[i].buf != NULL) {
                gather(&w, i, regs[i].data, regs[i].isz, b0, m, regs[i].buf);
                regs[i].cur = regs[i].buf;
            }
        }
        if (red) {
            odst = NULL;
        } else if (!store) {
            odst = (char *)r->data + b0 * regs[nin + last].isz;
        } else if (dw.st[0][dw.nd - 1] == 1 &&
                   (b0 % dw.len[dw.nd - 1]) + m <= dw.len[dw.nd - 1]) {
            odst = ddata + elem_offset(&dw, 0, b0) * regs[nin + last].isz;
        } else {
            odst = obuf;
        }
        for (int s = 0; s < p->nsteps; s++) {
            freg *g = &regs[nin + s];
            char *dst;
            if (g->scalar)
                continue;
            dst = s == last && !red ? odst : g->buf;
            rc = run_step(&p->step[s], regs, p, &ops[s * CD_UFUNC_MAXIN], g->rowc ? 1 : m, dst,
                          err);
            if (rc < 0)
                goto fail;
            g->cur = dst;
        }
        if (store && odst == obuf)
            scatter(&dw, 0, ddata, regs[nin + last].isz, b0, m, obuf);
        if (red)
            reduce_block(&p->red, regs, m, vbuf, mbuf, cbuf, kbuf, &acc);
        b0 += m;
    }
done:
    if (walked) {
        /* pages of memory-mapped files this task read or wrote leave the
         * process (chunk.h: cd_chunk_drop_pages) */
        for (int i = 0; i < nin; i++) {
            if (!in[i]->mapped || !used[i] || regs[i].scalar || regs[i].direct)
                continue;
            {
                int64_t a = elem_offset(&w, i, lo), b = elem_offset(&w, i, hi - 1);
                cd_chunk_drop_pages(in[i], regs[i].data + a * regs[i].isz,
                                    (b + 1 - a) * regs[i].isz);
            }
        }
        if (store && dest->mapped) {
            int osz = cd_dtype_itemsize[out_dt];
            int64_t a = elem_offset(&dw, 0, lo), b = elem_offset(&dw, 0, hi - 1);
            cd_chunk_drop_pages(dest, ddata + a * osz, (b + 1 - a) * osz);
        }
    }
    if (red) {
        r = racc_result(&p->red, &acc, err);
        if (r == NULL) {
            rc = err != NULL && err->code ? err->code : CD_ENOMEM;
            goto fail;
        }
    }
    if (store)
        *(int64_t *)r->data = hi - lo;
    free(slab);
    free(regs);
    free(ops);
    free(views);
    free(p);
    *out = r;
    return 0;
nomem:
    rc = cd_err_set(err, CD_ENOMEM, "fused kernel: out of memory");
fail:
    free(slab);
    free(regs);
    free(ops);
    free(views);
    free(p);
    if (r != NULL)
        cd_chunk_decref(r);
    return rc;
}

static int64_t fused_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    cd_fused_params *p = read_params(ctx, NULL);
    int used[CD_FUSED_MAXIN], nds[CD_FUSED_MAXIN];
    int64_t shapes[CD_FUSED_MAXIN][CD_MAXDIMS];
    int64_t shape[CD_MAXDIMS], n = 1;
    int ndim = 0, last;
    fview views[CD_FUSED_MAXIN + 1];
    if (p == NULL)
        return 0;
    if ((p->flags & CD_FUSED_STORE) || p->red.kind != CD_RED_NONE) {
        free(p);
        return 32;
    }
    mark_used(p, used);
    last = p->nsteps - 1;
    if (nin != p->nin) {
        free(p);
        return 0;
    }
    parse_views(p, views);
    for (int i = 0; i < nin; i++) {
        const int64_t *src = views[i].has ? views[i].shape : in[i]->shape;
        nds[i] = in[i]->ndim;
        if (views[i].has && views[i].ndim != in[i]->ndim)
            used[i] = 0;
        memcpy(shapes[i], src, (size_t)nds[i] * sizeof(int64_t));
    }
    if (broadcast(p, used, nds, (const int64_t (*)[CD_MAXDIMS])shapes, &ndim, shape, NULL) < 0) {
        free(p);
        return 0;
    }
    for (int a = 0; a < ndim; a++)
        if (__builtin_mul_overflow(n, shape[a], &n))
            n = INT64_MAX / 16;
    n *= cd_dtype_itemsize[p->step[last].uf.loop[p->step[last].uf.nin]];
    free(p);
    return n;
}

static int64_t fused_work_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    cd_fused_params *p = read_params(ctx, NULL);
    int64_t b;
    CD_UNUSED(nin);
    CD_UNUSED(in);
    if (p == NULL)
        return 0;
    {
        int none[CD_FUSED_MAXIN] = {0}, all[CD_FUSED_MAXIN], sc[NREG];
        int64_t bpe;
        for (int i = 0; i < CD_FUSED_MAXIN; i++)
            all[i] = 1;
        mark_scalar(p, none, sc);
        bpe = bytes_per_elem(p, sc, all);
        b = choose_block(bpe) * bpe;
    }
    free(p);
    return b;
}

const cd_kernel_desc cd_fused_desc = {
    "fused",
    "fused(*inputs): a chain of NumPy ufunc inner loops evaluated in one blocked pass "
    "(made by cdask._core.fused_kernel).",
    0, CD_FUSED_MAXIN + 1, k_fused, fused_out_bytes, fused_work_bytes, CD_KF_FPE,
};
