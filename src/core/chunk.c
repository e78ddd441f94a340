/*
 * chunk.c - reference-counted n-dimensional buffers (interface: chunk.h).
 *
 * Design.  A chunk is one malloc'd header (cd_chunk) plus its data.  Data is
 *   - in the header's `small` array for 0-d chunks and any chunk of at most
 *     sizeof(small) bytes: one allocation per chunk, which is what the
 *     scheduler's reduction trees of 0-d sums need;
 *   - otherwise a separate 64-byte aligned block from posix_memalign, or,
 *     from CD_MMAP_MIN bytes on, its own anonymous mapping (advised to use
 *     transparent huge pages from 4 MiB).  Mapping big blocks directly means
 *     freeing one gives its pages back to the system at once: glibc would
 *     otherwise keep freed multi-megabyte blocks in its heap, and resident
 *     memory would stay at the peak of a run instead of following the bytes
 *     the scheduler actually holds;
 *   - or, for a view, memory kept alive by an opaque owner (a NumPy array).
 * The reference count is atomic, so any thread may drop a reference without
 * the GIL.  When the last reference of a view goes, its owner is passed to
 * the hook cd_chunk_owner_release (installed by the Python glue, which
 * releases the owner at once or queues it until the GIL is held).
 *
 * Reuse of big blocks.  A fresh mapping costs a page fault per page on first
 * touch: writing a new 64 MiB block took 6.4 ms where filling one already
 * touched took 2.3 ms (ones kernel vs np.copyto, this machine), and an add
 * kernel's 64 MiB output 9.2 ms vs 4.1 ms.  So the last few freed mappings
 * (at most CD_CACHE_N, CD_CACHE_BYTES in all) are kept and handed to the
 * next block of the same page-rounded size, already faulted in.  The cache
 * is small so that resident memory still follows the bytes held, and a
 * run with a spill limit caps it at an eighth of that limit while it runs
 * (cd_chunk_cache_cap): under a tight budget the kept blocks would be
 * resident memory the budget does not see.
 *
 * cd_chunk_live_bytes counts the heap data blocks (those of more than
 * sizeof(small) bytes) that cdask allocated and has not freed yet.  Data held
 * in `small` lives and dies with the header and is not counted, which keeps
 * the hot path of tiny chunks free of a shared atomic counter.
 *
 * No Python here: this file runs on worker threads.
 */
#include "core/chunk.h"

#include <assert.h>

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Blocks this big get a mapping of their own (see above). */
#define CD_MMAP_MIN ((int64_t)1 << 20)
#define CD_CACHE_N 4                          /* freed mappings kept for reuse */
#define CD_CACHE_BYTES ((size_t)128 << 20)    /* ...and their bytes at most */

const int cd_dtype_itemsize[CD_NDTYPES] = {
#define X(id, name, sfx, ctype, kind) [CD_##id] = (int)sizeof(ctype),
    CD_DTYPE_TABLE(X)
#undef X
};

const char *const cd_dtype_name[CD_NDTYPES] = {
#define X(id, name, sfx, ctype, kind) [CD_##id] = name,
    CD_DTYPE_TABLE(X)
#undef X
};

void (*cd_chunk_owner_release)(void *owner) = NULL;

static int64_t live_bytes = 0;   /* atomic */

#define CD_CHUNK_ALIGN 64
#define CD_HUGEPAGE_MIN ((int64_t)4 << 20)

int64_t cd_chunk_live_bytes(void)
{
    return __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
}

/*
 * Validate dtype/ndim/shape, fill the header's descriptive fields.
 * Returns 0 or a negative code (err filled).
 */
