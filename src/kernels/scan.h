/*
 * scan.h - running maxima and minima along the rows of a block, with the
 * bits of NumPy's maximum.accumulate / minimum.accumulate (scan.c).  Pure C.
 *
 * NumPy's accumulate of maximum or minimum runs its scalar loop (the
 * operands overlap), one element after the other: m = (m > v || m is NaN)
 * ? m : v for maximum (< for minimum) - the first NaN stays, and of equal
 * values (signed zeros) the later one is kept.  The loops here do the same
 * with quiet comparisons, for every integer and floating dtype but float16,
 * several times faster than NumPy's loop, which tests every element for NaN
 * through a function call and stores it through the output pointer.
 */
#ifndef CD_SCAN_H
#define CD_SCAN_H

#include "core/dtypes.h"

#include <stdint.h>

/*
 * Row r of dst (rows of n elements, C order, dst_row apart) becomes the
 * running maximum (is_max) or minimum of row r of src (src_row elements
 * apart, contiguous along the row), started from carry[r] when carry is not
 * NULL (the value before the row: one element per row).  dst may be src.
 * 0, or -1 (nothing written) for a dtype it does not take.
 */
int cd_scan_minmax(int is_max, cd_dtype dt, const void *src, int64_t src_row, void *dst,
                   int64_t dst_row, int64_t rows, int64_t n, const void *carry);

#endif /* CD_SCAN_H */
