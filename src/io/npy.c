/*
 * npy.c - the header of a .npy file, parsed and validated in C.
 *
 * Why not NumPy's reader: np.lib.format evaluates the header with
 * ast.literal_eval and accepts structured descriptions; cdask maps .npy
 * files of one plain numeric or bool dtype and wants every malformed file
 * refused with a message naming what is wrong, before anything is mapped.
 * Nothing here evaluates or unpickles anything.
 *
 * Format (NumPy's NEP 1): the 6 bytes "\x93NUMPY", a major and a minor
 * version byte, the header length (2 bytes little-endian in version 1, 4
 * bytes in versions 2 and 3), then the header: a Python dict literal with
 * exactly the keys 'descr' (a type string such as '<f8'), 'fortran_order'
 * (True or False) and 'shape' (a tuple of non-negative ints), padded with
 * spaces and ending with a newline.  The data follows.
 *
 * Grammar accepted for the dict (whitespace allowed between tokens):
 *   dict  := '{' item (',' item)* ','? '}'
 *   item  := key ':' value
 *   key   := a quoted 'descr' | 'fortran_order' | 'shape'
 *   descr := a quoted string of 2-15 printable characters
 *   bool  := True | False
 *   shape := '(' ')' | '(' int ',' ')' | '(' int (',' int)+ ','? ')'
 *   int   := digits, optionally followed by L (files written by Python 2)
 * Pure C: no Python.
 */
#include "io/npy.h"

#include <string.h>

typedef struct {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string into out (cap bytes, NUL-terminated); length or -1. */
static int quoted(cursor *c, char *out, size_t cap)
{
    char q;
    size_t n = 0;
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return -1;
    q = *c->p++;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || (unsigned char)*c->p < 0x20 || (unsigned char)*c->p > 0x7e ||
            n + 1 >= cap)
            return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return -1;
    c->p++;
    out[n] = '\0';
    return (int)n;
}

static int word(cursor *c, const char *w)
{
    size_t n = strlen(w);
    skip_ws(c);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

static int parse_shape(cursor *c, cd_npy_header *h, cd_err *err)
{
    int nd = 0, need_comma = 0;
    if (!eat(c, '('))
        return cd_err_set(err, CD_EVALUE, "'shape' is not a tuple");
    for (;;) {
        int64_t v = 0;
        int digits = 0;
        if (eat(c, ')'))
            break;
        if (need_comma)
            return cd_err_set(err, CD_EVALUE, "'shape' is not a tuple of ints");
        skip_ws(c);
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return cd_err_set(err, CD_EVALUE, "a dimension of 'shape' is too large");
            v = v * 10 + (*c->p++ - '0');
            digits++;
        }
        if (digits == 0)
            return cd_err_set(err, CD_EVALUE, "'shape' is not a tuple of non-negative ints");
        if (c->p < c->end && *c->p == 'L')
            c->p++;
        if (nd >= CD_MAXDIMS)
            return cd_err_set(err, CD_EVALUE, "'shape' has more than %d dimensions",
                              CD_MAXDIMS);
        h->shape[nd++] = v;
        need_comma = !eat(c, ',');
        if (nd == 1 && need_comma) {
            /* "(5)" is an int in parentheses, not a tuple */
            if (eat(c, ')'))
                return cd_err_set(err, CD_EVALUE, "'shape' is not a tuple");
            return cd_err_set(err, CD_EVALUE, "'shape' is not a tuple of ints");
        }
    }
    h->ndim = nd;
    return 0;
}

int cd_npy_parse(const unsigned char *buf, size_t n, cd_npy_header *h, cd_err *err)
{
    static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    size_t hlen, pre;
    cursor c;
    int seen_descr = 0, seen_fortran = 0, seen_shape = 0;

    memset(h, 0, sizeof(*h));
    if (n < 10 || memcmp(buf, magic, 6) != 0)
        return cd_err_set(err, CD_EVALUE, "not a .npy file (no \\x93NUMPY magic)");
    h->major = buf[6];
    h->minor = buf[7];
    if (h->major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        pre = 10;
    } else if (h->major == 2 || h->major == 3) {
        if (n < 12)
            return cd_err_set(err, CD_EVALUE, "truncated header");
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
               (size_t)buf[11] << 24;
        pre = 12;
    } else {
        return cd_err_set(err, CD_EVALUE, "unsupported .npy format version %d.%d", h->major,
                          h->minor);
    }
    if (hlen > n - pre)
        return cd_err_set(err, CD_EVALUE, "truncated header (%zu bytes announced, %zu present)",
                          hlen, n - pre);
    h->data_offset = (int64_t)(pre + hlen);
    if (hlen == 0 || buf[pre + hlen - 1] != '\n')
        return cd_err_set(err, CD_EVALUE, "corrupt header (it does not end with a newline)");
    c.p = (const char *)buf + pre;
    c.end = c.p + hlen;
    if (!eat(&c, '{'))
        return cd_err_set(err, CD_EVALUE, "corrupt header (not a dict)");
    for (;;) {
        char key[32];
        if (eat(&c, '}'))
            break;
        if (quoted(&c, key, sizeof(key)) < 0)
            return cd_err_set(err, CD_EVALUE, "corrupt header (a key is not a short string)");
        if (!eat(&c, ':'))
            return cd_err_set(err, CD_EVALUE, "corrupt header (no ':' after '%s')", key);
        if (strcmp(key, "descr") == 0 && !seen_descr) {
            int len = quoted(&c, h->descr, sizeof(h->descr));
            if (len < 2) {
                skip_ws(&c);
                return cd_err_set(err, CD_EVALUE, c.p < c.end && *c.p == '['
                                  ? "'descr' describes a structured dtype (not supported)"
                                  : "'descr' is not a dtype string");
            }
            seen_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !seen_fortran) {
            if (word(&c, "True"))
                h->fortran = 1;
            else if (word(&c, "False"))
                h->fortran = 0;
            else
                return cd_err_set(err, CD_EVALUE, "'fortran_order' is not True or False");
            seen_fortran = 1;
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            if (parse_shape(&c, h, err) < 0)
                return err->code;
            seen_shape = 1;
        } else {
            return cd_err_set(err, CD_EVALUE, "corrupt header (unexpected or repeated key '%s')",
                              key);
        }
        if (!eat(&c, ',')) {
            if (eat(&c, '}'))
                break;
            return cd_err_set(err, CD_EVALUE, "corrupt header (expected ',' or '}')");
        }
    }
    skip_ws(&c);
    if (c.p != c.end)
        return cd_err_set(err, CD_EVALUE, "corrupt header (text after the dict)");
    if (!seen_descr || !seen_fortran || !seen_shape)
        return cd_err_set(err, CD_EVALUE, "corrupt header (missing '%s')",
                          !seen_descr ? "descr" : !seen_fortran ? "fortran_order" : "shape");
    return 0;
}
