/* Joins over UDP on the raft port number (cluster_int.h, docs/security.md
 * "Joins and node-to-node HTTP"). Control loop. */

#include <openssl/rand.h>

#include "node/cluster/cluster_int.h"

/* ---- join (UDP on the raft port number) ----------------------------------- */

typedef struct {
    uv_udp_send_t req;
    char buf[MS_JOIN_MAX + 1];
} udp_out_t;

static void udp_sent(uv_udp_send_t *req, int status)
{
    (void)status;
    free(req->data);
}

static void udp_send(const struct sockaddr *to, const char *text)
{
    udp_out_t *o = calloc(1, sizeof *o);
    if (!o)
        return;
    size_t n = strlen(text);
    if (n >= sizeof o->buf) {
        free(o);
        return;
    }
    memcpy(o->buf, text, n);
    o->req.data = o;
    uv_buf_t b = uv_buf_init(o->buf, (unsigned)n);
    if (uv_udp_send(&o->req, &ms_cl.udp, &b, 1, to, udp_sent) != 0)
        free(o);
}

/* Signs m (a fresh nonce, now) and sends it to to. Returns 0 or -errno. */
static int join_send(const struct sockaddr *to, ms_join_msg_t *m)
{
    char out[MS_JOIN_MAX + 1];
    if (!ms_cl.join_keyed || RAND_bytes(m->nonce, sizeof m->nonce) != 1)
        return -EIO;
    m->from = cl_my_id();
    m->ts_ms = cl_wall_ms();
    int n = ms_join_encode(ms_cl.join_key, m, out, sizeof out);
    if (n < 0)
        return n;
    udp_send(to, out);
    return 0;
}

/* A datagram refused: counted, logged at most every 10 s. */
static void join_ignored(const struct sockaddr *from, const char *why)
{
    ms_cl.join_ignored++;
    uint32_t supp = 0;
    if (!ms_ratelimit_ok(&ms_cl.join_rl, &supp))
        return;
    char ip[64] = "?";
    if (from->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)from, ip, sizeof ip);
    else if (from->sa_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)from, ip, sizeof ip);
    MS_WARN(CTX, "ignored a join datagram from %s: %s (%" PRIu64 " ignored in all)", ip, why,
            ms_cl.join_ignored);
}

typedef struct {
    uint64_t id;
    int voter;
} join_t;

static void join_assigned(void *ud, int status)
{
    join_t *jn = ud;
    MS_INFO(CTX, "join of %" PRIu64 ": %s", jn->id,
            status == 0 ? (jn->voter ? "voter" : "standby") : strerror(-status));
    free(jn);
}

static void join_added(void *ud, int status)
{
    join_t *jn = ud;
    if (status < 0) {
        MS_WARN(CTX, "raft add %" PRIu64 ": %s", jn->id, strerror(-status));
        free(jn);
        return;
    }
    if (ms_raft_assign(ms_cl.raft, jn->id, jn->voter ? MS_RAFT_VOTER : MS_RAFT_STANDBY,
                       join_assigned, jn) < 0)
        free(jn);
}

static void handle_join(uint64_t id, const char *addr)
{
    json_t *info = ms_raft_info_json(ms_cl.raft), *m;
    size_t i;
    int voters = 0, found = 0, spare = 0;
    json_array_foreach(json_object_get(info, "members"), i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        voters += strcmp(role, "voter") == 0;
        if ((uint64_t)json_integer_value(json_object_get(m, "id")) == id) {
            found = 1;
            spare = strcmp(role, "spare") == 0;
        }
    }
    json_decref(info);
    if (found && !spare)
        return;
    join_t *jn = calloc(1, sizeof *jn);
    if (!jn)
        return;
    jn->id = id;
    jn->voter = voters < MAX_VOTERS;
    MS_INFO(CTX, "node %" PRIu64 " (%s) asks to join", id, addr);
    int r = found ? ms_raft_assign(ms_cl.raft, id, jn->voter ? MS_RAFT_VOTER : MS_RAFT_STANDBY,
                                   join_assigned, jn)
                  : ms_raft_add(ms_cl.raft, id, addr, join_added, jn);
    if (r < 0)
        free(jn);
}

void cl_udp_alloc(uv_handle_t *h, size_t sug, uv_buf_t *buf)
{
    (void)h;
    (void)sug;
    *buf = uv_buf_init(ms_cl.udp_mem, sizeof ms_cl.udp_mem);
}

