/* RTSP/1.0 message framing and header parsing (RFC 2326 sections 4, 6, 7,
 * 10.12 and 12). */
#include "media/rtsp/msg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/clock.h"

void ms_rtsp_parser_init(ms_rtsp_parser_t *p)
{
    memset(p, 0, sizeof *p);
}

void ms_rtsp_parser_free(ms_rtsp_parser_t *p)
{
    free(p->buf);
    memset(p, 0, sizeof *p);
}

static void drop_consumed(ms_rtsp_parser_t *p)
{
    if (p->off == 0)
        return;
    if (p->off < p->len)
        memmove(p->buf, p->buf + p->off, p->len - p->off);
    p->len -= p->off;
    p->off = 0;
    p->scanned = 0;
}

int ms_rtsp_parser_feed(ms_rtsp_parser_t *p, const void *data, size_t len)
{
    if (p->error)
        return p->error;
    drop_consumed(p);
    if (len == 0)
        return 0;
    if (p->len + len > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < p->len + len)
            cap *= 2;
        uint8_t *nb = realloc(p->buf, cap);
        if (!nb)
            return -ENOMEM;
        p->buf = nb;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, data, len);
    p->len += len;
    return 0;
}

static int fail(ms_rtsp_parser_t *p, int err)
{
    p->error = err;
    return err;
}

