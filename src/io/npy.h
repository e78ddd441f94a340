/*
 * npy.h - parsing the header of a .npy file (npy.c, pure C) and its Python
 * glue (npy_py.c: cdask._core.npy_header(path)).
 */
#ifndef CD_NPY_H
#define CD_NPY_H

#include "core/chunk.h"

typedef struct cd_npy_header {
    int major, minor;             /* format version */
    char descr[16];               /* the dtype string, e.g. "<f8" */
    int fortran;                  /* fortran_order */
    int ndim;
    int64_t shape[CD_MAXDIMS];
    int64_t data_offset;          /* bytes before the data */
} cd_npy_header;

/* Parse the first n bytes of a file (the whole header must be in them).
 * 0, or a negative CD_E* code with err naming the problem. */
int cd_npy_parse(const unsigned char *buf, size_t n, cd_npy_header *h, cd_err *err);

#endif /* CD_NPY_H */
