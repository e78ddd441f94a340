/*
 * fpe.c - the floating-point exception flags of the calling thread
 * (interface: fpe.h), read and cleared through <fenv.h>.
 */
#include "core/fpe.h"

#include <fenv.h>

void cd_fpe_clear(void)
{
    feclearexcept(FE_ALL_EXCEPT);
}

int cd_fpe_read(void)
{
    int f = fetestexcept(FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW | FE_INVALID), out = 0;
    if (f & FE_DIVBYZERO)
        out |= CD_FPE_DIVIDE;
    if (f & FE_OVERFLOW)
        out |= CD_FPE_OVERFLOW;
    if (f & FE_UNDERFLOW)
        out |= CD_FPE_UNDERFLOW;
    if (f & FE_INVALID)
        out |= CD_FPE_INVALID;
    return out;
}
