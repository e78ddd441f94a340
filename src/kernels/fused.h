/*
 * fused.h - the "fused" kernel: a chain of NumPy elementwise loops evaluated
 * in ONE pass over a chunk, block by block, without chunk-sized temporaries.
 * Shared by fused.c (pure C: runs the program) and fused_py.c (glue: builds
 * the program with the GIL held, resolving every step as the "ufunc" kernel
 * does, and gives the Kernel its repr and pickling).
 *
 * The program.  A fused kernel takes N input chunks (each of a declared
 * dtype) and holds a list of steps.  Each step is one resolved ufunc loop
 * (a cd_ufunc_params, exactly what a single "ufunc" kernel would hold for the
 * same ufunc and operand dtypes) whose operands are registers: an input, a
 * constant (stored already converted to the loop's operand dtype), or the
 * result of an earlier step.  The last step's result is the output chunk.
 * Every step but the last must be used by a later one.
 *
 * Evaluation (fused.c: the engine, cd_fused_run, which also runs every
 * "ufunc" kernel as a program of one step).  The inputs the program uses are broadcast to the
 * output shape; every step is evaluated over that shape, in blocks of B
 * consecutive output elements (C order).  Per block, each input register
 * points straight into its chunk (same shape as the output) or is gathered
 * into a scratch buffer (broadcast input); each operand whose register dtype
 * differs from the loop dtype is cast into a scratch buffer with cd_cast (the
 * "ufunc" kernel's casts); each step's loop runs on the block and writes its
 * own scratch buffer - the last step writes straight into the output chunk.
 * Registers of a single element (size-1 inputs, constants, steps of only
 * such operands) are computed once and passed with stride 0, as NumPy passes
 * scalars.  See fused.c for the choice of B.
 *
 * Views, stores and spans (the "sinks" of a fused task).  An input may be
 * read through a view: a box of its chunk (start and shape per axis, the
 * chunk's own number of axes), so that a fused task can read a block of a
 * larger array - a block of an in-memory or memory-mapped array handed to
 * from_array - where it lies, without the copy that making it a chunk of
 * its own would cost.  The output may go, instead of a new chunk, into a box
 * of a destination chunk passed as one extra, last input (the array
 * compute() is filling; a "store"): the kernel then writes its result there
 * and returns a 0-d int64 chunk holding the number of elements it wrote.
 * A store may also be limited to a span [lo, hi) of the output's elements
 * (flat, C order), so that one block can be shared among several tasks when
 * there are fewer blocks than workers.
 *
 * The params bytes are a cd_fused_params header followed by nsteps
 * cd_fused_step records and ntrail int64 words describing the views and the
 * store (fused.c: read_params); they hold NumPy's loop pointers, so such a Kernel
 * pickles through a re-resolving reconstructor and cannot be made from bytes
 * (the descriptor is not in cd_builtin_kernels).
 */
#ifndef CD_FUSED_H
#define CD_FUSED_H

#include "kernels/ufunc.h"

#define CD_FUSED_MAGIC 0x66734e33u   /* "fsN3": layout version of the params */
#define CD_FUSED_MAXIN 16            /* inputs of a fused kernel */
#define CD_FUSED_MAXSTEPS 64         /* steps of a fused program */

/* Operand kinds of a step. */
enum { CD_FR_IN = 1, CD_FR_CONST = 2, CD_FR_STEP = 3 };

typedef struct cd_fused_ref {
    int32_t kind;                 /* CD_FR_* */
    int32_t index;                /* input or step number; 0 for a constant */
    int32_t orig_dtype;           /* constant: cd_dtype of `orig` */
    int32_t pad_;
    unsigned char orig[16];       /* constant as given (for repr and pickling) */
    unsigned char val[16];        /* constant in the loop's operand dtype */
} cd_fused_ref;

typedef struct cd_fused_step {
    cd_ufunc_params uf;           /* the resolved loop; uf.declared[i] tells a
                                     constant given as a Python scalar (weak) */
    cd_fused_ref op[CD_UFUNC_MAXIN];
} cd_fused_step;

/* Flags of cd_fused_params. */
enum { CD_FUSED_STORE = 1 };      /* output goes into the last input (a box of it) */

/*
 * Reductions in the same pass.  With red.kind set, the program has no
 * output array: per block, the elements of register red.value (an input or
 * a step), kept only where register red.mask is true when red.mask >= 0
 * (a boolean mask, as x[mask] selects), are cast to red.dt and reduced
 * with the loop red.uf (NumPy's add, minimum or maximum for red.dt, called
 * as NumPy calls it for a reduction: accumulator first, then the elements).
 * The kernel returns the chunk's partial:
 *   CD_RED_SUM   0-d, red.out_dt: the sum (floating sums run in double
 *                precision, block sums added with Neumaier's compensation)
 *   CD_RED_MEAN  shape (2,), red.out_dt: [count, sum]
 *   CD_RED_MIN, CD_RED_MAX  shape (1,) holding the extreme, or (0,) when
 *                no element was selected
 */
