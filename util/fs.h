/* File system helpers shared by the layers that write files (the DVR
 * archive, the node's data directory).
 *
 * Threads: any; blocking system calls (call from a worker or at startup,
 * never from a loop that serves clients). */
#ifndef MS_UTIL_FS_H
#define MS_UTIL_FS_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p: creates the directory path and every missing parent, each new
 * one with mode (before the umask). The first `skip` bytes of path name a
 * directory the caller knows to exist (0: start at the root); parents inside
 * it are not tried again. Returns 0 when path is a directory afterwards,
 * -ENOTDIR when it exists but is no directory, -ENAMETOOLONG when path is
 * longer than PATH_MAX - 1, else the negative errno of the mkdir that
 * failed. */
int ms_mkdir_p(const char *path, size_t skip, mode_t mode);

#endif
