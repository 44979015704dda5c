/* Reading proc(5) files of the form "Key:   value [unit]" (/proc/self/status,
 * /proc/meminfo). */
#ifndef MS_UTIL_PROCFS_H
#define MS_UTIL_PROCFS_H

#include <stdint.h>

/* The number after `key:` on its line of the file at path (memory fields of
 * these files are in kB); 0 when the file or the key is missing. Opens and
 * reads the file each call. Any thread. */
uint64_t ms_procfs_value(const char *path, const char *key);

#endif