enum { CD_RED_NONE = 0, CD_RED_SUM, CD_RED_MEAN, CD_RED_MIN, CD_RED_MAX };

typedef struct cd_fused_red {
    int32_t kind;                 /* CD_RED_* */
    int32_t value, mask;          /* registers (input i, or nin + step); mask -1: none */
    int32_t dt, out_dt;           /* cd_dtype of the accumulation and of the partial */
    int32_t pad_;
    cd_ufunc_params uf;           /* the reduction loop, (dt, dt) -> dt */
} cd_fused_red;

typedef struct cd_fused_params {
    uint32_t magic;               /* CD_FUSED_MAGIC */
    int32_t nin, nsteps;          /* program inputs (the destination is not counted) */
    uint32_t flags;               /* CD_FUSED_* */
    int32_t ntrail, pad_;         /* int64 words after the steps */
    int64_t span_lo, span_hi;     /* store: output elements [lo, hi); hi < 0: to the end */
    cd_fused_red red;             /* reduction in the same pass (kind 0: none) */
    int32_t in_dtype[CD_FUSED_MAXIN];
    cd_fused_step step[];         /* nsteps records, then ntrail int64 words:
                                     per view record: which (input, or -1 for the
                                     store's box), ndim, start[ndim], shape[ndim]
                                     (the store's box has no shape: the output's) */
} cd_fused_params;

/* Bytes of params holding n steps and t trailing words. */
#define CD_FUSED_PARAMS_SIZE(n, t) \
    (sizeof(cd_fused_params) + (size_t)(n) * sizeof(cd_fused_step) + (size_t)(t) * sizeof(int64_t))
#define CD_FUSED_TRAIL(p) ((int64_t *)(void *)&(p)->step[(p)->nsteps])

/* The kernel descriptor (name "fused", flags CD_KF_FPE). */
extern const cd_kernel_desc cd_fused_desc;

/*
 * The engine (fused.c: cd_fused_run), shared by the "fused" kernel and the
 * "ufunc" kernel (ufunc.c runs one ufunc as a program of one step).
 *
 * One input of a program as the engine reads it: dt must be the program's
 * in_dtype; shape is what is read (a view's box, or the whole chunk) and
 * cst the element strides of the chunk along its own axes (NULL: the shape
 * is C-contiguous); data points at the first element read.
 */
typedef struct cd_fused_input {
    cd_dtype dt;
    int ndim;
    const int64_t *shape;
    const int64_t *cst;
    const char *data;
    const cd_chunk *chunk;        /* for page hints (chunk->mapped); may be NULL */
    int viewed;                   /* read through a view */
    int whole;                    /* what is read is the whole chunk */
} cd_fused_input;

/* The store's destination: a box of `chunk` starting at start[0..ndim). */
typedef struct cd_fused_dest {
    cd_chunk *chunk;
    int ndim;
    const int64_t *start;
} cd_fused_dest;

/*
 * How a caller wants its program run.  Errors start with "<what>: ", or
 * "<what> '<name>': " when name is not NULL.  Blocks hold `block` output
 * elements; with fixed_block they always do (no halving for the scratch
 * budget) and, where rows shorter than a block are gathered, a block holds
 * as many whole rows as fit (NumPy's buffered iteration, as the "ufunc"
 * kernel always ran); else the block is halved, down to 512, while the
 * scratch would exceed 512 KiB.
 */
typedef struct cd_fused_style {
    const char *what, *name;
    int trailing_space;           /* broadcast errors print NumPy's "(2,3) (4,) " */
    int64_t block;
    int fixed_block;
    int empty_first;              /* an empty result returns before anything is computed */
    int page_hints;               /* advise the pages of mapped inputs read in blocks */
} cd_fused_style;

/*
 * Run program p (validated; in[0 .. p->nin)) into a new chunk, a partial
 * (p->red.kind), or dest's box (CD_FUSED_STORE: *out is then the 0-d count
 * of elements written).  No GIL needed.  0, or a negative CD_E* code with
 * err filled and *out NULL.
 */
int cd_fused_run(const cd_kctx *ctx, const cd_fused_params *p, const cd_fused_input *in,
                 const cd_fused_dest *dest, const cd_fused_style *style, cd_chunk **out,
                 cd_err *err);

/* Elements per block for a program, as the kernel chooses them. */
int64_t cd_fused_block_elems(const cd_fused_params *p);

/* Chains of float16 steps run as tables of the 65536 values (fused.c:
 * "float16 chains as tables"): on by default; switched for tests.  Returns
 * whether they are on; the tables built so far in *cached and the most
 * kept in *most (each if not NULL). */
void cd_fused_set_tables(int on);
int cd_fused_tables(int *cached, int *most);

#endif /* CD_FUSED_H */
