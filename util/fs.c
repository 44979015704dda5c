/* File system helpers (util/fs.h). */
#include "util/fs.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

int ms_mkdir_p(const char *path, size_t skip, mode_t mode)
{
    char d[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof d)
        return -ENAMETOOLONG;
    if (len == 0)
        return -ENOENT;
    memcpy(d, path, len + 1);
    if (skip >= len)
        skip = 0;
    for (char *p = d + skip + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(d, mode) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(d, mode) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(d, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}
