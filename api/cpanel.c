/* The web control panel's static files (docs/cpanel.md): GET /cpanel/...
 * from the directory cpanel_dir (default: the build tree's copy next to the
 * binary, else the install path), and GET / -> 302 /cpanel/.
 *
 * Every answer carries a strict Content-Security-Policy (W3C CSP Level 3):
 * the panel has no inline script or style, so 'self' is all it needs.
 * Validators: a strong ETag (RFC 9110 section 8.8.3) from the file's size
 * and modification time; If-None-Match -> 304 (RFC 9110 section 13.1.2).
 * Caching (RFC 9111 section 5.2.2): files under vendor/ have the package
 * version in their path and never change (immutable, one year); everything
 * else (index.html, the app's modules) is revalidated on every use. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "util/blob.h"
#include "util/log.h"

#ifndef MS_CPANEL_INSTALL_DIR
#define MS_CPANEL_INSTALL_DIR "/usr/share/mediaserver/cpanel"
#endif

#define CPANEL_FILE_MAX (8u << 20) /* largest file served (hls.js is ~0.5 MB) */

const char ms_cpanel_csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/* Pure. 0 when segs (the decoded path segments after "cpanel") name a
 * file the panel may serve: 1..6 segments of [A-Za-z0-9._-], none starting
 * with '.' (no "..", no hidden files), each at most 100 bytes; else
 * -EINVAL. nsegs 0 means index.html. Any thread. */
int ms_cpanel_path_ok(char *const *segs, int nsegs)
{
    if (nsegs < 0 || nsegs > 6)
        return -EINVAL;
    for (int i = 0; i < nsegs; i++) {
        const char *s = segs[i];
        size_t n = strlen(s);
        if (n == 0 || n > 100 || s[0] == '.' ||
            strspn(s, "abcdefghijklmnopqrstuvwxyz"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789._-") != n)
            return -EINVAL;
    }
    return 0;
}

/* Pure. The Content-Type for a file name by its extension (static string),
 * NULL for a type the panel does not serve. Any thread. */
const char *ms_cpanel_ctype(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    if (!dot)
        return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

static char g_default_dir[PATH_MAX];
static pthread_once_t g_default_once = PTHREAD_ONCE_INIT;

/* The build tree's copy next to the binary when it has an index.html,
 * else the install path. */
static void default_dir_init(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char probe[PATH_MAX + 32];
            snprintf(probe, sizeof probe, "%s/cpanel/index.html", exe);
            if (access(probe, R_OK) == 0) {
                snprintf(g_default_dir, sizeof g_default_dir, "%.*s/cpanel",
                         (int)(sizeof g_default_dir - 8), exe);
                return;
            }
        }
    }
    snprintf(g_default_dir, sizeof g_default_dir, "%s", MS_CPANEL_INSTALL_DIR);
}

/* The directory the panel is served from (static storage). Any thread. */
const char *ms_cpanel_dir(const ms_node_cfg_t *cfg)
{
    if (cfg && cfg->cpanel_dir[0])
        return cfg->cpanel_dir;
    pthread_once(&g_default_once, default_dir_init);
    return g_default_dir;
}

static enum MHD_Result reply_redirect(ms_req_t *r, const char *to)
{
    const char *const hdrs[] = {"Location", to, "Cache-Control", "no-cache", NULL};
    return ms_api_reply_text(r, 302, "text/plain; charset=utf-8", "", 0, hdrs);
}

static enum MHD_Result not_found(ms_req_t *r)
{
    static const char *const hdrs[] = {"Content-Security-Policy", ms_cpanel_csp, NULL};
    return ms_api_reply_error(r, 404, "not found", NULL, hdrs);
}

/* 1 when the If-None-Match list (RFC 9110 section 13.1.2) matches etag. */
static int etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return 0;
    size_t el = strlen(etag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2; /* weak comparison for If-None-Match */
        if (strncmp(p, etag, el) == 0 && (p[el] == '\0' || p[el] == ',' || p[el] == ' '))
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

enum MHD_Result ms_api_root(ms_req_t *r)
{
    return reply_redirect(r, "/cpanel/");
}

enum MHD_Result ms_api_cpanel(ms_req_t *r)
{
    /* "/cpanel" -> "/cpanel/": the page's relative URLs need the slash. */
    if (r->nsegs == 1 && (r->parts.path_len == 0 || r->parts.path[r->parts.path_len - 1] != '/'))
        return reply_redirect(r, "/cpanel/");
    char *const *segs = r->segs + 1;
    int nsegs = r->nsegs - 1;
    if (ms_cpanel_path_ok(segs, nsegs) < 0)
        return not_found(r);
    const char *name = nsegs ? segs[nsegs - 1] : "index.html";
    const char *ctype = ms_cpanel_ctype(name);
    if (!ctype)
        return not_found(r);

    char path[PATH_MAX];
    size_t used = (size_t)snprintf(path, sizeof path, "%s", ms_cpanel_dir(ms_api_cfg()));
    for (int i = 0; i < nsegs && used < sizeof path; i++)
        used += (size_t)snprintf(path + used, sizeof path - used, "/%s", segs[i]);
    if (!nsegs && used < sizeof path)
        used += (size_t)snprintf(path + used, sizeof path - used, "/index.html");
    if (used >= sizeof path)
        return not_found(r);

    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > CPANEL_FILE_MAX) {
        if (fd >= 0)
            close(fd);
        return not_found(r);
    }
    char etag[64];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st.st_mtim.tv_nsec);
    const char *cache = nsegs > 1 && strcmp(segs[0], "vendor") == 0
                            ? "public, max-age=31536000, immutable"
                            : "no-cache";
    const char *const hdrs[] = {"ETag",
                                etag,
                                "Cache-Control",
                                cache,
                                "Content-Security-Policy",
                                ms_cpanel_csp,
                                "X-Content-Type-Options",
                                "nosniff",
                                "Referrer-Policy",
                                "no-referrer",
                                "X-Frame-Options",
                                "DENY",
                                NULL};
    const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
    if (etag_matches(inm, etag)) {
        close(fd);
        return ms_api_reply_text(r, 304, NULL, "", 0, hdrs);
    }
    ms_blob_t *b = ms_blob_new(NULL, (size_t)st.st_size);
    size_t got = 0;
    while (b && got < (size_t)st.st_size) {
        ssize_t n = read(fd, b->data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!b || got != (size_t)st.st_size) {
        if (b)
            ms_blob_unref(b);
        return ms_api_reply_error(r, 500, "cannot read the panel's file", NULL, NULL);
    }
    return ms_api_reply_blob(r, 200, ctype, b, hdrs);
}
