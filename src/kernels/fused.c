/*
 * fused.c - the "fused" kernel (interface and program layout: fused.h): a
 * chain of NumPy's own elementwise inner loops run over a chunk in one pass,
 * block by block, on a C worker without the GIL.  Pure C: no Python here.
 *
 * The engine.  cd_fused_run runs a program for both elementwise kernels:
 * the "fused" kernel (k_fused, at the end of this file: its inputs, views
 * and store come from its params) and the "ufunc" kernel (ufunc.c: one
 * ufunc as a program of one step).  A run goes through these phases, each
 * one function, in this order: ev_shape (used inputs, broadcast shape),
 * ev_output (the result chunk, or the store's box and span), ev_registers
 * (scalar, direct and gathered inputs; scalar steps), ev_plan (the walk,
 * its rows, the block size), ev_scratch (one slab for every buffer),
 * ev_scalars (scalar registers, once), then ev_compute: per block,
 * ev_gather (inputs pointed at or gathered), ev_steps (casts and loops,
 * run_step), the store's scatter and reduce_block; finally ev_result.
 * What differs between the callers is a cd_fused_style (fused.h): error
 * wording, block size policy, page hints.
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
 *     elements - cast on the way, into the cast buffer of its reader, when
 *     one operand alone reads it and casts it.  Then each step in program order: an operand whose register
 *     dtype is not the loop's dtype is cast into a scratch buffer (cd_cast,
 *     the "ufunc" kernel's casts, i.e. NumPy's astype); the loop is called on
 *     the B contiguous elements and writes the step's own scratch buffer -
 *     the last step writes straight into the output chunk.  No chunk-sized
 *     temporary is ever allocated: scratch is O(B * registers).
 *   - Rows.  Where the output has two or more merged axes and the inner one
 *     is at least 8192 elements long (NumPy's buffer size), blocks do not
 *     cross rows, and an input that is broadcast along the row, with every
 *     step computed only from such registers, is "row-constant": one
 *     element per block, computed by a one-element loop call and passed to
 *     later loops with stride 0, the way NumPy passes an operand broadcast
 *     along its inner loop; an input broadcast along other axes is pointed
 *     into its rows (no copy).  Shorter rows are gathered into contiguous
 *     blocks, as NumPy's buffered iterator does (the "ufunc" kernel's
 *     style: blocks of whole rows).  Matching NumPy's call pattern matters
 *     for the few results that depend on it, such as which NaN's payload
 *     survives when both operands are NaN.
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
 *     where they fall on NumPy's whole-array calls.  (The "ufunc" kernel's
 *     style keeps B at 8192, or whole short rows: see ufunc.c.)
 *   - Floating-point errors are raised by the loops (and the casts) into
 *     the thread's flags; the kernel is CD_KF_FPE so its callers clear and
 *     read them.  Integer power loops with a negative exponent are refused
 *     with NumPy's message before the call (CD_UF_CHECK_NEG_EXPONENT).
 *   - Cancellation is polled between blocks.
 */
#include "kernels/fused.h"
#include "kernels/broadcast.h"
#include "kernels/half.h"

#include <fenv.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
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
            st->uf.nout != 1 || st->uf.fn == NULL || !cd_ufunc_via_ok(&st->uf))
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

/* ------------------------------------------------------------------ */
/* gathering broadcast inputs                                          */

typedef struct {
    int nd;                       /* merged axes, >= 1 */
    int64_t len[CD_MAXDIMS];
    int64_t st[CD_FUSED_MAXIN + 1][CD_MAXDIMS];   /* element strides; [nin]: output */
} fwalk;

/* Element strides of each used input over the output's axes (0 where it
 * broadcasts; x[i].cst: the strides of its chunk along its own axes);
 * length-1 axes dropped, adjacent axes merged where every operand's
 * strides chain.  Operand nin is the output. */
static void plan_walk(int nin, const int *used, const cd_fused_input *x, int ndim,
                      const int64_t *shape, fwalk *w)
{
    int64_t st[CD_FUSED_MAXIN + 1][CD_MAXDIMS];
    for (int i = 0; i < nin; i++) {
        if (used[i])
            cd_broadcast_strides(ndim, x[i].ndim, x[i].shape, x[i].cst, st[i]);
        else
            for (int a = 0; a < ndim; a++)
                st[i][a] = 0;
    }
    cd_broadcast_strides(ndim, ndim, shape, NULL, st[nin]);
    w->nd = cd_merge_axes(nin + 1, ndim, shape, (const int64_t (*)[CD_MAXDIMS])st, w->len, w->st);
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

/* What walk_copy does with each run of elements. */
enum { WC_GATHER, WC_SCATTER, WC_GATHER_CAST };

/*
 * Copy between the contiguous buffer buf and output elements [start,
 * start + m) of operand `op` of the walk (data at base, isz bytes per
 * element): WC_GATHER gathers (operand -> buf; a zero inner stride
 * replicates one element), WC_GATHER_CAST too, casting from dtype `from` to
 * `to` (bsz bytes per element of buf) on the way, WC_SCATTER scatters (buf
 * -> operand, which has no zero strides).  Always inlined into gather,
 * gather_cast and scatter, so each is compiled for its own mode.
 */
static inline __attribute__((always_inline)) void
walk_copy(const fwalk *w, int op, char *base, int isz, int64_t start, int64_t m, char *buf,
          int mode, cd_dtype from, cd_dtype to, int bsz)
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
        char *at = base + off * isz;
        if (run > m)
            run = m;
        if (mode == WC_SCATTER) {
            if (s == 1)
                memcpy(at, buf, (size_t)(run * isz));
            else
                for (int64_t j = 0; j < run; j++)
                    memcpy(at + j * s * isz, buf + j * isz, (size_t)isz);
        } else if (s == 1) {
            if (mode == WC_GATHER_CAST)
                cd_cast(from, at, to, buf, run);
            else
                memcpy(buf, at, (size_t)(run * isz));
        } else if (s == 0) {
            if (mode == WC_GATHER_CAST)
                cd_cast(from, at, to, buf, 1);
            else
                memcpy(buf, at, (size_t)isz);
            replicate(buf, bsz, run);
        } else {
            for (int64_t j = 0; j < run; j++) {
                if (mode == WC_GATHER_CAST)
                    cd_cast(from, at + j * s * isz, to, buf + j * bsz, 1);
                else
                    memcpy(buf + j * isz, at + j * s * isz, (size_t)isz);
            }
        }
        buf += run * bsz;
        m -= run;
        walk_advance(w, op, idx, &off, run);
    }
}

/* Output elements [start, start + m) of broadcast operand `op` (data at src,
 * isz bytes per element) into the contiguous buffer dst. */
static void gather(const fwalk *w, int op, const char *src, int isz, int64_t start, int64_t m,
                   char *dst)
{
    walk_copy(w, op, (char *)src, isz, start, m, dst, WC_GATHER, CD_BOOL, CD_BOOL, isz);
}

/* The same, cast from dtype `from` (the operand's) to `to` (dst's). */
static void gather_cast(const fwalk *w, int op, const char *src, cd_dtype from, int64_t start,
                        int64_t m, cd_dtype to, char *dst)
{
    walk_copy(w, op, (char *)src, cd_dtype_itemsize[from], start, m, dst, WC_GATHER_CAST, from,
              to, cd_dtype_itemsize[to]);
}

