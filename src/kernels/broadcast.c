/*
 * broadcast.c - NumPy's broadcasting for the elementwise kernels
 * (interface: broadcast.h).  Pure C.
 */
#include "kernels/broadcast.h"

int cd_broadcast_shape(int n, const int *used, const int *nds, const int64_t *const *shapes,
                       int *ndim, int64_t *shape)
{
    int nd = 0;
    for (int i = 0; i < n; i++)
        if ((used == NULL || used[i]) && nds[i] > nd)
            nd = nds[i];
    for (int a = 0; a < nd; a++) {
        int64_t d = 1;
        for (int i = 0; i < n; i++) {
            int k = a - (nd - nds[i]);
            int64_t s;
            if ((used != NULL && !used[i]) || k < 0)
                continue;
            s = shapes[i][k];
            if (s == 1)
                continue;
            if (d == 1)
                d = s;
            else if (d != s)
                return CD_EVALUE;
        }
        shape[a] = d;
    }
    *ndim = nd;
    return 0;
}

size_t cd_fmt_shapes(char *buf, size_t cap, int n, const int *used, const int *nds,
                     const int64_t *const *shapes, int trailing_space)
{
    size_t len = 0;
    if (cap == 0)
        return 0;
    buf[0] = '\0';
    for (int j = 0; j < n && len + 1 < cap; j++) {
        if (used != NULL && !used[j])
            continue;
        if (!trailing_space && len > 0)
            buf[len++] = ' ', buf[len] = '\0';
        len += cd_fmt_shape(buf + len, cap - len, nds[j], shapes[j], ",");
        if (trailing_space && len + 1 < cap)
            buf[len++] = ' ', buf[len] = '\0';
    }
    return len;
}

void cd_broadcast_strides(int ndim, int op_nd, const int64_t *op_shape, const int64_t *op_cst,
                          int64_t *st)
{
    int64_t s = 1;
    for (int a = ndim - 1; a >= 0; a--) {
        int k = a - (ndim - op_nd);
        if (k < 0 || op_shape[k] == 1) {
            st[a] = 0;
        } else {
            st[a] = op_cst != NULL ? op_cst[k] : s;
            s *= op_shape[k];
        }
    }
}

int cd_merge_axes(int nops, int ndim, const int64_t *shape, const int64_t (*st)[CD_MAXDIMS],
                  int64_t *len, int64_t (*wst)[CD_MAXDIMS])
{
    int nd = 0;
    for (int a = 0; a < ndim; a++) {
        if (shape[a] == 1)
            continue;
        if (nd > 0) {
            int ok = 1;
            for (int o = 0; o < nops && ok; o++)
                ok = wst[o][nd - 1] == st[o][a] * shape[a];
            if (ok) {
                len[nd - 1] *= shape[a];
                for (int o = 0; o < nops; o++)
                    wst[o][nd - 1] = st[o][a];
                continue;
            }
        }
        len[nd] = shape[a];
        for (int o = 0; o < nops; o++)
            wst[o][nd] = st[o][a];
        nd++;
    }
    if (nd == 0) {   /* a single element */
        len[0] = 1;
        for (int o = 0; o < nops; o++)
            wst[o][0] = 0;
        nd = 1;
    }
    return nd;
}
