/*
 * chunk_py.h - chunks seen from Python: conversion of Python values and
 * NumPy arrays to chunks and back, and the queue of Python owners released
 * by threads that do not hold the GIL.
 *
 * Every function needs the GIL unless its comment says otherwise.
 */
#ifndef CD_CHUNK_PY_H
#define CD_CHUNK_PY_H

#include "python/cdpy.h"
#include "core/chunk.h"

/* NumPy dtype -> cd_dtype: 0, or -1 with TypeError listing the supported
 * dtypes (object, str, datetime, float16, longdouble... are refused). */
int cd_dtype_from_descr(PyArray_Descr *d, cd_dtype *out);
/* cd_dtype -> NumPy type number (NPY_FLOAT64 ...). */
int cd_dtype_typenum(cd_dtype dt);

/*
 * A new chunk reference for a value a C kernel is handed: an ndarray (viewed
 * without a copy when aligned, native-endian, C-contiguous and of a supported
 * dtype; else copied once into that form), a NumPy scalar, a Python
 * bool/int/float/complex (0-d chunk of bool/int64/float64/complex128; ints
 * that do not fit int64 but fit uint64 give uint64), or any array-like
 * NumPy accepts.  NULL with TypeError naming `what` and the offending type
 * or dtype (ValueError for arrays with more than CD_MAXDIMS dimensions).
 */
cd_chunk *cd_chunk_from_object(PyObject *obj, const char *what);
/* The same, naming the value "argument <argno> of kernel '<kernel>'"
 * (argno counts from 1); the message is only formatted on error. */
cd_chunk *cd_chunk_from_object_arg(PyObject *obj, const char *kernel, int argno);

/* A new writeable ndarray sharing the chunk's memory; its base holds a chunk
 * reference (or, for a chunk viewing an ndarray, it is a view of that array). */
PyObject *cd_chunk_as_array(cd_chunk *c);
/* As cd_chunk_as_array, but a 0-d chunk becomes a NumPy scalar. */
PyObject *cd_chunk_as_result(cd_chunk *c);

/*
 * The owner release queue.  cd_py_release_later is the hook installed as
 * cd_chunk_owner_release: callable from any thread without the GIL, it
 * queues one reference of `obj` (a PyObject*) to be dropped later; it never
 * fails (if memory runs out it uses a reserve, then waits for a drain).
 * Called from within cd_chunk_decref_py (GIL held) it releases at once.
 */
void cd_py_release_later(void *obj);
/* GIL held: Py_DECREF everything queued; returns how many. */
Py_ssize_t cd_py_drain_releases(void);
/* Number queued now (any thread, no GIL; a relaxed snapshot). */
Py_ssize_t cd_py_pending_releases(void);
/* GIL held: drop a chunk reference; a dying view releases its owner at once. */
void cd_chunk_decref_py(cd_chunk *c);

/* For an ndarray viewing a shared file mapping (np.memmap 'r', 'r+', 'w+'):
 * drop the pages it spans from the process (they stay in the page cache).
 * 1 if it was such a view, else 0; never raises.  GIL held. */
int cd_py_drop_mapped(PyObject *obj);
/* 1 if ndarray obj views (through its bases) a chunk made by cdask, whose size
 * and spilled flag are stored; else 0.  Never raises. */
int cd_py_chunk_base(PyObject *obj, int64_t *nbytes, int *spilled);
/* 1 if obj is an ndarray viewing a shared file mapping; never raises. */
int cd_py_is_mapped(PyObject *obj);

#endif /* CD_CHUNK_PY_H */