/* The contiguous buffer src (m output elements from `start`) into operand
 * `op` of the walk (data at dst, isz bytes per element, no zero strides). */
static void scatter(const fwalk *w, int op, char *dst, int isz, int64_t start, int64_t m,
                    const char *src)
{
    walk_copy(w, op, dst, isz, start, m, (char *)src, WC_SCATTER, CD_BOOL, CD_BOOL, isz);
}

/* ------------------------------------------------------------------ */
/* registers and steps                                                 */

typedef struct fopnd fopnd;   /* a step's operand (below) */

typedef struct {
    cd_dtype dt;
    int isz;
    int scalar;                   /* one element, stride 0 */
    int direct;                   /* input of the output's shape: points into its chunk */
    int rowc;                     /* long rows only: constant along the row, one element
                                     passed with stride 0 (see "Rows" above) */
    int rowptr;                   /* long rows only: broadcast input pointed into its rows */
    fopnd *gcast;                     /* gathered input read by this one operand only, which
                                     casts it: gathered straight into its cast buffer */
    const char *data;             /* input: chunk data */
    char *buf;                    /* scratch of B elements (gathered input, step result) */
    char *cur;                    /* the register's elements for the current block */
    _Alignas(16) unsigned char one[16];   /* scalar value */
} freg;

struct fopnd {
    int reg;                      /* the register read (reg_of), -1 for a constant */
    cd_dtype dt;                  /* the loop's dtype for it */
    char *cast;                   /* scratch of B elements in the loop dtype, or NULL */
    int precast;                  /* cast holds the block already (gathered into it) */
    int scalar;                   /* operand passed with stride 0 from val */
    _Alignas(16) unsigned char val[16];
};


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

/* Call step s's loop on m elements into `dst`; 0 or CD_EVALUE.  Scalar
 * operands are passed with stride 0, as NumPy passes a 0-d or broadcast
 * operand.  With unit set (a scalar step, m 1, of a block that is one
 * element of a larger array) each operand is instead replicated into a
 * contiguous run of CD_UNIT_RUN elements and element 0 of the result kept:
 * the loop takes its vector path, as NumPy's call on the whole array does
 * for almost all of its elements (NumPy's vector paths and scalar tails
 * differ for some special values: fmax of a signalling NaN, the sign of
 * arccos(inf)'s NaN). */
#define CD_UNIT_RUN 16
static int run_step_as(const cd_fused_step *st, const freg *regs, const fopnd *ops, int64_t m,
                       char *dst, int unit, cd_err *err)
{
    const cd_ufunc_params *uf = &st->uf;
    char *args[CD_UFUNC_MAXIN + 1];
    intptr_t steps[CD_UFUNC_MAXIN + 1], dims[1];
    int n = uf->nin;
    _Alignas(64) unsigned char rep[CD_UFUNC_MAXIN][CD_UNIT_RUN * 16], res[CD_UNIT_RUN * 16];
    for (int i = 0; i < n; i++) {
        const fopnd *o = &ops[i];
        const freg *g;
        if (o->scalar && unit) {
            int isz = cd_dtype_itemsize[o->dt];
            for (int k = 0; k < CD_UNIT_RUN; k++)
                memcpy(rep[i] + k * isz, o->val, (size_t)isz);
            args[i] = (char *)rep[i];
            steps[i] = isz;
            continue;
        }
        if (o->scalar) {
            args[i] = (char *)o->val;
            steps[i] = 0;
            continue;
        }
        g = &regs[o->reg];
        if (o->cast == NULL) {
            args[i] = g->cur;
            steps[i] = g->rowc ? 0 : g->isz;
            continue;
        }
        if (!o->precast)   /* (a row-constant register: its one element) */
            cd_cast(g->dt, g->cur, o->dt, o->cast, g->rowc ? 1 : m);
        args[i] = o->cast;
        steps[i] = g->rowc ? 0 : cd_dtype_itemsize[o->dt];
    }
    if (unit)
        m = CD_UNIT_RUN;
    args[n] = unit ? (char *)res : dst;
    steps[n] = cd_dtype_itemsize[uf->loop[n]];
    if ((uf->flags & CD_UF_CHECK_NEG_EXPONENT) && n == 2 &&
        cd_ufunc_any_negative(uf->loop[1], args[1], m, steps[1]))
        return cd_err_set(err, CD_EVALUE, "Integers to negative integer powers are not allowed.");
    dims[0] = (intptr_t)m;
    if ((uf->flags & CD_UF_HALF_VIA_F32) && cd_half_hw())
        cd_half_via_f32(uf, args, dims, steps);   /* NumPy's bits, in float32 loops */
    else
        uf->fn(args, dims, steps, uf->data);
    if (unit)
        memcpy(dst, res, (size_t)steps[n]);
    return 0;
}

/* ------------------------------------------------------------------ */
/* float16 chains as tables                                            */

/*
 * A float16 register has 65536 possible values, so a chain of steps that
 * reads it and nothing else but constants - ((x + 1) * 2) ** 3 - is a
 * function of those 16 bits.  Where a run is long enough, the chain is
 * evaluated once on all 65536 values with the engine's own run_step (the
 * same loops, casts and float32 paths as block by block: the same bits),
 * and each block then becomes one lookup per element.  The floating-point
 * flags the chain raises are recorded per value (each value the block pass
 * flagged is run again alone) and raised for the values a block meets, so
 * NumPy's warnings are the ones it would give.  Tables are kept for the
 * life of the process, keyed by the chain's loops, operand dtypes and
 * constants (NumPy's loop pointers do not move); at most LUT_CACHE of them.
 */
#define LUT_N 65536                        /* values of a float16 */
#define LUT_MAXCHAIN 16                    /* steps one table replaces */
#define LUT_CACHE 32                       /* tables kept */
#define LUT_MIN ((int64_t)1 << 16)         /* elements a run needs to build one */
#define LUT_BLK 1024                       /* values per block of the build */
#define LUT_FLAGS (FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW)

typedef struct {
    cd_ufunc_loop fn, fn32;
    void *data, *data32;
    uint32_t flags;
    int32_t nin, var;                      /* var: the operand reading the chain */
    int32_t loop[CD_UFUNC_MAXIN + 1];
    int32_t var_dt;                        /* dtype of the register it reads */
    unsigned char val[CD_UFUNC_MAXIN][16]; /* the constants, in their loop dtypes */
} lut_step;

typedef struct {
    int32_t n, hw;                         /* steps; cd_half_hw() when built */
    lut_step st[LUT_MAXCHAIN];
} lut_key;

typedef struct {
    lut_key key;
    int osz, anyflag;
    char *val;                             /* LUT_N results of osz bytes */
    unsigned char *flag;                   /* LUT_N flag sets (FE_* bits) */
} flut;

static pthread_mutex_t lut_mu = PTHREAD_MUTEX_INITIALIZER;
static flut *lut_cache[LUT_CACHE];
static int lut_n;
static int lut_off;   /* tests: 1 runs every chain step by step */

void cd_fused_set_tables(int on)
{
    __atomic_store_n(&lut_off, !on, __ATOMIC_RELAXED);
}

int cd_fused_tables(int *cached, int *most)
{
    if (most != NULL)
        *most = LUT_CACHE;
    if (cached != NULL) {
        pthread_mutex_lock(&lut_mu);
        *cached = lut_n;
        pthread_mutex_unlock(&lut_mu);
    }
    return !__atomic_load_n(&lut_off, __ATOMIC_RELAXED);
}

