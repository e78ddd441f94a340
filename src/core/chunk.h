/*
 * chunk.h - the buffers that flow between C kernels.
 *
 * A chunk is a reference-counted, C-contiguous, aligned, native-byte-order
 * n-dimensional buffer.  Chunks are made and freed by worker threads without
 * the GIL.  A chunk either owns its memory (malloc'd, freed with it) or views
 * memory kept alive by an owner object (a NumPy array handed over by a Python
 * task).  Releasing such an owner needs the GIL, so the last cd_chunk_decref
 * hands the owner to cd_chunk_owner_release, a hook the glue installs: it
 * releases at once when the GIL is held, or queues the release otherwise.
 *
 * Python sees a chunk as a NumPy array whose base object holds one chunk
 * reference (see chunk_py.h); no copy is made either way.
 */
#ifndef CD_CHUNK_H
#define CD_CHUNK_H

#include "core/common.h"
#include "core/dtypes.h"

#include <assert.h>

#define CD_MAXDIMS 32


extern const int cd_dtype_itemsize[CD_NDTYPES];
extern const char *const cd_dtype_name[CD_NDTYPES];   /* NumPy's names: "float64" ... */

/*
 * A chunk is shared by the threads that hold references to it.  refs is
 * atomic; shape, dtype, owner and the bytes are fixed once the chunk is
 * handed to another thread (a task's result is published under the pool's
 * lock) and only read afterwards.  data and spilled change once, in
 * cd_chunk_spill, which keeps the address and the bytes (see there) and is
 * called by one thread per chunk.
 */
typedef struct cd_chunk {
    long refs;                    /* atomic: __atomic builtins; never < 0 */
    cd_dtype dtype;
    int ndim;
    int64_t size;                 /* number of elements */
    int64_t nbytes;               /* size * itemsize */
    int64_t shape[CD_MAXDIMS];
    void *data;                   /* aligned to 64 bytes when owned */
    void *owner;                  /* NULL: data is ours; else released via hook */
    int spilled;                  /* data was moved to a temporary file (cd_chunk_spill) */
    int mapped;                   /* data lies in a shared mapping of a file (np.memmap
                                     'r', 'r+', 'w+'): pages read or written may be
                                     dropped from the process (cd_chunk_drop_pages) */
    _Alignas(16) unsigned char small[64];   /* storage for 0-d and tiny chunks (reduction partials) */
} cd_chunk;

/*
 * Allocate a chunk of `dtype` and `shape` (ndim <= CD_MAXDIMS).  Memory is
 * uninitialised.  On failure returns NULL and fills err (CD_ENOMEM,
 * CD_EVALUE for a bad ndim, CD_EOVERFLOW).  Needs no GIL.  Refcount is 1.
 */
cd_chunk *cd_chunk_new(cd_dtype dtype, int ndim, const int64_t *shape, cd_err *err);

/* A chunk that views `data` kept alive by `owner` (released through the hook
 * when the chunk dies).  On failure returns NULL; owner is not released. */
cd_chunk *cd_chunk_view(cd_dtype dtype, int ndim, const int64_t *shape,
                        void *data, void *owner, cd_err *err);

/* Take one more reference on a live chunk (never fails, any thread). */
static inline void cd_chunk_incref(cd_chunk *c)
{
#ifndef NDEBUG
    long before = __atomic_fetch_add(&c->refs, 1, __ATOMIC_RELAXED);
    assert(before > 0 && "a reference taken on a dead chunk");
#else
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
#endif
}

/* Cap the bytes of freed big mappings kept for reuse (at most the built-in
 * CD_CACHE_BYTES; entries past the cap are unmapped now). */
void cd_chunk_cache_cap(size_t cap);

/* "(3,4)", "(5,)", "()" into buf: sep goes between sizes ("," as NumPy's
 * broadcast messages write shapes, ", " as a tuple's repr).  Returns the
 * length written; a shape too long for cap ends in "...". */
size_t cd_fmt_shape(char *buf, size_t cap, int ndim, const int64_t *shape, const char *sep);

/* For a mapped chunk: drop the whole pages of [p, p + n) from the process
 * (MADV_DONTNEED: they stay in the page cache, dirty ones are written back;
 * a later access faults them in again), so that streaming over a file
 * larger than memory keeps the resident set small.  No-op otherwise. */
void cd_chunk_drop_pages(const cd_chunk *c, const void *p, int64_t n);

/* For a mapped chunk: ask the kernel to read [p, p + n) ahead (MADV_WILLNEED),
 * so a task's block streams in while it works on its start.  No-op otherwise. */
void cd_chunk_will_need(const cd_chunk *c, const void *p, int64_t n);

/*
 * Spill an owned chunk of at least 1 MiB to disk: its bytes are written to
 * an unnamed temporary file in directory `dir` (O_TMPFILE; else a named file
 * unlinked at once: either way nothing is left behind, whatever happens to
 * the process), and the file is mapped over the chunk's anonymous memory AT
 * THE SAME ADDRESS (MAP_FIXED), which returns that memory to the system.
 * The data pointer does not change and the bytes are the same before and
 * after, so kernels reading the chunk meanwhile are unaffected; the chunk
 * must not be written to.  Later reads fault the pages back in from the page
 * cache or the disk; the mapping goes when the chunk is freed.  Space is
 * reserved before writing (posix_fallocate), so a full disk is an error, not
 * SIGBUS.  Call it from one thread at a time per chunk.  0, or a negative
 * CD_E* code with err naming the directory (the chunk is then unchanged).
 */
int cd_chunk_spill(cd_chunk *c, const char *dir, cd_err *err);

/* Bytes of chunks spilled to disk and not yet freed. */
int64_t cd_chunk_spilled_bytes(void);

/* Drop a reference; frees the chunk at zero (owner goes to the hook). */
void cd_chunk_decref(cd_chunk *c);

/* Installed by the glue; called with an owner when its last chunk dies. */
extern void (*cd_chunk_owner_release)(void *owner);

/* Total bytes of chunk memory allocated by cdask and not yet freed. */
int64_t cd_chunk_live_bytes(void);

#endif /* CD_CHUNK_H */
