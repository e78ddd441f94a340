/*
 * dtypes.h - the dtypes a chunk can hold: the one table of them, written as
 * an X-macro (as numexpr's opcodes.hpp) and expanded wherever a per-dtype
 * list is needed - the cd_dtype enum and the name and size arrays (chunk.h,
 * chunk.c), NumPy's type numbers (python/chunk_py.c, which pastes NPY_<ID>
 * so that this header needs no NumPy), the cast functions (kernels/ufunc.c)
 * and cdask._core.DTYPES.
 *
 * X(ID, name, sfx, ctype, kind): cd_dtype CD_<ID>, NumPy's name, a short
 * suffix for generated C names, the C type of one element, and the kind
 * (B bool, I signed integer, U unsigned integer, H IEEE half precision -
 * stored as its 16 bits, converted by kernels/ufunc.c -, F real floating,
 * C complex).  The order is the enum's and is relied upon: integer kinds are
 * by increasing width, signed before unsigned (see the asserts below).
 */
#ifndef CD_DTYPES_H
#define CD_DTYPES_H

#include <stdint.h>

typedef struct { float re, im; } cd_complex64;
typedef struct { double re, im; } cd_complex128;

#define CD_DTYPE_TABLE(X)                                   \
    X(BOOL,       "bool",       b,    uint8_t,       B)     \
    X(INT8,       "int8",       i8,   int8_t,        I)     \
    X(INT16,      "int16",      i16,  int16_t,       I)     \
    X(INT32,      "int32",      i32,  int32_t,       I)     \
    X(INT64,      "int64",      i64,  int64_t,       I)     \
    X(UINT8,      "uint8",      u8,   uint8_t,       U)     \
    X(UINT16,     "uint16",     u16,  uint16_t,      U)     \
    X(UINT32,     "uint32",     u32,  uint32_t,      U)     \
    X(UINT64,     "uint64",     u64,  uint64_t,      U)     \
    X(FLOAT16,    "float16",    f16,  uint16_t,      H)     \
    X(FLOAT32,    "float32",    f32,  float,         F)     \
    X(FLOAT64,    "float64",    f64,  double,        F)     \
    X(COMPLEX64,  "complex64",  c64,  cd_complex64,  C)     \
    X(COMPLEX128, "complex128", c128, cd_complex128, C)

/* dtypes a chunk can hold.  Integer kinds are named by width, not by C type. */
typedef enum cd_dtype {
#define CD_X_ENUM(id, name, sfx, ctype, kind) CD_##id,
    CD_DTYPE_TABLE(CD_X_ENUM)
#undef CD_X_ENUM
    CD_NDTYPES
} cd_dtype;

_Static_assert(CD_BOOL == 0 && CD_INT8 + 3 == CD_INT64 && CD_UINT8 + 3 == CD_UINT64 &&
               CD_INT64 + 1 == CD_UINT8 && CD_UINT64 + 1 == CD_FLOAT16 &&
               CD_FLOAT16 + 1 == CD_FLOAT32 && CD_FLOAT32 + 1 == CD_FLOAT64 &&
               CD_COMPLEX64 + 1 == CD_COMPLEX128,
               "code relies on the order of the dtype table");

/* ", bool, int8, ..., complex128": the names for messages (skip the first
 * two characters). */
#define CD_X_LISTNAME(id, name, sfx, ctype, kind) ", " name
#define CD_DTYPE_NAMES_LIST (CD_DTYPE_TABLE(CD_X_LISTNAME) + 2)

#endif /* CD_DTYPES_H */
