/*
 * region.c - strided file regions through pread/pwrite (interface:
 * region.h).  Pure C.
 *
 * Design.  The region is walked as rows of the last axis with an index
 * counter over the other axes.  Before reading more than one row the whole
 * span is announced with posix_fadvise(WILLNEED): rows far apart defeat the
 * kernel's readahead, and pread after pread would wait for the disk a few
 * KiB at a time; announced, the span is read in big sequential requests and
 * the next slabs of the same rows come from the page cache.
 */
#include "io/region.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

int cd_region_io(const char *path, int writing, int64_t offset, int nd, const int64_t *dims,
                 const int64_t *strides, char *buf)
{
    int64_t idx[CD_REGION_MAXDIMS], nruns = 1, runlen;
    char *dst = buf;
    int fd, err = 0;

    if (nd < 1 || nd > CD_REGION_MAXDIMS)
        return EINVAL;
    runlen = dims[nd - 1] * strides[nd - 1];
    for (int k = 0; k < nd - 1; k++)
        nruns *= dims[k];
    fd = open(path, (writing ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return errno;
    if (!writing && nruns > 1) {
        off_t span = (off_t)runlen;
        for (int k = 0; k < nd - 1; k++)
            span += (off_t)((dims[k] - 1) * strides[k]);
        (void)posix_fadvise(fd, (off_t)offset, span, POSIX_FADV_WILLNEED);
    }
    memset(idx, 0, sizeof(idx));
    for (int64_t i = 0; i < nruns && !err; i++) {
        off_t at = (off_t)offset;
        int64_t done = 0;
        for (int k = 0; k < nd - 1; k++)
            at += (off_t)(idx[k] * strides[k]);
        while (done < runlen) {
            ssize_t r = writing ? pwrite(fd, dst + done, (size_t)(runlen - done), at + done)
                                : pread(fd, dst + done, (size_t)(runlen - done), at + done);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                err = r < 0 ? errno : EIO;     /* 0: the file is shorter than said */
                break;
            }
            done += r;
        }
        dst += runlen;
        for (int k = nd - 2; k >= 0; k--) {
            if (++idx[k] < dims[k])
                break;
            idx[k] = 0;
        }
    }
    close(fd);
    return err;
}