static int is_tchar(int c)
{
    /* RFC 2326 15.1 token: CHAR except CTLs and tspecials */
    return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* Non-destructive scan of the header block for Content-Length. Returns the
 * length (0 when absent) or a negative errno. */
static long scan_content_length(const uint8_t *b, size_t hend)
{
    size_t i = 0;
    /* skip the start line */
    while (i < hend && b[i] != '\n')
        i++;
    i++;
    while (i < hend) {
        size_t ls = i;
        while (i < hend && b[i] != '\n')
            i++;
        size_t le = i++;
        if (le - ls >= 15 && strncasecmp((const char *)b + ls, "content-length", 14) == 0) {
            size_t j = ls + 14;
            while (j < le && (b[j] == ' ' || b[j] == '\t'))
                j++;
            if (j >= le || b[j] != ':')
                continue;
            j++;
            while (j < le && (b[j] == ' ' || b[j] == '\t'))
                j++;
            long v = 0;
            int digits = 0;
            while (j < le && isdigit(b[j])) {
                v = v * 10 + (b[j] - '0');
                if (v > (long)MS_RTSP_MAX_BODY)
                    return -EMSGSIZE;
                j++;
                digits++;
            }
            while (j < le && (b[j] == ' ' || b[j] == '\t' || b[j] == '\r'))
                j++;
            if (!digits || j != le)
                return -EBADMSG;
            return v;
        }
    }
    return 0;
}

static size_t trim_end(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    return n;
}

/* Parses the start line in place (NUL-terminating its tokens). */
static int parse_start_line(char *line, size_t n, ms_rtsp_msg_t *m)
{
    line[n] = '\0';
    if (n >= 5 && strncmp(line, "RTSP/", 5) == 0) {
        /* Status-Line = RTSP-Version SP Status-Code SP Reason-Phrase (7.1) */
        char *sp = strchr(line, ' ');
        if (!sp || strncmp(line, "RTSP/1.", 7) != 0)
            return -EBADMSG;
        *sp = '\0';
        char *code = sp + 1;
        if (!isdigit((unsigned char)code[0]) || !isdigit((unsigned char)code[1]) ||
            !isdigit((unsigned char)code[2]) || (code[3] != ' ' && code[3] != '\0'))
            return -EBADMSG;
        m->status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
        if (m->status < 100)
            return -EBADMSG;
        m->reason = code[3] ? code + 4 : code + 3;
        m->is_request = 0;
        return 0;
    }
    /* Request-Line = Method SP Request-URI SP RTSP-Version (6.1) */
    char *sp1 = strchr(line, ' ');
    if (!sp1 || sp1 == line)
        return -EBADMSG;
    for (char *q = line; q < sp1; q++)
        if (!is_tchar((unsigned char)*q))
            return -EBADMSG;
    char *uri = sp1 + 1;
    char *sp2 = strchr(uri, ' ');
    if (!sp2 || sp2 == uri || strncmp(sp2 + 1, "RTSP/1.", 7) != 0)
        return -EBADMSG;
    *sp1 = '\0';
    *sp2 = '\0';
    m->is_request = 1;
    m->method = line;
    m->uri = uri;
    return 0;
}

static int parse_message(ms_rtsp_parser_t *p, size_t hend, size_t body_len, ms_rtsp_msg_t *m)
{
    char *b = (char *)p->buf;
    memset(m, 0, sizeof *m);
    size_t i = 0;
    while (i < hend && b[i] != '\n')
        i++;
    size_t first_len = trim_end(b, i);
    int r = parse_start_line(b, first_len, m);
    if (r < 0)
        return r;
    i++;
    size_t w = i; /* write cursor: header strings are compacted in place */
    while (i < hend) {
        size_t ls = i;
        while (i < hend && b[i] != '\n')
            i++;
        size_t le = ls + trim_end(b + ls, i - ls);
        i++;
        if (le == ls)
            break; /* blank line: end of headers */
        for (size_t k = ls; k < le; k++)
            if (b[k] == '\0')
                return -EBADMSG;
        if (b[ls] == ' ' || b[ls] == '\t') {
            /* folded continuation line (RFC 2326 4, RFC 822 3.1.1) */
            if (m->nheaders == 0)
                return -EBADMSG;
            while (ls < le && (b[ls] == ' ' || b[ls] == '\t'))
                ls++;
            if (ls == le)
                continue;
            b[w - 1] = ' ';
            memmove(b + w, b + ls, le - ls);
            w += le - ls;
            b[w++] = '\0';
            continue;
        }
        char *colon = memchr(b + ls, ':', le - ls);
        if (!colon)
            return -EBADMSG;
        size_t nl = trim_end(b + ls, (size_t)(colon - (b + ls)));
        if (nl == 0)
            return -EBADMSG;
        for (size_t k = 0; k < nl; k++)
            if (!is_tchar((unsigned char)b[ls + k]))
                return -EBADMSG;
        size_t vs = (size_t)(colon - b) + 1;
        while (vs < le && (b[vs] == ' ' || b[vs] == '\t'))
            vs++;
        if (m->nheaders >= MS_RTSP_MAX_HEADERS)
            return -EMSGSIZE;
        memmove(b + w, b + ls, nl);
        m->headers[m->nheaders].name = b + w;
        w += nl;
        b[w++] = '\0';
        memmove(b + w, b + vs, le - vs);
        m->headers[m->nheaders].value = b + w;
        w += le - vs;
        b[w++] = '\0';
        m->nheaders++;
    }
    m->body = p->buf + hend;
    m->body_len = body_len;
    return 0;
}

int ms_rtsp_parser_next(ms_rtsp_parser_t *p, ms_rtsp_event_t *ev)
{
    if (p->error)
        return p->error;
    drop_consumed(p);
    /* stray CR/LF between messages are tolerated */
    size_t skip = 0;
    while (skip < p->len && (p->buf[skip] == '\r' || p->buf[skip] == '\n'))
        skip++;
    if (skip) {
        p->off = skip;
        drop_consumed(p);
    }
    if (p->len == 0)
        return 0;
    memset(ev, 0, sizeof *ev);
    if (p->buf[0] == '$') {
        /* RFC 2326 10.12: '$' channel(1) length(2, network order) data */
        if (p->len < 4)
            return 0;
        size_t n = ((size_t)p->buf[2] << 8) | p->buf[3];
        if (p->len < 4 + n)
            return 0;
        ev->type = MS_RTSP_EV_INTERLEAVED;
        ev->channel = p->buf[1];
        ev->data = p->buf + 4;
        ev->len = n;
        p->off = 4 + n;
        return 1;
    }
    if (!isalpha(p->buf[0]))
        return fail(p, -EBADMSG);

    /* find the end of the header block: an empty line */
    size_t lim = p->len < MS_RTSP_MAX_HEADER_BLOCK ? p->len : MS_RTSP_MAX_HEADER_BLOCK;
    size_t hend = 0;
    size_t i = p->scanned;
    for (; i < lim; i++) {
        if (p->buf[i] != '\n')
            continue;
        if (i + 1 < p->len && p->buf[i + 1] == '\n') {
            hend = i + 2;
            break;
        }
        if (i + 2 < p->len && p->buf[i + 1] == '\r' && p->buf[i + 2] == '\n') {
            hend = i + 3;
            break;
        }
    }
    if (!hend) {
        if (p->len >= MS_RTSP_MAX_HEADER_BLOCK)
            return fail(p, -EMSGSIZE);
        p->scanned = i > 2 ? i - 2 : 0;
        return 0;
    }
    if (hend > MS_RTSP_MAX_HEADER_BLOCK)
        return fail(p, -EMSGSIZE);
    long cl = scan_content_length(p->buf, hend);
    if (cl < 0)
        return fail(p, (int)cl);
    if (p->len - hend < (size_t)cl) {
        p->scanned = hend >= 3 ? hend - 3 : 0;
        return 0;
    }
    ev->type = MS_RTSP_EV_MESSAGE;
    int r = parse_message(p, hend, (size_t)cl, &ev->msg);
    if (r < 0)
        return fail(p, r);
    p->off = hend + (size_t)cl;
    return 1;
}

const char *ms_rtsp_msg_header(const ms_rtsp_msg_t *m, const char *name)
{
    for (int i = 0; i < m->nheaders; i++)
        if (strcasecmp(m->headers[i].name, name) == 0)
            return m->headers[i].value;
    return NULL;
}

long ms_rtsp_msg_cseq(const ms_rtsp_msg_t *m)
{
    const char *v = ms_rtsp_msg_header(m, "CSeq");
    if (!v || !isdigit((unsigned char)*v))
        return -1;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*end != '\0' || n > 0x7fffffffUL)
        return -1;
    return (long)n;
}