/* dst[i] = the table's result for the float16 bits src[i]; its flags raised.
 * One loop per result size, with and without the flags (LUT_APPLY_n). */
#define LUT_APPLY(N, T)                                                              \
    static unsigned lut_apply_##N(const flut *t, const uint16_t *x, int64_t m, char *dst) \
    {                                                                                \
        const T *v = (const T *)(const void *)t->val;                                \
        T *o = (T *)(void *)dst;                                                     \
        unsigned f = 0;                                                              \
        if (!t->anyflag) {                                                           \
            for (int64_t i = 0; i < m; i++)                                          \
                o[i] = v[x[i]];                                                      \
            return 0;                                                                \
        }                                                                            \
        for (int64_t i = 0; i < m; i++) {                                            \
            o[i] = v[x[i]];                                                          \
            f |= t->flag[x[i]];                                                      \
        }                                                                            \
        return f;                                                                    \
    }
LUT_APPLY(1, uint8_t)
LUT_APPLY(2, uint16_t)
LUT_APPLY(4, uint32_t)
LUT_APPLY(8, uint64_t)

static void lut_apply(const flut *t, const char *src, int64_t m, char *dst)
{
    const uint16_t *x = (const uint16_t *)(const void *)src;
    unsigned f = 0;
    switch (t->osz) {
    case 1:
        f = lut_apply_1(t, x, m, dst);
        break;
    case 2:
        f = lut_apply_2(t, x, m, dst);
        break;
    case 4:
        f = lut_apply_4(t, x, m, dst);
        break;
    case 8:
        f = lut_apply_8(t, x, m, dst);
        break;
    default:
        for (int64_t i = 0; i < m; i++) {
            memcpy(dst + i * t->osz, t->val + (int64_t)x[i] * t->osz, (size_t)t->osz);
            f |= t->flag[x[i]];
        }
    }
    if (f)
        feraiseexcept((int)f);
}

static int run_step(const cd_fused_step *st, const freg *regs, const fopnd *ops, int64_t m,
                    char *dst, cd_err *err)
{
    return run_step_as(st, regs, ops, m, dst, 0, err);
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

/* Copy the elements of v where mask is true to dst; the count.  One function
 * per element size (compact_1 ... compact_8), and compact() for any size. */
#define CD_DEF_COMPACT(N, T)                                                        \
    static int64_t compact_##N(const char *v, const unsigned char *mask, int64_t m,  \
                               char *dst)                                           \
    {                                                                               \
        const T *src = (const T *)(const void *)v;                                  \
        T *out = (T *)(void *)dst;                                                  \
        int64_t k = 0;                                                              \
        for (int64_t i = 0; i < m; i++) {                                           \
            out[k] = src[i];                                                        \
            k += mask[i] != 0;                                                      \
        }                                                                           \
        return k;                                                                   \
    }
CD_DEF_COMPACT(1, uint8_t)
CD_DEF_COMPACT(2, uint16_t)
CD_DEF_COMPACT(4, uint32_t)
CD_DEF_COMPACT(8, uint64_t)
#undef CD_DEF_COMPACT

