/* Redirects of the RTSP server (media/rtsp/server.h): the Location of a
 * request for a stream that another server serves and the 302 response
 * (RFC 2326 section 11.3.3 "302 Moved Temporarily", section 12.25
 * Location; RFC 7826 section 13.3.4 says the same for RTSP 2.0). Pure. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "media/rtsp/msg.h"
#include "media/rtsp/server.h"

int ms_rtsp_redirect_location(const char *base, const char *request_uri, char *out, size_t cap)
{
    if (!base || !request_uri || !out || !cap)
        return -EINVAL;
    size_t bl = strlen(base);
    if (bl < 8 || strncmp(base, "rtsp://", 7) != 0 || base[bl - 1] == '/')
        return -EINVAL;
    for (size_t i = 0; i < bl; i++)
        if ((unsigned char)base[i] <= 0x20 || base[i] == 0x7f)
            return -EINVAL;
    ms_rtsp_target_t *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    int r = ms_rtsp_target_parse(request_uri, t);
    if (r < 0) {
        free(t);
        return -EINVAL;
    }
    /* t->base is "[scheme://authority]/path-to-the-stream": keep the path */
    const char *path = t->base;
    const char *sep = strstr(path, "://");
    if (sep)
        path = sep + 3 + strcspn(sep + 3, "/");
    size_t pl = strlen(path), ql = strlen(t->query);
    size_t need = bl + pl + (ql ? 1 + ql : 0);
    if (need >= cap) {
        free(t);
        return -ENAMETOOLONG;
    }
    memcpy(out, base, bl);
    memcpy(out + bl, path, pl);
    if (ql) {
        out[bl + pl] = '?';
        memcpy(out + bl + pl + 1, t->query, ql);
    }
    out[need] = '\0';
    free(t);
    return (int)need;
}

int ms_rtsp_build_redirect(ms_buf_t *out, long cseq, const char *location)
{
    if (!location || !location[0] || strpbrk(location, "\r\n"))
        return -EINVAL;
    ms_buf_t hdr = MS_BUF_INIT;
    ms_buf_printf(&hdr, "Location: %s\r\nServer: mediaserver\r\n", location);
    ms_buf_append(&hdr, "", 1); /* NUL: extra is a C string */
    int r = hdr.err ? -ENOMEM
                    : ms_rtsp_build_response(out, 302, NULL, cseq, NULL, (const char *)hdr.data,
                                             NULL, NULL, 0);
    ms_buf_free(&hdr);
    return r;
}
