/* SDP parser (RFC 4566 section 5) for RTSP DESCRIBE answers, with the RTP
 * payload format names of RFC 6184 (H264), RFC 7798 (H265), RFC 3640
 * (mpeg4-generic AAC-hbr), RFC 3551 (PCMU/PCMA, static types 0 and 8) and
 * ONVIF metadata (vnd.onvif.metadata). */
#include "media/rtsp/sdp.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_int(char *s, char **end, long max, long *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    long v = 0;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (*s - '0');
        if (v > max)
            return -1;
        s++;
    }
    *out = v;
    if (end)
        *end = s;
    return 0;
}

static char *skip_sp(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static void trim_end(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static ms_sdp_format_t *find_fmt(ms_sdp_media_t *m, long pt)
{
    for (int i = 0; i < m->nformats; i++)
        if (m->formats[i].pt == pt)
            return &m->formats[i];
    return NULL;
}

/* m=<media> <port>[/<number of ports>] <proto> <fmt> ... (RFC 4566 5.14) */
static int parse_m(char *v, ms_sdp_media_t *m)
{
    memset(m, 0, sizeof *m);
    m->codec = MS_CODEC_NONE;
    char *sp = strchr(v, ' ');
    if (!sp)
        return -1;
    *sp = '\0';
    size_t n = strlen(v);
    if (n == 0 || n >= sizeof m->media)
        return -1;
    memcpy(m->media, v, n + 1);
    char *p = skip_sp(sp + 1);
    long port;
    char *e;
    if (parse_int(p, &e, 65535, &port) < 0)
        return -1;
    m->port = (int)port;
    p = e;
    if (*p == '/') {
        long cnt;
        if (parse_int(p + 1, &e, 65535, &cnt) < 0)
            return -1;
        p = e;
    }
    p = skip_sp(p);
    char *proto = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    if (p == proto)
        return -1;
    int more = *p != '\0';
    *p = '\0';
    m->proto = proto;
    if (!more)
        return 0;
    p = skip_sp(p + 1);
    while (*p && m->nformats < MS_SDP_MAX_FORMATS) {
        long pt;
        if (parse_int(p, &e, 127, &pt) < 0) {
            /* non-RTP formats: skip the token */
            while (*p && *p != ' ')
                p++;
        } else {
            p = e;
            if (*p && *p != ' ' && *p != '\t')
                return -1;
            if (!find_fmt(m, pt)) {
                ms_sdp_format_t *f = &m->formats[m->nformats++];
                memset(f, 0, sizeof *f);
                f->pt = (int)pt;
            }
        }
        p = skip_sp(p);
    }
    return 0;
}

/* a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>] */
static void parse_rtpmap(char *v, ms_sdp_media_t *m)
{
    long pt, clock, ch;
    char *e;
    if (parse_int(v, &e, 127, &pt) < 0 || (*e != ' ' && *e != '\t'))
        return;
    ms_sdp_format_t *f = find_fmt(m, pt);
    if (!f)
        return;
    char *name = skip_sp(e);
    char *slash = strchr(name, '/');
    if (!slash || slash == name)
        return;
    *slash = '\0';
    trim_end(name);
    if (parse_int(slash + 1, &e, 10000000, &clock) < 0 || clock == 0)
        return;
    f->encoding = name;
    f->clock_rate = (uint32_t)clock;
    if (*e == '/' && parse_int(e + 1, NULL, 255, &ch) == 0)
        f->channels = (int)ch;
}

/* a=fmtp:<format> <format specific parameters> */
static void parse_fmtp(char *v, ms_sdp_media_t *m)
{
    long pt;
    char *e;
    if (parse_int(v, &e, 127, &pt) < 0)
        return;
    ms_sdp_format_t *f = find_fmt(m, pt);
    if (!f)
        return;
    f->fmtp = skip_sp(e);
}

static ms_codec_t map_format(const ms_sdp_media_t *m, ms_sdp_format_t *f)
{
    if (!f->encoding) {
        /* RFC 3551 table 4: static payload types */
        if (strcmp(m->media, "audio") != 0)
            return MS_CODEC_NONE;
        if (f->pt == 0 || f->pt == 8) {
            f->clock_rate = 8000;
            f->channels = 1;
            return f->pt == 0 ? MS_CODEC_PCMU : MS_CODEC_PCMA;
        }
        return MS_CODEC_NONE;
    }
    const char *enc = f->encoding;
    if (strcasecmp(enc, "H264") == 0)
        return MS_CODEC_H264;
    if (strcasecmp(enc, "H265") == 0 || strcasecmp(enc, "HEVC") == 0)
        return MS_CODEC_H265;
    if (strcasecmp(enc, "PCMU") == 0)
        return MS_CODEC_PCMU;
    if (strcasecmp(enc, "PCMA") == 0)
        return MS_CODEC_PCMA;
    if (strcasecmp(enc, "vnd.onvif.metadata") == 0)
        return MS_CODEC_ONVIF_META;
    if (strcasecmp(enc, "MPEG4-GENERIC") == 0) {
        char mode[32];
        if (ms_rtp_fmtp_get(f->fmtp, "mode", mode, sizeof mode) > 0 &&
            strcasecmp(mode, "AAC-hbr") == 0)
            return MS_CODEC_AAC;
        return MS_CODEC_NONE;
    }
    return MS_CODEC_NONE;
}

static void map_media(ms_sdp_media_t *m)
{
    m->codec = MS_CODEC_NONE;
    m->fmt = NULL;
    for (int i = 0; i < m->nformats; i++) {
        ms_codec_t c = map_format(m, &m->formats[i]);
        if (c != MS_CODEC_NONE && m->formats[i].clock_rate > 0) {
            m->codec = c;
            m->kind = ms_codec_kind(c);
            m->fmt = &m->formats[i];
            return;
        }
    }
}

int ms_sdp_parse(const char *text, size_t len, ms_sdp_t *sdp)
{
    memset(sdp, 0, sizeof *sdp);
    if (len > MS_SDP_MAX_TEXT)
        return -EMSGSIZE;
    sdp->text = malloc(len + 1);
    if (!sdp->text)
        return -ENOMEM;
    memcpy(sdp->text, text, len);
    sdp->text[len] = '\0';

    ms_sdp_media_t *cur = NULL;
    int first = 1, skipping = 0;
    char *p = sdp->text, *end = sdp->text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line = p;
        char *le = nl ? nl : end;
        p = nl ? nl + 1 : end;
        *le = '\0';
        if (le > line && le[-1] == '\r')
            le[-1] = '\0';
        size_t ll = strlen(line);
        if (ll == 0)
            continue;
        if (first) {
            /* RFC 4566 5: the description starts with v=0 */
            if (strncmp(line, "v=", 2) != 0)
                return -EINVAL;
            first = 0;
            continue;
        }
        if (ll > MS_SDP_MAX_LINE || ll < 2 || line[1] != '=')
            continue;
        char type = line[0];
        char *v = line + 2;
        if (type == 'm') {
            if (sdp->nmedia >= MS_SDP_MAX_MEDIA) {
                cur = NULL;
                skipping = 1;
                continue;
            }
            ms_sdp_media_t *m = &sdp->media[sdp->nmedia];
            if (parse_m(v, m) < 0) {
                cur = NULL;
                skipping = 1; /* attributes of a broken m= section are ignored */
                continue;
            }
            sdp->nmedia++;
            cur = m;
            skipping = 0;
            continue;
        }
        if (skipping)
            continue;
        if (type == 's' && !cur) {
            sdp->session_name = v;
        } else if (type == 'c') {
            /* c=<nettype> <addrtype> <connection-address> */
            char *a = strrchr(v, ' ');
            if (a) {
                a++;
                char *slash = strchr(a, '/');
                if (slash)
                    *slash = '\0';
                if (cur)
                    cur->connection = a;
                else
                    sdp->connection = a;
            }
        } else if (type == 'a') {
            char *colon = strchr(v, ':');
            char *val = colon ? colon + 1 : v + strlen(v);
            if (colon)
                *colon = '\0';
            trim_end(v);
            if (strcmp(v, "control") == 0) {
                val = skip_sp(val);
                trim_end(val);
                if (cur)
                    cur->control = val;
                else
                    sdp->control = val;
            } else if (strcmp(v, "range") == 0 && !cur) {
                sdp->range = skip_sp(val);
            } else if (cur && strcmp(v, "rtpmap") == 0) {
                parse_rtpmap(skip_sp(val), cur);
            } else if (cur && strcmp(v, "fmtp") == 0) {
                parse_fmtp(skip_sp(val), cur);
            } else if (cur && strcmp(v, "sendonly") == 0) {
                cur->direction_sendonly = 1;
            } else if (cur && strcmp(v, "recvonly") == 0) {
                cur->direction_recvonly = 1;
            } else if (cur && strcmp(v, "inactive") == 0) {
                cur->direction_inactive = 1;
            }
        }
    }
    if (first || sdp->nmedia == 0)
        return -EINVAL;
    for (int i = 0; i < sdp->nmedia; i++)
        map_media(&sdp->media[i]);
    return 0;
}

void ms_sdp_free(ms_sdp_t *sdp)
{
    free(sdp->text);
    sdp->text = NULL;
    sdp->nmedia = 0;
}

int ms_sdp_usable(const ms_sdp_t *sdp)
{
    int n = 0;
    for (int i = 0; i < sdp->nmedia; i++)
        if (sdp->media[i].codec != MS_CODEC_NONE)
            n++;
    return n;
}
