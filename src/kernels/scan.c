/*
 * scan.c - running maxima and minima along rows (interface and NumPy's
 * rule: scan.h).  Pure C.
 */
#include "kernels/scan.h"

#include <stddef.h>

/* one loop per dtype and direction: GT is the quiet "keeps m" comparison */
#define CD_SCAN_DEF(NAME, T, KEEP)                                                      \
    static void NAME(const T *src, int64_t src_row, T *dst, int64_t dst_row,            \
                     int64_t rows, int64_t n, const T *carry)                           \
    {                                                                                   \
        for (int64_t r = 0; r < rows; r++) {                                            \
            const T *s = src + r * src_row;                                             \
            T *d = dst + r * dst_row;                                                   \
            T m;                                                                        \
            int64_t j = 0;                                                              \
            if (n == 0)                                                                 \
                continue;                                                               \
            if (carry != NULL) {                                                        \
                m = carry[r];                                                           \
            } else {                                                                    \
                m = s[0];                                                               \
                d[0] = m;                                                               \
                j = 1;                                                                  \
            }                                                                           \
            for (; j < n; j++) {                                                        \
                T v = s[j];                                                             \
                m = KEEP(m, v) ? m : v;                                                 \
                d[j] = m;                                                               \
            }                                                                           \
        }                                                                               \
    }

#define KEEP_MAX_I(m, v) ((m) > (v))
#define KEEP_MIN_I(m, v) ((m) < (v))
#define KEEP_MAX_F(m, v) (__builtin_isgreater((m), (v)) || __builtin_isnan(m))
#define KEEP_MIN_F(m, v) (__builtin_isless((m), (v)) || __builtin_isnan(m))

#define CD_SCAN_INT(SFX, T)                                                             \
    CD_SCAN_DEF(max_##SFX, T, KEEP_MAX_I)                                               \
    CD_SCAN_DEF(min_##SFX, T, KEEP_MIN_I)

CD_SCAN_INT(i8, int8_t)
CD_SCAN_INT(i16, int16_t)
CD_SCAN_INT(i32, int32_t)
CD_SCAN_INT(i64, int64_t)
CD_SCAN_INT(u8, uint8_t)
CD_SCAN_INT(u16, uint16_t)
CD_SCAN_INT(u32, uint32_t)
CD_SCAN_INT(u64, uint64_t)
CD_SCAN_DEF(max_f32, float, KEEP_MAX_F)
CD_SCAN_DEF(min_f32, float, KEEP_MIN_F)
CD_SCAN_DEF(max_f64, double, KEEP_MAX_F)
CD_SCAN_DEF(min_f64, double, KEEP_MIN_F)

int cd_scan_minmax(int is_max, cd_dtype dt, const void *src, int64_t src_row, void *dst,
                   int64_t dst_row, int64_t rows, int64_t n, const void *carry)
{
#define CD_SCAN_CASE(ID, SFX, T)                                                        \
    case ID:                                                                            \
        (is_max ? max_##SFX : min_##SFX)((const T *)src, src_row, (T *)dst, dst_row,    \
                                         rows, n, (const T *)carry);                    \
        return 0;
    switch (dt) {
        CD_SCAN_CASE(CD_INT8, i8, int8_t)
        CD_SCAN_CASE(CD_INT16, i16, int16_t)
        CD_SCAN_CASE(CD_INT32, i32, int32_t)
        CD_SCAN_CASE(CD_INT64, i64, int64_t)
        CD_SCAN_CASE(CD_UINT8, u8, uint8_t)
        CD_SCAN_CASE(CD_UINT16, u16, uint16_t)
        CD_SCAN_CASE(CD_UINT32, u32, uint32_t)
        CD_SCAN_CASE(CD_UINT64, u64, uint64_t)
        CD_SCAN_CASE(CD_FLOAT32, f32, float)
        CD_SCAN_CASE(CD_FLOAT64, f64, double)
    default:
        return -1;
    }
#undef CD_SCAN_CASE
}