static int fill_header(cd_chunk *c, cd_dtype dtype, int ndim, const int64_t *shape, cd_err *err)
{
    int64_t size = 1, nbytes;
    if ((int)dtype < 0 || dtype >= CD_NDTYPES)
        return cd_err_set(err, CD_EVALUE, "cdask: invalid chunk dtype code %d", (int)dtype);
    if (ndim < 0 || ndim > CD_MAXDIMS)
        return cd_err_set(err, CD_EVALUE, "cdask: a chunk has 0 to %d dimensions, not %d",
                          CD_MAXDIMS, ndim);
    if (ndim > 0 && shape == NULL)
        return cd_err_set(err, CD_EVALUE, "cdask: chunk shape missing");
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return cd_err_set(err, CD_EVALUE, "cdask: negative dimension %lld in a chunk shape",
                              (long long)shape[i]);
        if (__builtin_mul_overflow(size, shape[i], &size))
            return cd_err_set(err, CD_EOVERFLOW, "cdask: chunk size overflows");
        c->shape[i] = shape[i];
    }
    if (__builtin_mul_overflow(size, (int64_t)cd_dtype_itemsize[dtype], &nbytes) ||
        (uint64_t)nbytes > (uint64_t)SIZE_MAX / 2)
        return cd_err_set(err, CD_EOVERFLOW, "cdask: chunk of %lld %s elements is too large",
                          (long long)size, cd_dtype_name[dtype]);
    c->dtype = dtype;
    c->ndim = ndim;
    c->size = size;
    c->nbytes = nbytes;
    c->mapped = 0;
    c->spilled = 0;
    return 0;
}

size_t cd_fmt_shape(char *buf, size_t cap, int ndim, const int64_t *shape, const char *sep)
{
    size_t len = 0;
    int n;
    if (cap == 0)
        return 0;
    n = snprintf(buf, cap, "(");
    len = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < ndim && len < cap; i++) {
        n = snprintf(buf + len, cap - len, "%s%lld", i ? sep : "", (long long)shape[i]);
        if (n < 0)
            break;
        len += (size_t)n;
    }
    if (len < cap) {
        n = snprintf(buf + len, cap - len, ndim == 1 ? ",)" : ")");
        len += n > 0 ? (size_t)n : 0;
    }
    if (len >= cap) {
        if (cap > 4)
            memcpy(buf + cap - 4, "...", 4);
        len = cap - 1;
    }
    return len;
}

void cd_chunk_drop_pages(const cd_chunk *c, const void *p, int64_t n)
{
    static long page;
    uintptr_t lo, hi;
    if (c == NULL || !c->mapped || n <= 0)
        return;
    if (page == 0) {
        long ps = sysconf(_SC_PAGESIZE);
        __atomic_store_n(&page, ps > 0 ? ps : 4096, __ATOMIC_RELAXED);
    }
    /* only pages wholly inside the range, and inside the chunk */
    if ((const char *)p < (const char *)c->data)
        return;
    if ((const char *)p + n > (const char *)c->data + c->nbytes)
        n = (const char *)c->data + c->nbytes - (const char *)p;
    lo = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    hi = ((uintptr_t)p + (uintptr_t)n) & ~((uintptr_t)page - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void cd_chunk_will_need(const cd_chunk *c, const void *p, int64_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t lo, hi;
    if (c == NULL || !c->mapped || n <= 0 || page <= 0)
        return;
    if ((const char *)p < (const char *)c->data)
        return;
    if ((const char *)p + n > (const char *)c->data + c->nbytes)
        n = (const char *)c->data + c->nbytes - (const char *)p;
    lo = (uintptr_t)p & ~((uintptr_t)page - 1);
    hi = (uintptr_t)p + (uintptr_t)n;
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_WILLNEED);
}

static struct {
    pthread_mutex_t mu;
    void *p[CD_CACHE_N];
    size_t len[CD_CACHE_N];
    int n;
    size_t bytes;
} cache = {PTHREAD_MUTEX_INITIALIZER, {0}, {0}, 0, 0};
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static size_t cache_cap = CD_CACHE_BYTES;     /* under cache.mu */

static void cache_prepare(void) { pthread_mutex_lock(&cache.mu); }
static void cache_parent(void) { pthread_mutex_unlock(&cache.mu); }
static void cache_child(void) { pthread_mutex_unlock(&cache.mu); }
static void cache_init(void) { pthread_atfork(cache_prepare, cache_parent, cache_child); }

static size_t map_len(int64_t nbytes)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pg = page > 0 ? (size_t)page : 4096;
    return ((size_t)nbytes + pg - 1) / pg * pg;
}

