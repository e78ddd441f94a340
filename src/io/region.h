/*
 * region.h - copying a strided region of a file to or from a C-contiguous
 * buffer with pread/pwrite.  Pure C, no lock, no GIL needed: the Python
 * glue (python/npy_py.c) calls it with the GIL released.  Implemented in
 * region.c.
 *
 * A thin slab of a big file - a column block of a C-ordered matrix - read
 * or written through a mapping maps a page (or the whole large folio around
 * it) for every row it touches; those mappings count as the process's
 * memory, and dropping them costs a fault per row the next time.
 * pread/pwrite copy to and from the page cache and map nothing (and see the
 * same bytes as every shared mapping of the file).
 */
#ifndef CD_REGION_H
#define CD_REGION_H

#include <stdint.h>

#define CD_REGION_MAXDIMS 64

/*
 * Copy between buf (C-contiguous, of shape dims[0..nd)) and the file
 * elements at byte offset + sum(i_k * strides[k]), one row of the last axis
 * at a time.  The last stride must be the item size (rows are contiguous in
 * the file); the others must be >= 0; 1 <= nd <= CD_REGION_MAXDIMS, and no
 * dimension is 0 (the caller checks all that).  writing: buf -> file, else
 * file -> buf.
 *
 * Returns 0, or an errno value: the open, read or write error, or EIO when
 * the file ends before the region does.  On failure part of the region may
 * have been copied; the file is closed either way.
 */
int cd_region_io(const char *path, int writing, int64_t offset, int nd, const int64_t *dims,
                 const int64_t *strides, char *buf);

#endif /* CD_REGION_H */