static int has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

int ms_rtsp_build_request(ms_buf_t *out, const ms_rtsp_request_t *r)
{
    if (!r->method || !r->uri || has_crlf(r->method) || has_crlf(r->uri) || strchr(r->uri, ' ') ||
        has_crlf(r->session) || has_crlf(r->user_agent) || has_crlf(r->authorization) ||
        has_crlf(r->content_type))
        return -EINVAL;
    ms_buf_printf(out, "%s %s RTSP/1.0\r\nCSeq: %u\r\n", r->method, r->uri, (unsigned)r->cseq);
    if (r->authorization)
        ms_buf_printf(out, "Authorization: %s\r\n", r->authorization);
    if (r->session)
        ms_buf_printf(out, "Session: %s\r\n", r->session);
    if (r->user_agent)
        ms_buf_printf(out, "User-Agent: %s\r\n", r->user_agent);
    if (r->extra)
        ms_buf_append(out, r->extra, strlen(r->extra));
    if (r->body_len) {
        if (r->content_type)
            ms_buf_printf(out, "Content-Type: %s\r\n", r->content_type);
        ms_buf_printf(out, "Content-Length: %zu\r\n", r->body_len);
    }
    ms_buf_append(out, "\r\n", 2);
    if (r->body_len)
        ms_buf_append(out, r->body, r->body_len);
    return out->err ? -ENOMEM : 0;
}

const char *ms_rtsp_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Moved Temporarily";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 415:
        return "Unsupported Media Type";
    case 454:
        return "Session Not Found";
    case 455:
        return "Method Not Valid in This State";
    case 457:
        return "Invalid Range";
    case 459:
        return "Aggregate Operation Not Allowed";
    case 461:
        return "Unsupported Transport";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "RTSP Version Not Supported";
    }
    return "Unknown";
}

