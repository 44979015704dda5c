#include "util/procfs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t ms_procfs_value(const char *path, const char *key)
{
    char line[256];
    size_t kl = strlen(key);
    uint64_t v = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtoull(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}
