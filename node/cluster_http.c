/* Node-to-node HTTP: request MACs and a blocking HTTP/1.1 client
 * (RFC 9112: request line, Content-Length framing, "Connection: close" so
 * the response ends with the connection). */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "node/cluster_http.h"

#define CONNECT_MS 1000 /* bound on the TCP connect within a request's timeout */

static void mac_hex(const char *secret, const char *method, const char *path, const void *body,
                    size_t blen, int64_t ts, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char head[64];
    int hn = snprintf(head, sizeof head, "%" PRId64 "\n", ts);
    size_t ml = strlen(method), pl = strlen(path);
    size_t n = 14 + ml + 1 + pl + 1 + (size_t)hn + blen;
    unsigned char *msg = malloc(n ? n : 1), *p = msg;
    out[0] = '\0';
    if (!msg)
        return;
    memcpy(p, "ms-cluster-v1\n", 14);
    p += 14;
    memcpy(p, method, ml);
    p += ml;
    *p++ = '\n';
    memcpy(p, path, pl);
    p += pl;
    *p++ = '\n';
    memcpy(p, head, (size_t)hn);
    p += hn;
    if (blen)
        memcpy(p, body, blen);
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, n, md, &mdlen)) {
        static const char hx[] = "0123456789abcdef";
        for (unsigned i = 0; i < mdlen && i < 32; i++) {
            out[2 * i] = hx[md[i] >> 4];
            out[2 * i + 1] = hx[md[i] & 15];
        }
        out[2 * (mdlen < 32 ? mdlen : 32)] = '\0';
    }
    free(msg);
}

void ms_chttp_sign(const char *secret, const char *method, const char *path, const void *body,
                   size_t blen, int64_t now_ms, char *out, size_t cap)
{
    char hex[65];
    mac_hex(secret, method, path, body, blen, now_ms, hex);
    snprintf(out, cap, "%" PRId64 ".%s", now_ms, hex);
}

int ms_chttp_verify(const char *secret, const char *hdr, const char *method, const char *path,
                    const void *body, size_t blen, int64_t now_ms)
{
    if (!hdr || !secret || !secret[0])
        return -EACCES;
    char *end = NULL;
    errno = 0;
    long long ts = strtoll(hdr, &end, 10);
    if (errno || !end || end == hdr || *end != '.' || strlen(end + 1) != 64)
        return -EACCES;
    if (ts < now_ms - MS_CHTTP_SKEW_MS || ts > now_ms + MS_CHTTP_SKEW_MS)
        return -EACCES;
    char hex[65];
    mac_hex(secret, method, path, body, blen, (int64_t)ts, hex);
    if (strlen(hex) != 64 || CRYPTO_memcmp(hex, end + 1, 64) != 0)
        return -EACCES;
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "http://host:port" -> host, port. */
static int split_base(const char *base, char *host, size_t hcap, char *port, size_t pcap)
{
    if (strncmp(base, "http://", 7) != 0)
        return -EINVAL;
    const char *h = base + 7, *colon, *hend;
    if (*h == '[') {
        hend = strchr(h, ']');
        if (!hend || hend[1] != ':')
            return -EINVAL;
        colon = hend + 1;
        h++;
    } else {
        colon = strrchr(h, ':');
        if (!colon)
            return -EINVAL;
        hend = colon;
    }
    size_t hl = (size_t)(hend - h);
    if (hl == 0 || hl >= hcap || strlen(colon + 1) >= pcap || !colon[1])
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, pcap, "%s", colon + 1);
    char *slash = strchr(port, '/');
    if (slash)
        *slash = '\0';
    return 0;
}

static int wait_fd(int fd, short ev, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = ev};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline)
{
    while (n) {
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc < 0)
            return rc;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int connect_to(const char *host, const char *port, int64_t deadline)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
        return -EHOSTUNREACH;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -errno : 0;
    if (rc == 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
        } else if ((rc = wait_fd(fd, POLLOUT, deadline)) == 0) {
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
            rc = err ? -err : 0;
        }
    }
    freeaddrinfo(ai);
    if (rc == 0) {
        int one = 1; /* small request/response pairs: no Nagle delay */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (rc < 0 && fd >= 0)
        close(fd);
    return rc < 0 ? rc : fd;
}

int ms_chttp_request(const char *base, const char *method, const char *path, const char *body,
                     size_t blen, const char *secret, uint64_t node_id, int timeout_ms, int *status,
                     char **resp)
{
    char host[256], port[16];
    *resp = NULL;
    *status = 0;
    if (split_base(base, host, sizeof host, port, sizeof port) < 0)
        return -EINVAL;
    int64_t deadline = mono_ms() + timeout_ms;
    /* a peer on the cluster network accepts within milliseconds; one cut
     * off by a partition never answers (no RST): give up on the connect
     * sooner than on the whole request, the caller retries elsewhere */
    int64_t cdl = mono_ms() + CONNECT_MS;
    int fd = connect_to(host, port, cdl < deadline ? cdl : deadline);
    if (fd < 0)
        return fd;
    char auth[160] = "";
    if (secret)
        ms_chttp_sign(secret, method, path, body, blen, wall_ms(), auth, sizeof auth);
    char head[1024];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                      "%s%s%s%s%" PRIu64 "\r\n\r\n",
                      method, path, host, port, blen, secret ? MS_CHTTP_HEADER ": " : "", auth,
                      secret ? "\r\n" : "", MS_CHTTP_NODE ": ", node_id);
    int rc = -EINVAL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (hn <= 0 || (size_t)hn >= sizeof head)
        goto out;
    /* head and body in one write (one segment for small requests) */
    buf = malloc((size_t)hn + blen + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(buf, head, (size_t)hn);
    if (blen)
        memcpy(buf + hn, body, blen);
    rc = send_all(fd, buf, (size_t)hn + blen, deadline);
    free(buf);
    buf = NULL;
    if (rc < 0)
        goto out;
    for (;;) {
        if ((rc = wait_fd(fd, POLLIN, deadline)) < 0)
            goto out;
        if (len + 4096 + 1 > cap) {
            size_t nc = cap ? cap * 2 : 8192;
            if (nc > MS_CHTTP_RESP_MAX) {
                rc = -EMSGSIZE;
                goto out;
            }
            char *nb = realloc(buf, nc);
            if (!nb) {
                rc = -ENOMEM;
                goto out;
            }
            buf = nb;
            cap = nc;
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    rc = -EPROTO;
    if (!buf)
        goto out;
    buf[len] = '\0';
    int code = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1 || code < 100 || code > 599)
        goto out;
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep)
        goto out;
    size_t off = (size_t)(sep + 4 - buf);
    memmove(buf, buf + off, len - off + 1);
    *status = code;
    *resp = buf;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}
