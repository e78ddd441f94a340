/*
 * broadcast.h - NumPy's broadcasting for the elementwise engine (fused.c:
 * cd_fused_run, which runs both the "fused" and the "ufunc" kernel; the
 * kernels' out_bytes estimates use cd_broadcast_shape too).  Pure C, no
 * state, callable from any thread.  Implemented in broadcast.c.
 *
 * Before its loops the engine broadcasts the operands' shapes into the
 * output's shape (cd_broadcast_shape, with the shapes for the error message
 * from cd_fmt_shapes), gives every operand an element stride per output
 * axis, 0 where it broadcasts (cd_broadcast_strides), and merges axes so
 * the inner loop runs as long as possible (cd_merge_axes).
 */
#ifndef CD_BROADCAST_H
#define CD_BROADCAST_H

#include "core/chunk.h"

/*
 * NumPy's broadcast of n shapes: operand i has nds[i] axes of lengths
 * shapes[i][0..nds[i]); operands with used != NULL && !used[i] take no part.
 * Dimensions are aligned on the right; a length of 1, or a missing axis,
 * stretches.  On success writes the broadcast shape into shape[0..*ndim)
 * and returns 0; when two lengths (neither 1) differ returns CD_EVALUE and
 * writes nothing (the caller words the error, with cd_fmt_shapes).
 */
int cd_broadcast_shape(int n, const int *used, const int *nds, const int64_t *const *shapes,
                       int *ndim, int64_t *shape);

/*
 * The shapes of the used operands as NumPy prints them in its broadcast
 * error, "(2,3) (4,)", into buf (NUL-terminated, truncated to cap).  With
 * trailing_space every shape is followed by a space, as in NumPy's own
 * message; else the shapes are only separated by one.  Returns the length.
 */
size_t cd_fmt_shapes(char *buf, size_t cap, int n, const int *used, const int *nds,
                     const int64_t *const *shapes, int trailing_space);

/*
 * Element strides of one operand over the ndim axes of the broadcast output
 * into st[0..ndim): op_nd axes of lengths op_shape, with element strides
 * op_cst along its own axes (NULL: C-contiguous).  The stride is 0 on every
 * axis the operand is missing or has length 1.
 */
void cd_broadcast_strides(int ndim, int op_nd, const int64_t *op_shape, const int64_t *op_cst,
                          int64_t *st);

/*
 * Drop the length-1 axes of an iteration over `shape` and merge adjacent
 * axes wherever every operand's element strides (st[o][axis]) chain, so
 * inner loops run as long as possible.  Writes the merged lengths and
 * strides; returns the number of merged axes (>= 1; one of length 1 with
 * stride 0 when every axis was dropped).
 */
int cd_merge_axes(int nops, int ndim, const int64_t *shape, const int64_t (*st)[CD_MAXDIMS],
                  int64_t *len, int64_t (*wst)[CD_MAXDIMS]);

#endif /* CD_BROADCAST_H */