void cd_chunk_cache_cap(size_t cap)
{
    void *drop[CD_CACHE_N];
    size_t dlen[CD_CACHE_N];
    int nd = 0;
    pthread_once(&cache_once, cache_init);
    pthread_mutex_lock(&cache.mu);
    cache_cap = cap < CD_CACHE_BYTES ? cap : CD_CACHE_BYTES;
    while (cache.bytes > cache_cap && cache.n > 0) {
        cache.n--;
        drop[nd] = cache.p[cache.n];
        dlen[nd++] = cache.len[cache.n];
        cache.bytes -= cache.len[cache.n];
    }
    pthread_mutex_unlock(&cache.mu);
    for (int k = 0; k < nd; k++)
        munmap(drop[k], dlen[k]);
}

/* A cached mapping of exactly len bytes, or NULL. */
static void *cache_take(size_t len)
{
    void *p = NULL;
    pthread_once(&cache_once, cache_init);
    pthread_mutex_lock(&cache.mu);
    for (int k = 0; k < cache.n; k++) {
        if (cache.len[k] == len) {
            p = cache.p[k];
            cache.bytes -= len;
            cache.p[k] = cache.p[cache.n - 1];
            cache.len[k] = cache.len[cache.n - 1];
            cache.n--;
            break;
        }
    }
    pthread_mutex_unlock(&cache.mu);
    return p;
}

/* Keep a freed mapping for reuse, or unmap it. */
static void cache_put(void *p, size_t len)
{
    int kept = 0;
    pthread_once(&cache_once, cache_init);
    pthread_mutex_lock(&cache.mu);
    if (cache.n < CD_CACHE_N && cache.bytes + len <= cache_cap) {
        cache.p[cache.n] = p;
        cache.len[cache.n] = len;
        cache.n++;
        cache.bytes += len;
        kept = 1;
    }
    pthread_mutex_unlock(&cache.mu);
    if (!kept)
        munmap(p, len);
}

cd_chunk *cd_chunk_new(cd_dtype dtype, int ndim, const int64_t *shape, cd_err *err)
{
    cd_chunk *c = malloc(sizeof(*c));
    if (c == NULL) {
        cd_err_set(err, CD_ENOMEM, "cdask: out of memory allocating a chunk");
        return NULL;
    }
    if (fill_header(c, dtype, ndim, shape, err) < 0)
        goto fail;
    c->refs = 1;
    c->owner = NULL;
    if (c->nbytes <= (int64_t)sizeof(c->small)) {
        c->data = c->small;
    } else {
        void *p = NULL;
        int reused = 0;
        if (c->nbytes >= CD_MMAP_MIN) {
            p = cache_take(map_len(c->nbytes));
            reused = p != NULL;
            if (p == NULL) {
                p = mmap(NULL, (size_t)c->nbytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED)
                    p = NULL;
            }
        }
        if (p == NULL && c->nbytes >= CD_MMAP_MIN) {
            cd_err_set(err, CD_ENOMEM, "cdask: out of memory allocating a chunk of %lld bytes",
                       (long long)c->nbytes);
            goto fail;
        } else if (p == NULL &&
                   (posix_memalign(&p, CD_CHUNK_ALIGN, (size_t)c->nbytes) != 0 || p == NULL)) {
            cd_err_set(err, CD_ENOMEM, "cdask: out of memory allocating a chunk of %lld bytes",
                       (long long)c->nbytes);
            goto fail;
        }
#ifdef MADV_HUGEPAGE
        /* big blocks come straight from mmap: ask for huge pages, which
         * saves most of the page faults of first touch */
        if (c->nbytes >= CD_HUGEPAGE_MIN && !reused)
            madvise(p, (size_t)c->nbytes, MADV_HUGEPAGE);
#endif
        c->data = p;
        __atomic_add_fetch(&live_bytes, c->nbytes, __ATOMIC_RELAXED);
    }
    return c;
fail:
    free(c);
    return NULL;
}

