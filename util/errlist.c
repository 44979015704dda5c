/* Error list of "FILE: KEY: reason" lines (util/errlist.h). */
#include "util/errlist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends one line. On allocation failure the line is dropped (the caller
 * still sees the parse fail through its return code). Any thread, one list
 * per thread. */
void ms_errlist_add(ms_errlist_t *e, const char *file, const char *key, const char *fmt, ...)
{
    char reason[1024];
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (r < 0)
        reason[0] = '\0';
    if (!e)
        return;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        char **p = realloc(e->lines, cap * sizeof *p);
        if (!p)
            return;
        e->lines = p;
        e->cap = cap;
    }
    char *line = NULL;
    if (asprintf(&line, "%s: %s: %s", file && *file ? file : "-", key && *key ? key : "(root)",
                 reason) < 0)
        return;
    e->lines[e->n++] = line;
}

void ms_errlist_free(ms_errlist_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->lines[i]);
    free(e->lines);
    e->lines = NULL;
    e->n = e->cap = 0;
}