int ms_rtsp_build_response(ms_buf_t *out, int status, const char *reason, long cseq,
                           const char *session, const char *extra, const char *content_type,
                           const void *body, size_t body_len)
{
    ms_buf_printf(out, "RTSP/1.0 %d %s\r\n", status, reason ? reason : ms_rtsp_reason(status));
    if (cseq >= 0)
        ms_buf_printf(out, "CSeq: %ld\r\n", cseq);
    if (session)
        ms_buf_printf(out, "Session: %s\r\n", session);
    if (extra)
        ms_buf_append(out, extra, strlen(extra));
    if (body_len) {
        if (content_type)
            ms_buf_printf(out, "Content-Type: %s\r\n", content_type);
        ms_buf_printf(out, "Content-Length: %zu\r\n", body_len);
    }
    ms_buf_append(out, "\r\n", 2);
    if (body_len)
        ms_buf_append(out, body, body_len);
    return out->err ? -ENOMEM : 0;
}

/* ---- header value helpers ---- */

/* Next item of s separated by sep, trimmed; returns 0 at the end. */
static int next_item(const char **s, const char *end, char sep, const char **is, size_t *il)
{
    const char *p = *s;
    if (p >= end)
        return 0;
    const char *q = p;
    int quoted = 0;
    while (q < end && (quoted || *q != sep)) {
        if (*q == '"')
            quoted = !quoted;
        q++;
    }
    *s = q < end ? q + 1 : end;
    while (p < q && (*p == ' ' || *p == '\t'))
        p++;
    const char *e = q;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *is = p;
    *il = (size_t)(e - p);
    return 1;
}

static int parse_uint(const char *s, size_t n, unsigned long max, unsigned long *out)
{
    if (n == 0)
        return -EINVAL;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -EINVAL;
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > max)
            return -EINVAL;
    }
    *out = v;
    return 0;
}

/* "a" or "a-b" (ports, channels); b defaults to a + 1. */
static int parse_pair(const char *s, size_t n, unsigned long max, int out[2])
{
    const char *dash = memchr(s, '-', n);
    unsigned long a, b;
    if (parse_uint(s, dash ? (size_t)(dash - s) : n, max, &a) < 0)
        return -EINVAL;
    if (dash) {
        if (parse_uint(dash + 1, n - (size_t)(dash + 1 - s), max, &b) < 0)
            return -EINVAL;
    } else {
        b = a + 1;
    }
    out[0] = (int)a;
    out[1] = (int)b;
    return 0;
}

static void copy_val(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

int ms_rtsp_transport_parse(const char *value, int index, ms_rtsp_transport_t *t)
{
    memset(t, 0, sizeof *t);
    t->ttl = -1;
    if (!value)
        return -ENOENT;
    const char *s = value, *end = value + strlen(value), *is;
    size_t il;
    int k = 0;
    while (next_item(&s, end, ',', &is, &il)) {
        if (k++ != index)
            continue;
        const char *ps = is, *pend = is + il, *pi;
        size_t pl;
        if (!next_item(&ps, pend, ';', &pi, &pl))
            return -EINVAL;
        if (pl == 11 && strncasecmp(pi, "RTP/AVP/TCP", 11) == 0)
            t->tcp = 1;
        else if (!((pl == 7 && strncasecmp(pi, "RTP/AVP", 7) == 0) ||
                   (pl == 11 && strncasecmp(pi, "RTP/AVP/UDP", 11) == 0)))
            return -EINVAL;
        while (next_item(&ps, pend, ';', &pi, &pl)) {
            const char *eq = memchr(pi, '=', pl);
            size_t nl = eq ? (size_t)(eq - pi) : pl;
            const char *v = eq ? eq + 1 : pi + pl;
            size_t vl = eq ? pl - nl - 1 : 0;
            unsigned long u;
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(pi, name, nl) == 0)
            if (IS("unicast")) {
                t->multicast = 0;
            } else if (IS("multicast")) {
                t->multicast = 1;
            } else if (IS("interleaved")) {
                if (parse_pair(v, vl, 255, t->interleaved) < 0)
                    return -EINVAL;
                t->has_interleaved = 1;
            } else if (IS("client_port")) {
                if (parse_pair(v, vl, 65535, t->client_port) < 0)
                    return -EINVAL;
                t->has_client_port = 1;
            } else if (IS("server_port")) {
                if (parse_pair(v, vl, 65535, t->server_port) < 0)
                    return -EINVAL;
                t->has_server_port = 1;
            } else if (IS("ttl")) {
                if (parse_uint(v, vl, 255, &u) < 0)
                    return -EINVAL;
                t->ttl = (int)u;
            } else if (IS("ssrc")) {
                /* 8 hex digits (some servers send fewer) */
                if (vl == 0 || vl > 8)
                    return -EINVAL;
                uint32_t x = 0;
                for (size_t i = 0; i < vl; i++) {
                    if (!isxdigit((unsigned char)v[i]))
                        return -EINVAL;
                    x = x * 16 + (uint32_t)(isdigit((unsigned char)v[i])
                                                ? v[i] - '0'
                                                : (tolower((unsigned char)v[i]) - 'a' + 10));
                }
                t->ssrc = x;
                t->has_ssrc = 1;
            } else if (IS("destination")) {
                copy_val(t->destination, sizeof t->destination, v, vl);
            } else if (IS("source")) {
                copy_val(t->source, sizeof t->source, v, vl);
            } else if (IS("mode")) {
                copy_val(t->mode, sizeof t->mode, v, vl);
            }
#undef IS
        }
        return 0;
    }
    return -ENOENT;
}

