/* Error list: each entry is one "FILE: KEY: reason" line (config and stream
 * file validation, `--check-config`; docs/config.md "Errors").
 *
 * Ownership: the list owns its lines; ms_errlist_free releases them (the
 * struct itself is the caller's, zero-initialised before first use).
 * Threads: any, one list per thread. */
#ifndef MS_UTIL_ERRLIST_H
#define MS_UTIL_ERRLIST_H

#include <stddef.h>

typedef struct {
    char **lines;
    size_t n, cap;
} ms_errlist_t;

/* Appends one line ("-" for an empty file, "(root)" for an empty key). On
 * allocation failure the line is dropped (the caller still sees the parse
 * fail through its return code). e may be NULL (no-op). */
void ms_errlist_add(ms_errlist_t *e, const char *file, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Frees the lines and empties the list (reusable). NULL is a no-op. */
void ms_errlist_free(ms_errlist_t *e);

#endif
