/*
 * registry.c - the kernels known by name (interface: registry.h): the
 * table CD_KERNEL_TABLE expanded into descriptors and the list that
 * cd_kernel_find searches and cdask._core.kernels is made from.
 */
#include "kernels/registry.h"
#include "kernels/kernels.h"
#include "kernels/counting.h"
#include "kernels/gemm.h"
#include "kernels/ufunc.h"

#include <stddef.h>
#include <string.h>

#define CD_X_DESC(name, doc, lo, hi, fn, ob, wb, fl) \
    const cd_kernel_desc cd_kdesc_##name = {#name, doc, lo, hi, fn, ob, wb, fl};
CD_KERNEL_TABLE(CD_X_DESC)
#undef CD_X_DESC

const cd_kernel_desc *const cd_builtin_kernels[] = {
#define CD_X_PTR(name, doc, lo, hi, fn, ob, wb, fl) &cd_kdesc_##name,
    CD_KERNEL_TABLE(CD_X_PTR)
#undef CD_X_PTR
    NULL,
};

const cd_kernel_desc *cd_kernel_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (const cd_kernel_desc *const *k = cd_builtin_kernels; *k != NULL; k++)
        if (strcmp((*k)->name, name) == 0)
            return *k;
    return NULL;
}

const char *cd_kernel_display_name(const cd_kernel_desc *desc, const void *params, size_t params_size)
{
    /* a ufunc kernel is named by its ufunc: the NUL-terminated first member
     * of cd_ufunc_params (read as chars: the bytes need not be aligned) */
    if (desc == &cd_ufunc_desc && params != NULL && params_size == sizeof(cd_ufunc_params) &&
        memchr(params, '\0', CD_UFUNC_NAMELEN) != NULL)
        return (const char *)params + offsetof(cd_ufunc_params, name);
    return desc->name;
}