static int64_t compact(const char *v, const unsigned char *mask, int64_t m, int isz, char *dst)
{
    int64_t k = 0;
    switch (isz) {
    case 1: return compact_1(v, mask, m, dst);
    case 2: return compact_2(v, mask, m, dst);
    case 4: return compact_4(v, mask, m, dst);
    case 8: return compact_8(v, mask, m, dst);
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

/* ------------------------------------------------------------------ */
/* the engine: one run of a program (cd_fused_run)                     */

/* Everything one run works with, filled phase by phase (cd_fused_run
 * calls the phases in the order they appear below). */
typedef struct {
    /* given */
    const cd_kctx *ctx;
    const cd_fused_params *p;
    const cd_fused_input *in;     /* [nin] */
    const cd_fused_dest *dest;    /* the store's destination, or NULL */
    const cd_fused_style *style;
    cd_err *err;
    int nin, last, red;           /* inputs, index of the last step, a reduction? */
    int out_dt;                   /* dtype of the result (a reduction: of its partial) */
    /* ev_shape */
    int used[CD_FUSED_MAXIN];
    int ndim;
    int64_t shape[CD_MAXDIMS], size;
    /* ev_output */
    cd_chunk *r;                  /* the result: a new chunk, the store's count (a
                                     reduction's partial is made by ev_result) */
    char *ddata;                  /* store: first element of the destination's box */
    int64_t dcst[CD_MAXDIMS];     /* store: element strides of the destination */
    int64_t lo, hi;               /* output elements computed (flat, C order) */
    /* ev_registers, ev_plan */
    int scalar_in[CD_FUSED_MAXIN], gathered[CD_FUSED_MAXIN], pointable[CD_FUSED_MAXIN];
    int scalar_reg[NREG];
    int any_viewed;               /* an input is read through a view */
    int any_gathered;             /* an input is gathered (broadcast, or a part viewed) */
    int scratch;                  /* some buffer may be needed (else ev_scratch has none
                                     to hand out): a gathered input, a cast operand, an
                                     intermediate step, a store or a reduction */
    int nread[CD_FUSED_MAXIN];    /* readers of each input (operands, the reduction) */
    fopnd *reader[CD_FUSED_MAXIN];   /* its last operand reader */
    freg regs[NREG];              /* [nin + nsteps] used */
    fopnd ops[CD_FUSED_MAXSTEPS * CD_UFUNC_MAXIN];   /* [step][operand] */
    int have_walk;                /* there are elements to compute; w (and dw, for a
                                     store) are planned (w: see ev_plan) */
    fwalk w, dw;                  /* inputs and output; output and destination box */
    int64_t B, rowlen, cut;       /* block; blocks end at multiples of rowlen and cut (0: no) */
    /* ev_scratch */
    char *slab;                   /* every scratch buffer */
    char *obuf;                   /* store: the block before its scatter */
    char *vbuf, *mbuf, *cbuf, *kbuf;   /* reduction scratch (reduce_block) */
    racc acc;
    /* ev_luts */
    const flut *lut[CD_FUSED_MAXSTEPS];   /* a chain's last step: its table, */
    int lut_src[CD_FUSED_MAXSTEPS];       /* and the float16 register it reads */
    unsigned char lut_skip[CD_FUSED_MAXSTEPS];   /* inside a chain run as a table */
} feval;

/* err set to code with message "<what>[ '<name>']: <fmt ...>". */
static int ev_err(const feval *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ev_err(const feval *e, int code, const char *fmt, ...)
{
    char msg[CD_ERRMSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (e->style->name != NULL)
        return cd_err_set(e->err, code, "%s '%s': %s", e->style->what, e->style->name, msg);
    return cd_err_set(e->err, code, "%s: %s", e->style->what, msg);
}

/* Setup: which inputs the program reads; NumPy's broadcast of their shapes
 * is the output's shape. */
static int ev_shape(feval *e)
{
    int nds[CD_FUSED_MAXIN];
    const int64_t *sp[CD_FUSED_MAXIN];
    mark_used(e->p, e->used);
    for (int i = 0; i < e->nin; i++) {
        nds[i] = e->in[i].ndim;
        sp[i] = e->in[i].shape;
    }
    if (cd_broadcast_shape(e->nin, e->used, nds, sp, &e->ndim, e->shape) < 0) {
        char buf[CD_ERRMSG];
        cd_fmt_shapes(buf, sizeof(buf), e->nin, e->used, nds, sp, e->style->trailing_space);
        return ev_err(e, CD_EVALUE, "operands could not be broadcast together with shapes %s",
                      buf);
    }
    e->size = 1;
    for (int a = 0; a < e->ndim; a++)
        e->size *= e->shape[a];
    return 0;
}

/* Setup: where the result goes - a new chunk; for a store, the box of the
 * destination (checked to take it) and the span of elements to compute;
 * for a reduction nothing yet (ev_result makes the partial). */
static int ev_output(feval *e)
{
    e->r = NULL;
    e->ddata = NULL;
    e->lo = 0;
    e->hi = e->size;
    if (e->dest != NULL) {
        const cd_chunk *d = e->dest->chunk;
        int64_t s64 = 1, span_lo = e->p->span_lo, span_hi = e->p->span_hi;
        if (d->dtype != (cd_dtype)e->out_dt || d->ndim != e->ndim || e->dest->ndim != e->ndim)
            return ev_err(e, CD_ETYPE, "the destination (%s, %d axes) does not take a %s result "
                          "of %d axes", cd_dtype_name[d->dtype], d->ndim,
                          cd_dtype_name[e->out_dt], e->ndim);
        for (int a = e->ndim - 1; a >= 0; a--) {
            const int64_t *start = e->dest->start;
            if (start[a] > d->shape[a] || e->shape[a] > d->shape[a] - start[a])
                return ev_err(e, CD_EVALUE, "the result does not fit its destination along "
                              "axis %d (%lld + %lld > %lld)", a, (long long)start[a],
                              (long long)e->shape[a], (long long)d->shape[a]);
            e->dcst[a] = s64;
            s64 *= d->shape[a];
        }
        e->ddata = d->data;
        for (int a = 0; a < e->ndim; a++)
            e->ddata += e->dest->start[a] * e->dcst[a] * cd_dtype_itemsize[e->out_dt];
        e->lo = span_lo < 0 ? 0 : span_lo > e->size ? e->size : span_lo;
        e->hi = span_hi < 0 || span_hi > e->size ? e->size : span_hi;
        if (e->hi < e->lo)
            e->hi = e->lo;
        e->r = cd_chunk_new(CD_INT64, 0, NULL, e->err);
    } else if (!e->red) {
        e->r = cd_chunk_new((cd_dtype)e->out_dt, e->ndim, e->shape, e->err);
    }
    if (e->r == NULL && !e->red)
        return e->err != NULL && e->err->code ? e->err->code : CD_ENOMEM;
    return 0;
}

/* Registers: scalar inputs (one element, copied out now), gathered ones
 * (broadcast, or read through a view of part of their chunk), direct ones
 * (pointed into); steps, scalar when all their operands are (mark_scalar's
 * rule); every step operand's register (scalar: passed from a value). */
static void ev_registers(feval *e)
{
    const cd_fused_params *p = e->p;
    const int nin = e->nin;
    const int64_t size = e->size;
    int any_viewed = 0, any_gathered = 0, any_cast = 0;
    for (int i = 0; i < nin; i++) {
        const cd_fused_input *x = &e->in[i];
        freg *g = &e->regs[i];
        int64_t n = 1;
        int used = e->used[i], sc, ga;
        for (int a = 0; a < x->ndim; a++)
            n *= x->shape[a];
        sc = used && n == 1;
        ga = used && !sc && (n != size || !x->whole);
        e->scalar_in[i] = e->scalar_reg[i] = sc;
        e->gathered[i] = ga;
        e->pointable[i] = 0;
        g->dt = x->dt;
        g->isz = cd_dtype_itemsize[x->dt];
        g->scalar = sc;
        g->direct = used && !sc && !ga;
        g->rowc = g->rowptr = 0;
        g->gcast = NULL;
        g->data = x->data;
        g->buf = g->cur = NULL;
        any_gathered |= ga;
        if (sc) {
            memcpy(g->one, x->data, (size_t)g->isz);
            g->cur = (char *)g->one;
        }
        any_viewed |= x->viewed;
        e->nread[i] = 0;
        e->reader[i] = NULL;
    }
    e->any_viewed = any_viewed;
    e->any_gathered = any_gathered;
    if (e->red) {
        if (p->red.value < nin)
            e->nread[p->red.value]++;
        if (p->red.mask >= 0 && p->red.mask < nin)
            e->nread[p->red.mask]++;
    }
    for (int s = 0; s < p->nsteps; s++) {
        const cd_fused_step *st = &p->step[s];
        fopnd *ops = &e->ops[s * CD_UFUNC_MAXIN];
        int sc = 1;
        for (int i = 0; i < st->uf.nin; i++) {
            int rg = reg_of(p, &st->op[i]);
            ops[i].reg = rg;
            ops[i].dt = (cd_dtype)st->uf.loop[i];
            ops[i].cast = NULL;
            ops[i].precast = 0;
            ops[i].scalar = rg < 0 || e->scalar_reg[rg];
            sc &= ops[i].scalar;
            any_cast |= !ops[i].scalar && e->regs[rg].dt != ops[i].dt;
            if (rg >= 0 && rg < nin) {
                e->nread[rg]++;
                e->reader[rg] = &ops[i];
            }
        }
        e->scalar_reg[nin + s] = sc;
        e->regs[nin + s] = (freg){.dt = (cd_dtype)st->uf.loop[st->uf.nin],
                                  .isz = cd_dtype_itemsize[st->uf.loop[st->uf.nin]],
                                  .scalar = sc};
    }
    e->scratch = any_gathered || any_cast || p->nsteps > 1 || e->red || e->dest != NULL;
}

/* Rows of the walk: see "Rows" and "Views" at the top of this file. */
static void ev_plan_rows(feval *e)
{
    const cd_fused_params *p = e->p;
    const fwalk *w = &e->w;
    int inner = w->nd - 1, any = 0, rows;
    int64_t L = w->len[inner], q = 0;
    if (w->nd == 1 && !e->any_viewed && e->dest == NULL)
        return;   /* one flat run: nothing below applies */
    if (w->nd > 1 && L >= CD_FUSED_LONGROW) {
        e->rowlen = L;
        for (int i = 0; i < e->nin; i++) {
            freg *g = &e->regs[i];
            g->rowc = e->gathered[i] && w->st[i][inner] == 0;
            g->rowptr = e->gathered[i] && w->st[i][inner] == 1;
        }
        for (int s = 0; s < p->nsteps; s++) {
            const cd_fused_step *st = &p->step[s];
            int rc = !e->regs[e->nin + s].scalar;
            for (int i = 0; i < st->uf.nin && rc; i++) {
                int rg = e->ops[s * CD_UFUNC_MAXIN + i].reg;
                if (rg >= 0 && !e->regs[rg].scalar && !e->regs[rg].rowc)
                    rc = 0;
            }
            e->regs[e->nin + s].rowc = rc && (s < e->last || e->red);
        }
    }
    /* views: walk row by row, pointing into the rows of viewed inputs and
     * writing straight into the destination's rows, when the rows are long
     * and hold a whole number of 64-byte vectors of every loop operand (so
     * the loops' vector bodies and tails fall as on contiguous data) */
    if ((w->nd > 1 && L >= CD_FUSED_ROWCUT) || (e->dest != NULL && e->dw.nd > 1))
        q = 64 / min_itemsize(p, e->scalar_reg);
    rows = w->nd > 1 && L >= CD_FUSED_ROWCUT && L % q == 0;
    for (int i = 0; i < e->nin; i++) {
        e->pointable[i] = e->gathered[i] && !e->regs[i].rowc && e->in[i].viewed &&
                          w->st[i][inner] == 1 && (w->nd == 1 || rows);
        any |= e->pointable[i] && w->nd > 1;
    }
    if (any)
        e->cut = L;
    if (e->dest != NULL && e->dw.nd > 1) {
        int64_t Ld = e->dw.len[e->dw.nd - 1], cut = e->cut;
        if (Ld >= CD_FUSED_ROWCUT && Ld % q == 0 && (cut == 0 || cut % Ld == 0 || Ld % cut == 0))
            e->cut = cut == 0 || Ld < cut ? Ld : cut;
    }
}

/* A gathered input (copied into a buffer every block) read by one operand
 * only, which casts it, is gathered straight into that operand's cast
 * buffer in the loop's dtype (one pass instead of a copy and a cast). */
static void ev_plan_gather_casts(feval *e)
{
    for (int i = 0; i < e->nin; i++) {
        freg *g = &e->regs[i];
        fopnd *o = e->reader[i];
        if (e->gathered[i] && !g->rowc && !g->rowptr && !e->pointable[i] && e->nread[i] == 1 &&
            o != NULL && o->dt != g->dt) {
            g->gcast = o;
            o->precast = 1;
        }
    }
}

/* The walk (when there are elements to compute) and the block size. */
static void ev_plan(feval *e)
{
    const cd_fused_params *p = e->p;
    const cd_fused_style *sty = e->style;
    e->have_walk = 0;
    e->rowlen = 0;
    e->cut = 0;
    if (e->size > 0 && e->lo < e->hi && (e->any_gathered || e->dest != NULL)) {
        plan_walk(e->nin, e->used, e->in, e->ndim, e->shape, &e->w);
        if (e->dest != NULL)
            plan_dest_walk(e->ndim, e->shape, e->dcst, &e->dw);
        e->have_walk = 1;
        ev_plan_rows(e);
        ev_plan_gather_casts(e);
    } else if (e->size > 0 && e->lo < e->hi) {
        /* every input direct or scalar: the output and the inputs are read
         * flat, one run (only the length of w is ever looked at) */
        e->w.nd = 1;
        e->w.len[0] = e->size;
        e->have_walk = 1;
    }
    e->B = sty->block;
    if (sty->fixed_block) {
        if (e->have_walk && e->w.nd > 1 && e->w.len[e->w.nd - 1] < e->B)
            e->B = (e->B / e->w.len[e->w.nd - 1]) * e->w.len[e->w.nd - 1];   /* whole rows */
    } else {
        int64_t bpe = bytes_per_elem(p, e->scalar_reg, e->gathered) +
                      (e->dest != NULL ? cd_dtype_itemsize[e->out_dt] : 0) +
                      (e->red ? 16 + 1 + 2 * cd_dtype_itemsize[p->red.dt] : 0);
        e->B = choose_block_from(e->B, bpe);
    }
    if (e->size < e->B)
        e->B = e->size < 1 ? 1 : e->size;
}

/* Bump allocation of 64-byte aligned buffers from one slab: a first pass
 * with base NULL measures, the second hands out. */
typedef struct {
    char *base;
    int64_t at;
} slab_cursor;

static char *slab_take(slab_cursor *c, int64_t bytes)
{
    char *ptr = c->base != NULL ? c->base + c->at : NULL;
    c->at += (bytes + 63) & ~(int64_t)63;
    return ptr;
}

/* Hand out the scratch buffers of B elements: gathered inputs (unless they
 * are always pointed into), step results but the output, cast operands,
 * the store's block, the reduction's buffers. */
static void ev_take_scratch(feval *e, slab_cursor *c)
{
    const cd_fused_params *p = e->p;
    const int nin = e->nin, last = e->last, red = e->red;
    const int64_t B = e->B;
    freg *regs = e->regs;
    for (int i = 0; i < nin; i++) {
        freg *g = &regs[i];
        if (e->gathered[i] && !g->rowc && !g->rowptr && g->gcast == NULL)
            g->buf = slab_take(c, B * g->isz);
    }
    for (int s = 0; s < p->nsteps; s++) {
        const cd_fused_step *st = &p->step[s];
        freg *g = &regs[nin + s];
        fopnd *ops = &e->ops[s * CD_UFUNC_MAXIN];
        if (!g->scalar && (s < last || red))
            g->buf = slab_take(c, B * g->isz);
        for (int i = 0; i < st->uf.nin; i++)
            if (!ops[i].scalar && regs[ops[i].reg].dt != (cd_dtype)st->uf.loop[i])
                ops[i].cast = slab_take(c, B * cd_dtype_itemsize[st->uf.loop[i]]);
    }
    if (e->dest != NULL)
        e->obuf = slab_take(c, B * cd_dtype_itemsize[e->out_dt]);
    if (e->red) {
        e->vbuf = slab_take(c, B * 16);
        e->mbuf = slab_take(c, B);
        e->cbuf = slab_take(c, B * cd_dtype_itemsize[p->red.dt]);
        e->kbuf = slab_take(c, B * cd_dtype_itemsize[p->red.dt]);
    }
}

static int ev_scratch(feval *e)
{
    slab_cursor c = {NULL, 0};
    e->slab = e->obuf = NULL;
    e->vbuf = e->mbuf = e->cbuf = e->kbuf = NULL;
    if (!e->scratch)
        return 0;
    ev_take_scratch(e, &c);
    if (c.at == 0)
        return 0;
    e->slab = aligned_alloc(64, (size_t)c.at);
    if (e->slab == NULL)
        return ev_err(e, CD_ENOMEM, "out of memory");
    c.base = e->slab;
    c.at = 0;
    ev_take_scratch(e, &c);
    return 0;
}

/* Scalar steps, once (one-element loop calls; scalar inputs were copied
 * out by ev_registers), with every scalar operand in its loop dtype. */
static int ev_scalars(feval *e)
{
    const cd_fused_params *p = e->p;
    freg *regs = e->regs;
    int nd[NREG];   /* axes of what NumPy would compute a scalar register on */
    for (int i = 0; i < e->nin; i++)
        nd[i] = e->in[i].ndim;
    for (int s = 0; s < p->nsteps; s++) {
        const cd_fused_step *st = &p->step[s];
        freg *g = &regs[e->nin + s];
        fopnd *ops = &e->ops[s * CD_UFUNC_MAXIN];
        nd[e->nin + s] = 0;
        for (int i = 0; i < st->uf.nin; i++) {
            int rg = ops[i].reg;
            if (rg < 0)
                memcpy(ops[i].val, st->op[i].val, sizeof(ops[i].val));
            else if (ops[i].scalar)
                cd_cast(regs[rg].dt, regs[rg].one, (cd_dtype)st->uf.loop[i], ops[i].val, 1);
            if (rg >= 0 && nd[rg] > nd[e->nin + s])
                nd[e->nin + s] = nd[rg];
        }
        if (g->scalar) {
            int rc = run_step_as(st, e->regs, ops, 1, (char *)g->one, nd[e->nin + s] > 0,
                                 e->err);
            if (rc < 0)
                return rc;
            g->cur = (char *)g->one;
        }
    }
    return 0;
}

/* Chain c[0 .. n) (steps, in order; c[0] reads register src) on the m
 * float16 values at vals, into out (the last step's result), with the
 * registers and operands of a copy (scratch: per step, a result and cast
 * buffers of LUT_BLK elements).  0, or what run_step returned. */
static int lut_eval(const feval *e, freg *regs, fopnd *ops, const int *c, int n, int src,
                    const char *vals, int64_t m, char *out, char *scratch)
{
    const cd_fused_params *p = e->p;
    regs[src].cur = (char *)vals;
    for (int k = 0; k < n; k++) {
        const cd_fused_step *st = &p->step[c[k]];
        fopnd *o = &ops[c[k] * CD_UFUNC_MAXIN];
        char *dst = k == n - 1 ? out : scratch + (int64_t)k * (CD_UFUNC_MAXIN + 1) * LUT_BLK * 16;
        int rc;
        for (int i = 0; i < st->uf.nin; i++)
            if (o[i].cast != NULL) {
                o[i].cast = scratch + ((int64_t)k * (CD_UFUNC_MAXIN + 1) + 1 + i) * LUT_BLK * 16;
                o[i].precast = 0;
            }
        rc = run_step(st, regs, o, m, dst, e->err);
        if (rc < 0)
            return rc;
        regs[e->nin + c[k]].cur = dst;
    }
    return 0;
}

/* The table of chain c[0 .. n) reading register src: from the cache, else
 * built (when the run is long enough and the cache has room); NULL if not. */
static const flut *lut_get(feval *e, const int *c, int n, int src)
{
    const cd_fused_params *p = e->p;
    lut_key key;
    flut *t = NULL;
    freg *regs = NULL;
    fopnd *ops = NULL;
    char *scratch = NULL;
    uint16_t *vals = NULL;
    fexcept_t saved;
    int ok = 1;
    memset(&key, 0, sizeof(key));
    key.n = n;
    key.hw = cd_half_hw();
    for (int k = 0; k < n; k++) {
        const cd_fused_step *st = &p->step[c[k]];
        const fopnd *o = &e->ops[c[k] * CD_UFUNC_MAXIN];
        lut_step *ks = &key.st[k];
        ks->fn = st->uf.fn;
        ks->fn32 = st->uf.fn32;
        ks->data = st->uf.data;
        ks->data32 = st->uf.data32;
        ks->flags = st->uf.flags;
        ks->nin = st->uf.nin;
        memcpy(ks->loop, st->uf.loop, sizeof(ks->loop));
        for (int i = 0; i < st->uf.nin; i++) {
            if (o[i].scalar)
                memcpy(ks->val[i], o[i].val, sizeof(ks->val[i]));
            else {
                ks->var = i;
                ks->var_dt = e->regs[o[i].reg].dt;
            }
        }
    }
    pthread_mutex_lock(&lut_mu);
    for (int i = 0; i < lut_n; i++)
        if (memcmp(&lut_cache[i]->key, &key, sizeof(key)) == 0) {
            t = lut_cache[i];
            goto done;
        }
    if (e->hi - e->lo < LUT_MIN || lut_n == LUT_CACHE)
        goto done;
    t = calloc(1, sizeof(*t));
    regs = malloc(sizeof(e->regs));
    ops = malloc(sizeof(e->ops));
    scratch = aligned_alloc(64, (size_t)n * (CD_UFUNC_MAXIN + 1) * LUT_BLK * 16);
    vals = malloc(LUT_BLK * sizeof(uint16_t));
    if (t != NULL) {
        t->key = key;
        t->osz = e->regs[e->nin + c[n - 1]].isz;
        t->val = malloc((size_t)LUT_N * (size_t)t->osz);
        t->flag = calloc(LUT_N, 1);
    }
    if (t == NULL || regs == NULL || ops == NULL || scratch == NULL || vals == NULL ||
        t->val == NULL || t->flag == NULL) {
        ok = 0;
        goto built;
    }
    memcpy(regs, e->regs, sizeof(e->regs));
    memcpy(ops, e->ops, sizeof(e->ops));
    fegetexceptflag(&saved, FE_ALL_EXCEPT);
    for (int b0 = 0; b0 < LUT_N && ok; b0 += LUT_BLK) {
        char *out = t->val + (int64_t)b0 * t->osz;
        for (int j = 0; j < LUT_BLK; j++)
            vals[j] = (uint16_t)(b0 + j);
        feclearexcept(FE_ALL_EXCEPT);
        ok = lut_eval(e, regs, ops, c, n, src, (const char *)vals, LUT_BLK, out, scratch) == 0;
        if (!ok || !fetestexcept(LUT_FLAGS))
            continue;
        for (int j = 0; j < LUT_BLK && ok; j++) {   /* which values raised what */
            _Alignas(16) unsigned char one[16];
            feclearexcept(FE_ALL_EXCEPT);
            ok = lut_eval(e, regs, ops, c, n, src, (const char *)&vals[j], 1, (char *)one,
                          scratch) == 0;
            t->flag[b0 + j] = (unsigned char)fetestexcept(LUT_FLAGS);
            t->anyflag |= t->flag[b0 + j] != 0;
        }
    }
    fesetexceptflag(&saved, FE_ALL_EXCEPT);
built:
    if (ok) {
        lut_cache[lut_n++] = t;
    } else {
        if (t != NULL) {
            free(t->val);
            free(t->flag);
        }
        free(t);
        t = NULL;
        if (e->err != NULL) {   /* the blocks meet the same error, if any */
            e->err->code = 0;
            e->err->msg[0] = '\0';
        }
    }
    free(regs);
    free(ops);
    free(scratch);
    free(vals);
done:
    pthread_mutex_unlock(&lut_mu);
    return t;
}

/* Chains of steps that read one non-scalar float16 register and otherwise
 * only constants, each step the only reader of the one before, run as a
 * table (see "float16 chains as tables"). */
static void ev_luts(feval *e)
{
    const cd_fused_params *p = e->p;
    const int nin = e->nin, nsteps = p->nsteps;
    int uses[NREG] = {0}, src[CD_FUSED_MAXSTEPS], len[CD_FUSED_MAXSTEPS], prev[CD_FUSED_MAXSTEPS];
    unsigned char inner[CD_FUSED_MAXSTEPS];
    for (int s = 0; s < nsteps; s++) {
        e->lut[s] = NULL;
        e->lut_skip[s] = 0;
    }
    if (!e->have_walk || e->lo >= e->hi || __atomic_load_n(&lut_off, __ATOMIC_RELAXED))
        return;
    for (int s = 0; s < nsteps; s++)
        for (int i = 0; i < p->step[s].uf.nin; i++)
            if (e->ops[s * CD_UFUNC_MAXIN + i].reg >= 0)
                uses[e->ops[s * CD_UFUNC_MAXIN + i].reg]++;
    if (e->red) {
        uses[p->red.value]++;
        if (p->red.mask >= 0)
            uses[p->red.mask]++;
    }
    for (int s = 0; s < nsteps; s++) {
        const fopnd *ops = &e->ops[s * CD_UFUNC_MAXIN];
        const freg *g = &e->regs[nin + s];
        int var = -1, nv = 0, rg;
        src[s] = -1;
        len[s] = 0;
        prev[s] = -1;
        inner[s] = 0;
        if (g->scalar || g->rowc)
            continue;
        for (int i = 0; i < p->step[s].uf.nin; i++)
            if (!ops[i].scalar) {
                var = i;
                nv++;
            }
        if (nv != 1 || ops[var].precast)
            continue;
        rg = ops[var].reg;
        if (e->regs[rg].rowc || e->regs[rg].rowptr || e->regs[rg].scalar)
            continue;
        if (rg >= nin && src[rg - nin] >= 0 && uses[rg] == 1 && len[rg - nin] < LUT_MAXCHAIN) {
            src[s] = src[rg - nin];
            len[s] = len[rg - nin] + 1;
            prev[s] = rg - nin;
            inner[rg - nin] = 1;
        } else if (e->regs[rg].dt == CD_FLOAT16) {
            src[s] = rg;
            len[s] = 1;
        }
    }
    for (int s = nsteps - 1; s >= 0; s--) {
        int c[LUT_MAXCHAIN], n;
        if (src[s] < 0 || inner[s] || e->lut_skip[s])
            continue;
        n = len[s];
        for (int k = n - 1, t = s; k >= 0; k--, t = prev[t])
            c[k] = t;
        e->lut[s] = lut_get(e, c, n, src[s]);
        if (e->lut[s] != NULL) {
            e->lut_src[s] = src[s];
            for (int k = 0; k < n - 1; k++)
                e->lut_skip[c[k]] = 1;
        }
    }
}

/* Pages of mapped inputs read in blocks (and of a mapped destination):
 * read ahead before the blocks (drop 0), dropped after them (drop 1; see
 * chunk.h: cd_chunk_drop_pages). */
static void ev_advise(const feval *e, int drop)
{
    for (int i = 0; i < e->nin; i++) {
        const cd_chunk *c = e->in[i].chunk;
        const freg *g = &e->regs[i];
        int64_t a, b;
        if (c == NULL || !c->mapped || !e->used[i] || g->scalar || g->direct)
            continue;
        a = elem_offset(&e->w, i, e->lo);
        b = elem_offset(&e->w, i, e->hi - 1);
        if (drop)
            cd_chunk_drop_pages(c, g->data + a * g->isz, (b + 1 - a) * g->isz);
        else
            cd_chunk_will_need(c, g->data + a * g->isz, (b + 1 - a) * g->isz);
    }
    if (drop && e->dest != NULL && e->dest->chunk->mapped) {
        int osz = cd_dtype_itemsize[e->out_dt];
        int64_t a = elem_offset(&e->dw, 0, e->lo), b = elem_offset(&e->dw, 0, e->hi - 1);
        cd_chunk_drop_pages(e->dest->chunk, e->ddata + a * osz, (b + 1 - a) * osz);
    }
}

/* Elements in the block starting at output element b0. */
static int64_t ev_block_len(const feval *e, int64_t b0)
{
    int64_t m = e->hi - b0 < e->B ? e->hi - b0 : e->B;
    if (e->rowlen > 0 && b0 / e->rowlen != (b0 + m - 1) / e->rowlen)
        m = e->rowlen - b0 % e->rowlen;   /* blocks do not cross rows */
    if (e->cut > 0 && b0 / e->cut != (b0 + m - 1) / e->cut)
        m = e->cut - b0 % e->cut;
    return m;
}

/* Block [b0, b0 + m) of every input register: pointed at where it lies,
 * or gathered into its buffer. */
static void ev_gather(feval *e, int64_t b0, int64_t m)
{
    const int nin = e->nin;
    freg *regs = e->regs;
    for (int i = 0; i < nin; i++) {
        freg *g = &regs[i];
        if (g->direct) {
            g->cur = (char *)g->data + b0 * g->isz;
        } else if (g->scalar || !e->used[i]) {
            continue;
        } else if (g->rowc || g->rowptr ||
                   (e->pointable[i] && (b0 % e->w.len[e->w.nd - 1]) + m <= e->w.len[e->w.nd - 1])) {
            g->cur = (char *)g->data + elem_offset(&e->w, i, b0) * g->isz;
        } else if (g->gcast != NULL) {
            gather_cast(&e->w, i, g->data, g->dt, b0, m, g->gcast->dt, g->gcast->cast);
        } else if (g->buf != NULL) {
            gather(&e->w, i, g->data, g->isz, b0, m, g->buf);
            g->cur = g->buf;
        }
    }
}

/* Where the block's result goes: the output chunk, the destination's row
 * when it holds the block, else the store's buffer (NULL: a reduction). */
static char *ev_target(const feval *e, int64_t b0, int64_t m)
{
    const fwalk *dw = &e->dw;
    int osz;
    if (e->red)
        return NULL;
    osz = e->regs[e->nin + e->last].isz;
    if (e->dest == NULL)
        return (char *)e->r->data + b0 * osz;
    if (dw->st[0][dw->nd - 1] == 1 && (b0 % dw->len[dw->nd - 1]) + m <= dw->len[dw->nd - 1])
        return e->ddata + elem_offset(dw, 0, b0) * osz;
    return e->obuf;
}

/* Every non-scalar step on the block, the last one into odst. */
static int ev_steps(feval *e, int64_t m, char *odst)
{
    const cd_fused_params *p = e->p;
    const int nsteps = p->nsteps, last = e->red ? -1 : e->last;
    for (int s = 0; s < nsteps; s++) {
        freg *g = &e->regs[e->nin + s];
        char *dst;
        int rc;
        if (g->scalar || e->lut_skip[s])
            continue;
        dst = s == last ? odst : g->buf;
        if (e->lut[s] != NULL) {
            lut_apply(e->lut[s], e->regs[e->lut_src[s]].cur, g->rowc ? 1 : m, dst);
            g->cur = dst;
            continue;
        }
        rc = run_step(&p->step[s], e->regs, &e->ops[s * CD_UFUNC_MAXIN], g->rowc ? 1 : m, dst,
                      e->err);
        if (rc < 0)
            return rc;
        g->cur = dst;
    }
    return 0;
}

/* The blocks: gather, steps, then scatter (a store) or reduce. */
static int ev_blocks(feval *e)
{
    for (int64_t b0 = e->lo; b0 < e->hi;) {
        int64_t m = ev_block_len(e, b0);
        char *odst;
        int rc;
        if (cd_cancelled(e->ctx))
            return cd_err_set(e->err, CD_ECANCEL, "cancelled");
        ev_gather(e, b0, m);
        odst = ev_target(e, b0, m);
        rc = ev_steps(e, m, odst);
        if (rc < 0)
            return rc;
        if (e->dest != NULL && odst == e->obuf)
            scatter(&e->dw, 0, e->ddata, e->regs[e->nin + e->last].isz, b0, m, e->obuf);
        if (e->red)
            reduce_block(&e->p->red, e->regs, m, e->vbuf, e->mbuf, e->cbuf, e->kbuf, &e->acc);
        b0 += m;
    }
    return 0;
}

/* The elements: a scalar result is written once; else the blocks run. */
static int ev_compute(feval *e)
{
    int rc;
    if (!e->red && e->regs[e->nin + e->last].scalar) {
        /* size is 0 or 1: every used input is size 1 */
        if (e->size > 0 && e->lo < e->hi)
            memcpy(e->dest != NULL ? e->ddata : (char *)e->r->data, e->regs[e->nin + e->last].one,
                   (size_t)e->regs[e->nin + e->last].isz);
        return 0;
    }
    if (!e->have_walk)
        return 0;
    if (e->style->page_hints)
        ev_advise(e, 0);
    rc = ev_blocks(e);
    if (rc == 0 && e->style->page_hints)
        ev_advise(e, 1);
    return rc;
}

/* The result: a reduction's partial, a store's count. */
static int ev_result(feval *e)
{
    if (e->red) {
        e->r = racc_result(&e->p->red, &e->acc, e->err);
        if (e->r == NULL)
            return e->err != NULL && e->err->code ? e->err->code : CD_ENOMEM;
    }
    if (e->dest != NULL)
        *(int64_t *)e->r->data = e->hi - e->lo;
    return 0;
}

int cd_fused_run(const cd_kctx *ctx, const cd_fused_params *p, const cd_fused_input *in,
                 const cd_fused_dest *dest, const cd_fused_style *style, cd_chunk **out,
                 cd_err *err)
{
    feval e;
    int rc;
    e.ctx = ctx;
    e.p = p;
    e.in = in;
    e.dest = dest;
    e.style = style;
    e.err = err;
    e.nin = p->nin;
    e.last = p->nsteps - 1;
    e.red = p->red.kind != CD_RED_NONE;
    e.out_dt = e.red ? p->red.out_dt : p->step[e.last].uf.loop[p->step[e.last].uf.nin];
    e.slab = NULL;
    e.r = NULL;
    if (e.red)
        racc_init(&e.acc);
    *out = NULL;
    rc = ev_shape(&e);
    if (rc == 0)
        rc = ev_output(&e);
    if (rc == 0 && !(style->empty_first && e.size == 0)) {
        ev_registers(&e);
        ev_plan(&e);
        rc = ev_scratch(&e);
        if (rc == 0)
            rc = ev_scalars(&e);
        if (rc == 0) {
            ev_luts(&e);
            rc = ev_compute(&e);
        }
    }
    if (rc == 0)
        rc = ev_result(&e);
    free(e.slab);
    if (rc < 0) {
        if (e.r != NULL)
            cd_chunk_decref(e.r);
        return rc;
    }
    *out = e.r;
    return 0;
}

/* ------------------------------------------------------------------ */
/* the "fused" kernel                                                  */

static const cd_fused_style fused_style = {
    .what = "fused kernel", .block = CD_FUSED_B0, .page_hints = 1,
};
static const cd_fused_style reduce_style = {
    .what = "fused kernel", .block = CD_FUSED_B0_RED, .page_hints = 1,
};

/* The program's inputs as the engine reads them (x[i], with their shapes
 * and strides in shapes[i] and cst[i]), checked against the program's
 * dtypes and views; 0 or a negative code with err set. */
static int fused_inputs(const cd_fused_params *p, cd_chunk *const *in, const fview *views,
                        int64_t (*shapes)[CD_MAXDIMS], int64_t (*cst)[CD_MAXDIMS],
                        cd_fused_input *x, cd_err *err)
{
    int used[CD_FUSED_MAXIN];
    mark_used(p, used);
    for (int i = 0; i < p->nin; i++) {
        const cd_chunk *c = in[i];
        const fview *v = &views[i];
        int64_t s64 = 1, off = 0;
        if (used[i] && c->dtype != (cd_dtype)p->in_dtype[i])
            return cd_err_set(err, CD_ETYPE, "fused kernel: input %d has dtype %s, expected %s",
                              i, cd_dtype_name[c->dtype], cd_dtype_name[p->in_dtype[i]]);
        for (int a = c->ndim - 1; a >= 0; a--) {
            cst[i][a] = s64;
            s64 *= c->shape[a];
        }
        x[i].dt = (cd_dtype)p->in_dtype[i];
        x[i].ndim = c->ndim;
        x[i].shape = shapes[i];
        x[i].cst = cst[i];
        x[i].chunk = c;
        x[i].viewed = v->has;
        x[i].whole = 1;
        if (v->has && v->ndim != c->ndim)
            return cd_err_set(err, CD_EVALUE, "fused kernel: input %d is viewed with %d axes, "
                              "its chunk has %d", i, v->ndim, c->ndim);
        for (int a = 0; a < c->ndim; a++) {
            if (!v->has) {
                shapes[i][a] = c->shape[a];
                continue;
            }
            if (v->start[a] > c->shape[a] || v->shape[a] > c->shape[a] - v->start[a])
                return cd_err_set(err, CD_EVALUE, "fused kernel: the view of input %d does not "
                                  "fit its chunk along axis %d (%lld + %lld > %lld)", i, a,
                                  (long long)v->start[a], (long long)v->shape[a],
                                  (long long)c->shape[a]);
            shapes[i][a] = v->shape[a];
            x[i].whole &= v->start[a] == 0 && v->shape[a] == c->shape[a];
            off += v->start[a] * cst[i][a];
        }
        x[i].data = (const char *)c->data + off * cd_dtype_itemsize[x[i].dt];
    }
    return 0;
}

static int k_fused(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    cd_fused_params *p;
    fview *views = NULL;
    cd_fused_input x[CD_FUSED_MAXIN];
    int64_t shapes[CD_FUSED_MAXIN][CD_MAXDIMS], cst[CD_FUSED_MAXIN][CD_MAXDIMS];
    cd_fused_dest dest;
    int rc, store;

    *out = NULL;
    p = read_params(ctx, err);
    if (p == NULL)
        return err != NULL && err->code ? err->code : CD_EINTERNAL;
    store = (p->flags & CD_FUSED_STORE) != 0;
    if (nin != p->nin + store) {
        rc = cd_err_set(err, CD_ETYPE, "fused kernel takes %d input%s, got %d", p->nin + store,
                        p->nin + store == 1 ? "" : "s", nin);
        goto out;
    }
    views = malloc((size_t)(p->nin + 1) * sizeof(fview));
    if (views == NULL) {
        rc = cd_err_set(err, CD_ENOMEM, "fused kernel: out of memory");
        goto out;
    }
    parse_views(p, views);   /* checked by read_params */
    rc = fused_inputs(p, in, views, shapes, cst, x, err);
    if (rc < 0)
        goto out;
    if (store) {
        dest.chunk = in[p->nin];
        dest.ndim = views[p->nin].ndim;
        dest.start = views[p->nin].start;
    }
    rc = cd_fused_run(ctx, p, x, store ? &dest : NULL,
                      p->red.kind != CD_RED_NONE ? &reduce_style : &fused_style, out, err);
out:
    free(views);
    free(p);
    return rc;
}

static int64_t fused_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    cd_fused_params *p = read_params(ctx, NULL);
    int used[CD_FUSED_MAXIN], nds[CD_FUSED_MAXIN];
    const int64_t *shapes[CD_FUSED_MAXIN];
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
        shapes[i] = views[i].has ? views[i].shape : in[i]->shape;
        nds[i] = in[i]->ndim;
        if (views[i].has && views[i].ndim != in[i]->ndim)
            used[i] = 0;
    }
    if (cd_broadcast_shape(nin, used, nds, shapes, &ndim, shape) < 0) {
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
