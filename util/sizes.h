/* Buffer sizes shared by the layers (NUL included): names and paths as the
 * node config and stream files allow them (docs/config.md). */
#ifndef MS_UTIL_SIZES_H
#define MS_UTIL_SIZES_H

#define MS_NAME_MAX 64   /* node, stream, group names */
#define MS_PATH_MAX 1024 /* absolute paths of the config (data_dir, storage[].path, ...) */
/* The HTTP base URL of a node, "http://" + advertise (a name or [IPv6],
 * under 256 characters) + ":port": where redirects and archive fetches go. */
#define MS_HTTP_BASE_MAX 300

#endif