static const char *join_why(int r)
{
    switch (r) {
    case -EACCES:
        return "bad MAC (another secret?)";
    case -ETIME:
        return "stale timestamp (clocks more than 30 s apart?)";
    case -EALREADY:
        return "replayed";
    case -EBUSY:
        return "replay cache full";
    case -ENOENT:
        return "answers no join of this node";
    default:
        return "malformed";
    }
}

/* Join datagrams (docs/security.md "Joins and node-to-node HTTP"): a join
 * is authenticated, fresh and not seen before; an answer (joining,
 * redirect) is authenticated, addressed to this node and answers a join it
 * sent (each join answered once). Anything else is ignored. */
void cl_udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                 unsigned flags)
{
    (void)h;
    (void)flags;
    if (n <= 0 || !from || ms_cl.stopping)
        return;
    if (!ms_cl.join_keyed) {
        join_ignored(from, "no cluster secret configured");
        return;
    }
    ms_join_msg_t m;
    int64_t now = cl_wall_ms();
    int r = ms_join_decode(ms_cl.join_key, buf->base, (size_t)n, now, NULL, &m);
    if (r == 0 && m.op == MS_JOIN_REQ) {
        r = ms_replay_check_add(ms_cl.join_replay, m.nonce, m.ts_ms + MS_NAUTH_SKEW_MS, now);
    } else if (r == 0) {
        r = m.to == cl_my_id() ? ms_join_pending_take(&ms_cl.join_pend, m.reply_to, now) : -ENOENT;
    }
    if (r < 0) {
        join_ignored(from, join_why(r));
        return;
    }
    if (m.op == MS_JOIN_REQ) {
        ms_join_msg_t a = {.to = m.from};
        memcpy(a.reply_to, m.nonce, sizeof a.reply_to);
        if (ms_raft_is_leader(ms_cl.raft)) {
            handle_join(m.from, m.addr);
            a.op = MS_JOIN_ACCEPT;
        } else {
            ms_raft_info_t in;
            ms_raft_info(ms_cl.raft, &in);
            if (!in.leader_address || !in.leader_address[0] ||
                strlen(in.leader_address) > MS_JOIN_ADDR_MAX)
                return; /* no leader known: the joiner tries the next address */
            a.op = MS_JOIN_REDIRECT;
            snprintf(a.addr, sizeof a.addr, "%s", in.leader_address);
        }
        join_send(from, &a);
    } else if (m.op == MS_JOIN_REDIRECT) {
        if (strlen(m.addr) < sizeof ms_cl.join_redirect)
            snprintf(ms_cl.join_redirect, sizeof ms_cl.join_redirect, "%s", m.addr);
    }
    /* MS_JOIN_ACCEPT: the leader adds this node; raft contact follows */
}

int cl_resolve_hostport(const char *hp, struct sockaddr_storage *out)
{
    char host[256];
    const char *colon = strrchr(hp, ':');
    if (!colon || (size_t)(colon - hp) >= sizeof host)
        return -EINVAL;
    const char *h = hp;
    size_t hl = (size_t)(colon - hp);
    if (h[0] == '[' && hl >= 2) {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    int port = atoi(colon + 1);
    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    if (strcmp(host, "localhost") == 0)
        return uv_ip4_addr("127.0.0.1", port, (struct sockaddr_in *)out);
    return -EINVAL;
}

void cl_try_join(void)
{
    if (!ms_cl.cfg->ncluster_join || !ms_cl.udp_up || cl_raft_member())
        return;
    int64_t now = ms_mono_ms();
    if (now - ms_cl.last_join < JOIN_EVERY_MS)
        return;
    ms_cl.last_join = now;
    const char *target;
    if (ms_cl.join_redirect[0]) {
        target = ms_cl.join_redirect;
    } else {
        target = ms_cl.cfg->cluster_join[ms_cl.join_target % (int)ms_cl.cfg->ncluster_join];
        ms_cl.join_target++;
    }
    struct sockaddr_storage ss;
    if (cl_resolve_hostport(target, &ss) < 0) {
        ms_cl.join_redirect[0] = '\0';
        return;
    }
    ms_cl.join_redirect[0] = '\0';
    ms_join_msg_t m = {.op = MS_JOIN_REQ};
    if (strlen(ms_cl.raft_addr) >= sizeof m.addr)
        return;
    memcpy(m.addr, ms_cl.raft_addr, strlen(ms_cl.raft_addr) + 1);
    if (join_send((const struct sockaddr *)&ss, &m) == 0)
        ms_join_pending_add(&ms_cl.join_pend, m.nonce, m.ts_ms);
}
