/* Node-to-node HTTP: request MACs and a blocking HTTP/1.1 client
 * (RFC 9112: request line, Content-Length framing, "Connection: close" so
 * the response ends with the connection). */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "node/cluster_http.h"
#include "util/kdf.h"
#include "util/log.h"
#include "util/nodeauth.h"
#include "util/replay.h"

#define CONNECT_MS 1000 /* bound on the TCP connect within a request's timeout */

static const char CTX[] = "[cluster-http]";

/* The receiver's replay cache: nonces of accepted requests, for the skew
 * window. Sized for ~270 internal calls a second held for 60 s. */
#define REPLAY_CAP 16384

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static ms_replay_t *g_replay;
static _Atomic uint64_t g_self;
/* the key of the last secret seen (the secret never changes in a process,
 * HKDF per request would be wasted work) */
static char g_key_secret[256];
static uint8_t g_key[MS_KDF_KEY_LEN];
static ms_ratelimit_t g_rl = MS_RATELIMIT_INIT(10000);

static void once_init(void)
{
    g_replay = ms_replay_new(REPLAY_CAP);
}

static int key_for(const char *secret, uint8_t key[MS_KDF_KEY_LEN])
{
    if (!secret || !secret[0] || strlen(secret) >= sizeof g_key_secret)
        return secret && secret[0] ? ms_kdf_derive(secret, MS_KDF_CHTTP, key) : -EINVAL;
    pthread_mutex_lock(&g_mu);
    int r = 0;
    if (strcmp(g_key_secret, secret) != 0) {
        r = ms_kdf_derive(secret, MS_KDF_CHTTP, g_key);
        snprintf(g_key_secret, sizeof g_key_secret, "%s", r == 0 ? secret : "");
    }
    if (r == 0)
        memcpy(key, g_key, MS_KDF_KEY_LEN);
    pthread_mutex_unlock(&g_mu);
    return r;
}

void ms_chttp_set_self(uint64_t node_id)
{
    atomic_store(&g_self, node_id);
}

int ms_chttp_sign(const char *secret, uint64_t node_id, const char *method, const char *path,
                  const void *body, size_t blen, int64_t now_ms, char *out, size_t cap)
{
    uint8_t key[MS_KDF_KEY_LEN], nonce[MS_NAUTH_NONCE_LEN];
    int r = key_for(secret, key);
    if (r < 0)
        return r;
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        return -EIO;
    r = ms_nauth_http_sign(key, node_id, method, path, body, blen, now_ms, nonce, out, cap);
    OPENSSL_cleanse(key, sizeof key);
    return r;
}

int ms_chttp_verify(const char *secret, const char *hdr, const char *node_hdr, const char *method,
                    const char *path, const void *body, size_t blen, int64_t now_ms, uint64_t *from)
{
    uint8_t key[MS_KDF_KEY_LEN];
    if (from)
        *from = 0;
    pthread_once(&g_once, once_init);
    int r = !hdr || !g_replay ? -EBADMSG : key_for(secret, key);
    if (r == 0) {
        r = ms_nauth_http_verify(key, hdr, node_hdr, method, path, body, blen, now_ms, g_replay,
                                 from);
        OPENSSL_cleanse(key, sizeof key);
    }
    if (r == 0)
        return 0;
    pthread_mutex_lock(&g_mu);
    uint32_t supp = 0;
    int log = ms_ratelimit_ok(&g_rl, &supp);
    pthread_mutex_unlock(&g_mu);
    if (log)
        MS_WARN(CTX, "refused node call %s %.80s (node %.24s): %s (%u more refused before)", method,
                path, node_hdr ? node_hdr : "?",
                r == -EALREADY ? "replayed"
                : r == -ETIME  ? "expired"
                : r == -EBUSY  ? "replay cache full"
                : r == -EACCES ? "bad MAC or node id"
                               : "malformed or no secret",
                supp);
    return -EACCES;
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
    char auth[MS_NAUTH_HDR_MAX + 1] = "";
    if (!node_id)
        node_id = atomic_load(&g_self);
    int sr = secret ? ms_chttp_sign(secret, node_id, method, path, body, blen, wall_ms(), auth,
                                    sizeof auth)
                    : 0;
    if (sr < 0) {
        close(fd);
        return sr;
    }
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
