/* Request-target parsing for the RTSP server (media/rtsp/server.h).
 * RFC 2326 section 3.2 (rtsp URL), RFC 3986 section 3 (components). Pure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "media/rtsp/server.h"
#include "media/rtsp/url.h"

/* "trackID=N" (case-insensitive key) -> N, else -1. */
static int track_of(const char *s, size_t len)
{
    static const char key[] = "trackID=";
    size_t kl = sizeof key - 1;
    if (len <= kl || len > kl + 3 || strncasecmp(s, key, kl) != 0)
        return -1;
    int v = 0;
    for (size_t i = kl; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int ms_rtsp_target_parse(const char *uri, ms_rtsp_target_t *out)
{
    memset(out, 0, sizeof *out);
    out->track = -1;
    if (!uri || strcmp(uri, "*") == 0)
        return -ENOENT;
    size_t ul = strlen(uri);
    if (ul >= sizeof out->base)
        return -EINVAL;
    for (size_t i = 0; i < ul; i++)
        if ((unsigned char)uri[i] <= 0x20 || uri[i] == 0x7f)
            return -EINVAL;
    const char *path = uri;
    size_t prefix = 0;
    const char *sep = strstr(uri, "://");
    if (sep) {
        size_t sl = (size_t)(sep - uri);
        if (!((sl == 4 && strncasecmp(uri, "rtsp", 4) == 0) ||
              (sl == 5 && strncasecmp(uri, "rtsps", 5) == 0)))
            return -EINVAL;
        path = sep + 3;
        path += strcspn(path, "/?#");
        prefix = (size_t)(path - uri);
    } else if (uri[0] != '/') {
        return -EINVAL;
    }
    size_t plen = strcspn(path, "?#");
    const char *q = path[plen] == '?' ? path + plen + 1 : NULL;

    /* path segments */
    const char *seg = path;
    const char *pend = path + plen;
    int nseg = 0;
    size_t stream_end = 0;
    while (seg < pend) {
        while (seg < pend && *seg == '/')
            seg++;
        if (seg >= pend)
            break;
        const char *e = memchr(seg, '/', (size_t)(pend - seg));
        if (!e)
            e = pend;
        size_t sl = (size_t)(e - seg);
        if (nseg == 0) {
            if (ms_rtsp_url_pct_decode(seg, sl, out->stream, sizeof out->stream) <= 0)
                return -EINVAL;
            if (strchr(out->stream, '/'))
                return -EINVAL;
            stream_end = (size_t)(e - uri);
        } else {
            int t = track_of(seg, sl);
            if (t >= 0)
                out->track = t;
        }
        nseg++;
        seg = e;
    }
    if (nseg == 0)
        return -ENOENT;
    (void)prefix;
    memcpy(out->base, uri, stream_end);
    out->base[stream_end] = '\0';

    /* query, minus a "/trackID=N" (or "/...") a client appended to it */
    if (q) {
        size_t ql = strcspn(q, "#");
        const char *slash = memchr(q, '/', ql);
        if (slash) {
            const char *tail = slash + 1;
            size_t tl = ql - (size_t)(tail - q);
            int t = track_of(tail, tl);
            if (t >= 0)
                out->track = t;
            ql = (size_t)(slash - q);
        }
        if (ql >= sizeof out->query)
            return -EINVAL;
        memcpy(out->query, q, ql);
        out->query[ql] = '\0';
    }
    return 0;
}
