"""Apply NumPy's floating-point error handling to flags raised in C workers.

NumPy's loops report division by zero, overflow, underflow and invalid
values through the thread's floating-point status flags.  cdask's workers
clear those flags before each kernel that may raise them and read them after;
the scheduler ORs them over the run and, once the run is over, calls
:func:`report` on the calling thread, so the ``np.errstate`` in force where
``compute()``/``get()`` was called decides what happens - a RuntimeWarning,
a FloatingPointError, a call to ``np.seterrcall``'s handler, or nothing - as
it would have for the same operation done by NumPy itself.
"""

import warnings

import numpy as np

# NumPy's bit values (NPY_FPE_*), its errstate categories and its messages.
_KINDS = (
    (1, "divide", "divide by zero encountered in {}"),
    (2, "over", "overflow encountered in {}"),
    (4, "under", "underflow encountered in {}"),
    (8, "invalid", "invalid value encountered in {}"),
)


def report(flags, names=()):
    """Act on ``flags`` (CD_FPE_* bits) as np.errstate says.

    ``names`` gives, per bit index, the name of the operation that first
    raised the flag (used in the message, as NumPy names the ufunc).
    """
    if not flags:
        return
    err = np.geterr()
    for bit, kind, text in _KINDS:
        if not flags & bit:
            continue
        idx = bit.bit_length() - 1
        name = names[idx] if idx < len(names) and names[idx] else "a cdask kernel"
        msg = text.format(name)
        action = err[kind]
        if action == "ignore":
            continue
        if action == "warn":
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
        elif action == "raise":
            raise FloatingPointError(msg)
        elif action == "call":
            handler = np.geterrcall()
            if handler is None:
                raise ValueError("np.seterr asks for 'call' but no handler is set (np.seterrcall)")
            if callable(handler):
                handler(kind.replace("over", "overflow").replace("under", "underflow"), bit)
            else:
                handler.write("Warning: %s\n" % msg)
        elif action == "print":
            print("Warning:", msg)
        elif action == "log":
            handler = np.geterrcall()
            if handler is not None:
                handler.write("Warning: %s\n" % msg)