int ms_rtsp_transport_format(const ms_rtsp_transport_t *t, char *out, size_t cap)
{
    ms_buf_t b = MS_BUF_INIT;
    ms_buf_printf(&b, "RTP/AVP%s;%s", t->tcp ? "/TCP" : "", t->multicast ? "multicast" : "unicast");
    if (t->destination[0])
        ms_buf_printf(&b, ";destination=%s", t->destination);
    if (t->source[0])
        ms_buf_printf(&b, ";source=%s", t->source);
    if (t->has_interleaved)
        ms_buf_printf(&b, ";interleaved=%d-%d", t->interleaved[0], t->interleaved[1]);
    if (t->has_client_port)
        ms_buf_printf(&b, ";client_port=%d-%d", t->client_port[0], t->client_port[1]);
    if (t->has_server_port)
        ms_buf_printf(&b, ";server_port=%d-%d", t->server_port[0], t->server_port[1]);
    if (t->ttl >= 0)
        ms_buf_printf(&b, ";ttl=%d", t->ttl);
    if (t->has_ssrc)
        ms_buf_printf(&b, ";ssrc=%08X", (unsigned)t->ssrc);
    if (t->mode[0])
        ms_buf_printf(&b, ";mode=\"%s\"", t->mode);
    int r;
    if (b.err || b.len + 1 > cap) {
        r = -ENAMETOOLONG;
    } else {
        memcpy(out, b.data, b.len);
        out[b.len] = '\0';
        r = (int)b.len;
    }
    ms_buf_free(&b);
    return r;
}

int ms_rtsp_session_parse(const char *value, char *id, size_t idcap, int *timeout_s)
{
    *timeout_s = 60; /* RFC 2326 12.37 default */
    if (!value)
        return -EINVAL;
    const char *s = value, *end = value + strlen(value), *is;
    size_t il;
    if (!next_item(&s, end, ';', &is, &il) || il == 0 || il >= idcap)
        return -EINVAL;
    for (size_t i = 0; i < il; i++)
        if ((unsigned char)is[i] <= 0x20 || is[i] == 0x7f)
            return -EINVAL;
    memcpy(id, is, il);
    id[il] = '\0';
    while (next_item(&s, end, ';', &is, &il)) {
        if (il > 8 && strncasecmp(is, "timeout=", 8) == 0) {
            unsigned long v;
            if (parse_uint(is + 8, il - 8, 86400, &v) == 0 && v > 0)
                *timeout_s = (int)v;
        }
    }
    return 0;
}