cd_chunk *cd_chunk_view(cd_dtype dtype, int ndim, const int64_t *shape,
                        void *data, void *owner, cd_err *err)
{
    cd_chunk *c;
    /* owner == NULL means "data is ours" in the header: a view must have one. */
    if (owner == NULL) {
        cd_err_set(err, CD_EINTERNAL, "cdask: a chunk view needs an owner");
        return NULL;
    }
    c = malloc(sizeof(*c));
    if (c == NULL) {
        cd_err_set(err, CD_ENOMEM, "cdask: out of memory allocating a chunk");
        return NULL;
    }
    if (fill_header(c, dtype, ndim, shape, err) < 0) {
        free(c);
        return NULL;
    }
    if (data == NULL && c->size != 0) {
        free(c);
        cd_err_set(err, CD_EINTERNAL, "cdask: a chunk view needs data");
        return NULL;
    }
    c->refs = 1;
    c->data = data != NULL ? data : (void *)c->small;   /* empty: any valid pointer */
    c->owner = owner;
    return c;
}

static int64_t spilled_bytes;

int64_t cd_chunk_spilled_bytes(void)
{
    return __atomic_load_n(&spilled_bytes, __ATOMIC_RELAXED);
}

/* An unnamed temporary file in dir (O_TMPFILE, else mkstemp + unlink); -1. */
static int spill_file(const char *dir)
{
    int fd;
#ifdef O_TMPFILE
    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
#endif
    {
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/.cdask-spill-XXXXXX", dir);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        fd = mkstemp(path);
        if (fd >= 0)
            unlink(path);
        return fd;
    }
}

int cd_chunk_spill(cd_chunk *c, const char *dir, cd_err *err)
{
    long page = sysconf(_SC_PAGESIZE);
    int fd, rc;
    int64_t done = 0, len;
    void *p;
    if (c->owner != NULL || c->spilled || c->nbytes < CD_MMAP_MIN || page <= 0)
        return cd_err_set(err, CD_EVALUE, "cdask: only owned chunks of at least 1 MiB spill");
    len = (c->nbytes + page - 1) / page * page;      /* the whole anonymous mapping */
    fd = spill_file(dir);
    if (fd < 0)
        return cd_err_set(err, CD_EIO, "cdask: cannot make a spill file in %s: %s", dir,
                          strerror(errno));
    rc = posix_fallocate(fd, 0, (off_t)len);
    if (rc != 0) {
        close(fd);
        return cd_err_set(err, CD_EIO, "cdask: cannot reserve %lld bytes to spill in %s: %s",
                          (long long)len, dir, strerror(rc));
    }
    while (done < c->nbytes) {
        ssize_t w = pwrite(fd, (const char *)c->data + done, (size_t)(c->nbytes - done),
                           (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            return cd_err_set(err, CD_EIO, "cdask: writing a spill file in %s failed: %s",
                              dir, strerror(e));
        }
        done += w;
    }
    /* the file replaces the anonymous pages at the same address: readers
     * running meanwhile see the same bytes before and after */
    p = mmap(c->data, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return cd_err_set(err, CD_EIO, "cdask: mapping a spill file in %s failed: %s", dir,
                          strerror(errno));
    __atomic_store_n(&c->spilled, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&c->mapped, 1, __ATOMIC_RELEASE);   /* its pages can be dropped once read */
    __atomic_sub_fetch(&live_bytes, c->nbytes, __ATOMIC_RELAXED);
    __atomic_add_fetch(&spilled_bytes, c->nbytes, __ATOMIC_RELAXED);
    return 0;
}

void cd_chunk_decref(cd_chunk *c)
{
    if (c == NULL)
        return;
    {
        long left = __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
        assert(left >= 0 && "chunk released more often than it was referenced");
        if (left != 0)
            return;
    }
    if (c->owner != NULL) {
        void (*hook)(void *) = __atomic_load_n(&cd_chunk_owner_release, __ATOMIC_ACQUIRE);
        if (hook != NULL)
            hook(c->owner);
    } else if (c->data != (void *)c->small) {
        if (c->spilled)
            __atomic_sub_fetch(&spilled_bytes, c->nbytes, __ATOMIC_RELAXED);
        else
            __atomic_sub_fetch(&live_bytes, c->nbytes, __ATOMIC_RELAXED);
        if (c->nbytes >= CD_MMAP_MIN && !c->spilled)
            cache_put(c->data, map_len(c->nbytes));
        else if (c->nbytes >= CD_MMAP_MIN)
            munmap(c->data, map_len(c->nbytes));
        else
            free(c->data);
    }
    free(c);
}