int ms_rtsp_rtpinfo_parse(const char *value, ms_rtsp_rtpinfo_t *out, int max)
{
    if (!value)
        return -EINVAL;
    const char *s = value, *end = value + strlen(value), *is;
    size_t il;
    int n = 0;
    while (n < max && next_item(&s, end, ',', &is, &il)) {
        ms_rtsp_rtpinfo_t *e = &out[n];
        memset(e, 0, sizeof *e);
        const char *ps = is, *pend = is + il, *pi;
        size_t pl;
        while (next_item(&ps, pend, ';', &pi, &pl)) {
            unsigned long v;
            if (pl > 4 && strncasecmp(pi, "url=", 4) == 0) {
                copy_val(e->url, sizeof e->url, pi + 4, pl - 4);
            } else if (pl > 4 && strncasecmp(pi, "seq=", 4) == 0) {
                if (parse_uint(pi + 4, pl - 4, 65535, &v) < 0)
                    return -EINVAL;
                e->seq = (uint16_t)v;
                e->has_seq = 1;
            } else if (pl > 8 && strncasecmp(pi, "rtptime=", 8) == 0) {
                if (parse_uint(pi + 8, pl - 8, 0xffffffffUL, &v) < 0)
                    return -EINVAL;
                e->rtptime = (uint32_t)v;
                e->has_rtptime = 1;
            }
        }
        if (!e->url[0])
            return -EINVAL;
        n++;
    }
    return n;
}

/* npt-time (RFC 2326 3.6): "now" | seconds[.frac] | h:mm:ss[.frac] */
static int parse_npt(const char *s, size_t n, double *out, int *now)
{
    *now = 0;
    if (n == 3 && strncasecmp(s, "now", 3) == 0) {
        *now = 1;
        *out = 0;
        return 0;
    }
    if (n == 0 || n > 40)
        return -EINVAL;
    char tmp[48];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)tmp[i]) && tmp[i] != '.' && tmp[i] != ':')
            return -EINVAL;
    unsigned h, m;
    double sec;
    char *end;
    if (strchr(tmp, ':')) {
        int used = 0;
        if (sscanf(tmp, "%u:%2u:%n", &h, &m, &used) != 2 || used == 0 || m > 59)
            return -EINVAL;
        sec = strtod(tmp + used, &end);
        if (*end || end == tmp + used || sec >= 60)
            return -EINVAL;
        *out = h * 3600.0 + m * 60.0 + sec;
        return 0;
    }
    sec = strtod(tmp, &end);
    if (*end || end == tmp)
        return -EINVAL;
    *out = sec;
    return 0;
}

int ms_rtsp_range_parse(const char *value, ms_rtsp_range_t *r)
{
    memset(r, 0, sizeof *r);
    if (!value)
        return -EINVAL;
    while (*value == ' ')
        value++;
    size_t n = strcspn(value, ";");
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    const char *v;
    if (n > 4 && strncasecmp(value, "npt=", 4) == 0) {
        r->kind = MS_RANGE_NPT;
        v = value + 4;
    } else if (n > 6 && strncasecmp(value, "clock=", 6) == 0) {
        r->kind = MS_RANGE_CLOCK;
        v = value + 6;
    } else {
        return -EINVAL;
    }
    size_t vl = n - (size_t)(v - value);
    const char *dash = memchr(v, '-', vl);
    if (!dash)
        return -EINVAL;
    size_t al = (size_t)(dash - v), bl = vl - al - 1;
    const char *b = dash + 1;
    if (r->kind == MS_RANGE_NPT) {
        int now;
        if (al) {
            if (parse_npt(v, al, &r->start_s, &now) < 0)
                return -EINVAL;
            r->start_now = now;
            r->has_start = 1;
        }
        if (bl) {
            if (parse_npt(b, bl, &r->end_s, &now) < 0 || now)
                return -EINVAL;
            r->has_end = 1;
        }
    } else {
        if (!al || ms_utc_basic_parse(v, al, &r->start_us) < 0)
            return -EINVAL;
        r->has_start = 1;
        if (bl) {
            if (ms_utc_basic_parse(b, bl, &r->end_us) < 0)
                return -EINVAL;
            r->has_end = 1;
        }
    }
    if (!r->has_start && !r->has_end)
        return -EINVAL;
    return 0;
}
