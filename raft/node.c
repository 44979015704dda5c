/* Cluster member over libraft + raft_uv (see node.h). Every raft_* call
 * and every fsm apply happens on the control loop. Leader election with
 * pre-vote (Raft thesis section 9.6), leadership transfer (section 3.10),
 * the post-election barrier stands for the thesis' no-op entry
 * (section 6.4: a new leader commits an entry of its term before serving). */
#include "raft/node.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <raft.h>
#include <raft/uv.h>

#include "raft/commands.h"
#include "raft/fsm_raft.h"
#include "raft/transport.h"
#include "util/clock.h"
#include "util/kdf.h"
#include "util/log.h"

#define CTX "[raft]"

typedef struct pending {
    struct raft_apply req;
    struct pending *prev, *next;
    ms_raft_t *r;
    char req_id[65];
    json_t *result;
    int have;
    ms_raft_submit_cb cb;
    void *ud;
} pending_t;

typedef struct {
    struct raft_barrier req;
    ms_raft_t *r;
    raft_term term; /* internal leader barrier: the term it was issued in */
    void (*cb)(void *ud, int status);
    void *ud;
} barrier_t;

typedef struct {
    struct raft_change req;
    void (*cb)(void *ud, int status);
    void *ud;
} change_t;

struct ms_raft {
    uv_loop_t *loop;
    ms_fsm_t *fsm;
    ms_raft_cfg_t cfg;
    char *data_dir, *dir, *address, *bind;
    uint64_t id;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    uint8_t key[MS_RHS_KEY_LEN]; /* the raft transport's handshake key */
    struct raft_fsm rf;
    struct raft_transfer transfer;
    uv_check_t check;
    uv_timer_t stop_timer; /* bounds the leadership transfer on stop */
    int closes;            /* handles still closing */
    int closing;
    int stage; /* 0 none, 1 transport, 2 io, 3 raft initialised */
    int stopping, leader_ready;
    raft_term barrier_term;
    uint64_t restores_at_start; /* restores done by raft_start (own snapshot) */
    pending_t *head, *tail;
    void (*stop_cb)(void *ud);
    void *stop_ud;
};

static int map_raft_err(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case RAFT_NOMEM:
        return -ENOMEM;
    case RAFT_NOTLEADER:
        return -EREMOTE;
    case RAFT_LEADERSHIPLOST:
        return -ECONNABORTED;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED:
        return -ECANCELED;
    case RAFT_BADID:
    case RAFT_BADROLE:
    case RAFT_INVALID:
    case RAFT_MALFORMED:
        return -EINVAL;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
        return -EEXIST;
    case RAFT_CANTCHANGE:
    case RAFT_BUSY:
        return -EBUSY;
    case RAFT_NOTFOUND:
        return -ENOENT;
    case RAFT_TOOBIG:
        return -E2BIG;
    case RAFT_NOSPACE:
        return -ENOSPC;
    default:
        return -EIO;
    }
}

/* ---- node id -------------------------------------------------------- */

static int load_or_create_id(const char *dir, uint64_t *id)
{
    char path[4096], tmp[4096], txt[32];
    snprintf(path, sizeof path, "%s/node-id", dir);
    FILE *fp = fopen(path, "r");
    if (fp) {
        unsigned long long v = 0;
        int n = fscanf(fp, "%20llu", &v);
        fclose(fp);
        if (n != 1 || v == 0 || v > INT64_MAX) {
            MS_ERROR(CTX, "bad node id file %s", path);
            return -EINVAL;
        }
        *id = v;
        return 0;
    }
    if (errno != ENOENT)
        return -errno;
    uint64_t v = 0;
    while (v == 0) {
        if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
            return -EIO;
        v &= INT64_MAX; /* fits SQLite's INTEGER (servers.id) */
    }
    snprintf(tmp, sizeof tmp, "%s/node-id.tmp", dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int len = snprintf(txt, sizeof txt, "%" PRIu64 "\n", v);
    int rc = 0;
    if (write(fd, txt, (size_t)len) != len || fsync(fd) != 0)
        rc = -EIO;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    *id = v;
    return rc;
}

static int mkdir_ok(const char *p)
{
    if (mkdir(p, 0700) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

/* ---- lifecycle ------------------------------------------------------ */

int ms_raft_new(uv_loop_t *loop, const ms_raft_cfg_t *cfg, ms_fsm_t *fsm, ms_raft_t **out)
{
    *out = NULL;
    if (!loop || !cfg || !fsm || !cfg->data_dir || !cfg->address)
        return -EINVAL;
    ms_raft_t *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    int rc = -ENOMEM;
    r->loop = loop;
    r->fsm = fsm;
    r->cfg = *cfg;
    r->data_dir = strdup(cfg->data_dir);
    r->address = strdup(cfg->address);
    r->bind = cfg->bind ? strdup(cfg->bind) : NULL;
    if (!r->data_dir || !r->address || (cfg->bind && !r->bind))
        goto err;
    if (asprintf(&r->dir, "%s/raft", cfg->data_dir) < 0) {
        r->dir = NULL;
        goto err;
    }
    r->cfg.data_dir = r->data_dir;
    r->cfg.address = r->address;
    r->cfg.bind = r->bind;
    r->cfg.secret = NULL; /* only the derived key is kept */
    if ((rc = mkdir_ok(r->data_dir)) < 0 || (rc = mkdir_ok(r->dir)) < 0 ||
        (rc = load_or_create_id(r->dir, &r->id)) < 0)
        goto err;
    if (cfg->secret && cfg->secret[0]) {
        if ((rc = ms_kdf_derive(cfg->secret, MS_KDF_RAFT, r->key)) < 0)
            goto err;
    } else {
        rc = -EIO;
        if (RAND_bytes(r->key, sizeof r->key) != 1)
            goto err;
        MS_WARN(CTX, "no cluster secret: the raft key is random for this run, so no other node "
                     "can connect to this one nor accept its connections (docs/security.md)");
    }
    *out = r;
    return 0;
err:
    ms_raft_free(r);
    return rc;
}

void ms_raft_free(ms_raft_t *r)
{
    if (!r)
        return;
    if (r->stage > 0 && r->stage < 3) {
        if (r->stage >= 2)
            raft_uv_close(&r->io);
        ms_raft_transport_free(&r->transport);
    }
    OPENSSL_cleanse(r->key, sizeof r->key);
    free(r->data_dir);
    free(r->dir);
    free(r->address);
    free(r->bind);
    free(r);
}

uint64_t ms_raft_id(const ms_raft_t *r)
{
    return r->id;
}

/* ---- apply results -------------------------------------------------- */

/* The fsm's apply hook: hands the result to the oldest local submission
 * with that req_id (followers have none). */
static void on_applied(void *ud, const char *req_id, const char *op, json_t *res)
{
    ms_raft_t *r = ud;
    (void)op;
    if (!req_id)
        return;
    for (pending_t *p = r->head; p; p = p->next) {
        if (!p->have && strcmp(p->req_id, req_id) == 0) {
            p->result = json_incref(res);
            p->have = 1;
            return;
        }
    }
}

static void pending_unlink(ms_raft_t *r, pending_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        r->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        r->tail = p->prev;
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    pending_t *p = req->data;
    (void)result;
    pending_unlink(p->r, p);
    int rc = map_raft_err(status);
    if (rc == 0 && !p->have)
        rc = -EIO; /* cannot happen: submissions carry a req_id */
    if (p->cb)
        p->cb(p->ud, rc, rc == 0 ? p->result : NULL);
    json_decref(p->result);
    free(p);
}

/* The value of the top-level "req_id" of a command's JSON text (RFC 8259)
 * without parsing the whole command (a load report carries a few KB):
 * strings are skipped with their escapes, nesting is counted, the last
 * top-level occurrence wins (as for jansson's duplicate keys). 1 found (a
 * string of 1-64 characters without escapes, copied into out, in an object
 * whose brackets balance), 0 not found or not that simple: the caller
 * parses the text. */
static int scan_req_id(const char *s, size_t len, char out[65])
{
    int depth = 0, found = 0;
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    if (i >= len || s[i] != '{')
        return 0;
    while (i < len) {
        char c = s[i];
        if (c == '{' || c == '[') {
            depth++;
            i++;
        } else if (c == '}' || c == ']') {
            if (--depth < 0)
                return 0;
            i++;
        } else if (c == '"') {
            size_t start = ++i, esc = 0;
            while (i < len && s[i] != '"') {
                if (s[i] == '\\') {
                    esc = 1;
                    i++;
                }
                i++;
            }
            if (i >= len)
                return 0;
            size_t end = i++;
            if (depth != 1 || esc || end - start != 6 || memcmp(s + start, "req_id", 6) != 0)
                continue;
            while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
                i++;
            if (i >= len || s[i] != ':')
                continue; /* a string value "req_id", not the key */
            i++;
            while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
                i++;
            if (i >= len || s[i] != '"')
                return 0;
            size_t vs = ++i;
            while (i < len && s[i] != '"' && s[i] != '\\')
                i++;
            if (i >= len || s[i] != '"' || i == vs || i - vs > 64)
                return 0;
            memcpy(out, s + vs, i - vs);
            out[i - vs] = '\0';
            found = 1;
            i++;
        } else {
            i++;
        }
    }
    return found && depth == 0;
}

int ms_raft_submit(ms_raft_t *r, const char *json, size_t len, ms_raft_submit_cb cb, void *ud)
{
    if (r->stage < 3 || r->stopping)
        return -ECANCELED;
    if (raft_state(&r->raft) != RAFT_LEADER)
        return -EREMOTE;
    if (len == 0 || len > MS_FSM_CMD_MAX)
        return -EINVAL;
    char rid[65];
    if (!scan_req_id(json, len, rid)) {
        json_t *cmd = json_loadb(json, len, 0, NULL);
        const char *v = json_string_value(json_object_get(cmd, "req_id"));
        if (!v || strlen(v) > 64) {
            json_decref(cmd);
            return -EINVAL;
        }
        snprintf(rid, sizeof rid, "%s", v);
        json_decref(cmd);
    }
    pending_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    snprintf(p->req_id, sizeof p->req_id, "%s", rid);
    p->r = r;
    p->cb = cb;
    p->ud = ud;
    p->req.data = p;
    /* raft_uv wants entry lengths that are a multiple of 8: pad with JSON
     * whitespace, which apply ignores */
    size_t padded = (len + 7) & ~(size_t)7;
    struct raft_buffer buf = {raft_malloc(padded), padded};
    if (!buf.base) {
        free(p);
        return -ENOMEM;
    }
    memcpy(buf.base, json, len);
    memset((char *)buf.base + len, ' ', padded - len);
    /* linked before raft_apply: a single-voter leader may apply at once */
    p->prev = r->tail;
    if (r->tail)
        r->tail->next = p;
    else
        r->head = p;
    r->tail = p;
    int rv = raft_apply(&r->raft, &p->req, &buf, 1, apply_cb);
    if (rv != 0) {
        pending_unlink(r, p);
        raft_free(buf.base);
        free(p);
        return map_raft_err(rv);
    }
    return 0;
}

/* ---- barriers and leadership --------------------------------------- */

static void internal_submit_cb(void *ud, int status, json_t *result)
{
    (void)ud;
    if (status < 0)
        MS_WARN(CTX, "schema command failed: %s", strerror(-status));
    else if (json_object_get(result, "error"))
        MS_WARN(CTX, "schema command rejected: %s",
                json_string_value(json_object_get(result, "error")));
}

static void leader_barrier_done(ms_raft_t *r, barrier_t *b, int status)
{
    if (status != 0 || r->stopping || raft_state(&r->raft) != RAFT_LEADER ||
        raft_current_term(&r->raft) != b->term) {
        if (raft_state(&r->raft) == RAFT_LEADER && !r->stopping)
            r->barrier_term = 0; /* still leader: try again */
        return;
    }
    r->leader_ready = 1;
    MS_INFO(CTX, "leader for term %llu (id %" PRIu64 ")", (unsigned long long)b->term, r->id);
    int have = ms_fsm_schema_version(r->fsm);
    if (have < MS_FSM_SCHEMA_LATEST) {
        json_t *cmd = have == 0 ? ms_cmd_schema_init() : ms_cmd_schema_upgrade();
        size_t len = 0;
        char *txt = cmd ? ms_cmd_encode(cmd, &len) : NULL;
        if (!txt || ms_raft_submit(r, txt, len, internal_submit_cb, NULL) < 0)
            MS_WARN(CTX, "could not submit the schema command");
        free(txt);
        json_decref(cmd);
    }
    if (r->cfg.on_leader)
        r->cfg.on_leader(r->cfg.ud, 1);
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    barrier_t *b = req->data;
    if (b->term)
        leader_barrier_done(b->r, b, status);
    else if (b->cb)
        b->cb(b->ud, map_raft_err(status));
    free(b);
}

static int barrier_start(ms_raft_t *r, raft_term term, void (*cb)(void *, int), void *ud)
{
    barrier_t *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->r = r;
    b->term = term;
    b->cb = cb;
    b->ud = ud;
    b->req.data = b;
    int rv = raft_barrier(&r->raft, &b->req, barrier_cb);
    if (rv != 0) {
        free(b);
        return map_raft_err(rv);
    }
    return 0;
}

int ms_raft_barrier(ms_raft_t *r, void (*cb)(void *ud, int status), void *ud)
{
    if (r->stage < 3 || r->stopping)
        return -ECANCELED;
    if (raft_state(&r->raft) != RAFT_LEADER)
        return -EREMOTE;
    return barrier_start(r, 0, cb, ud);
}

/* After every loop iteration: notice leadership changes (raft has no
 * callback for them). */
static void check_cb(uv_check_t *h)
{
    ms_raft_t *r = h->data;
    if (r->stopping)
        return;
    if (raft_state(&r->raft) == RAFT_LEADER) {
        raft_term t = raft_current_term(&r->raft);
        if (r->barrier_term != t) {
            if (r->leader_ready) { /* new term without a state change seen */
                r->leader_ready = 0;
                if (r->cfg.on_leader)
                    r->cfg.on_leader(r->cfg.ud, 0);
            }
            r->barrier_term = t;
            if (barrier_start(r, t, NULL, NULL) < 0)
                r->barrier_term = 0;
        }
    } else if (r->leader_ready) {
        r->leader_ready = 0;
        MS_INFO(CTX, "lost leadership");
        if (r->cfg.on_leader)
            r->cfg.on_leader(r->cfg.ud, 0);
    }
}

/* ---- membership ----------------------------------------------------- */

static void change_cb(struct raft_change *req, int status)
{
    change_t *c = req->data;
    if (c->cb)
        c->cb(c->ud, map_raft_err(status));
    free(c);
}

static change_t *change_new(void (*cb)(void *, int), void *ud)
{
    change_t *c = calloc(1, sizeof *c);
    if (c) {
        c->cb = cb;
        c->ud = ud;
        c->req.data = c;
    }
    return c;
}

int ms_raft_add(ms_raft_t *r, uint64_t id, const char *address, void (*cb)(void *ud, int status),
                void *ud)
{
    if (r->stage < 3 || r->stopping)
        return -ECANCELED;
    change_t *c = change_new(cb, ud);
    if (!c)
        return -ENOMEM;
    int rv = raft_add(&r->raft, &c->req, id, address, change_cb);
    if (rv != 0)
        free(c);
    return map_raft_err(rv);
}

int ms_raft_assign(ms_raft_t *r, uint64_t id, int role, void (*cb)(void *ud, int status), void *ud)
{
    if (r->stage < 3 || r->stopping)
        return -ECANCELED;
    int rr = role == MS_RAFT_VOTER ? RAFT_VOTER : role == MS_RAFT_SPARE ? RAFT_SPARE : RAFT_STANDBY;
    change_t *c = change_new(cb, ud);
    if (!c)
        return -ENOMEM;
    int rv = raft_assign(&r->raft, &c->req, id, rr, change_cb);
    if (rv != 0)
        free(c);
    return map_raft_err(rv);
}

int ms_raft_remove(ms_raft_t *r, uint64_t id, void (*cb)(void *ud, int status), void *ud)
{
    if (r->stage < 3 || r->stopping)
        return -ECANCELED;
    change_t *c = change_new(cb, ud);
    if (!c)
        return -ENOMEM;
    int rv = raft_remove(&r->raft, &c->req, id, change_cb);
    if (rv != 0)
        free(c);
    return map_raft_err(rv);
}

/* ---- start ---------------------------------------------------------- */

int ms_raft_start(ms_raft_t *r)
{
    int rv;
    if (r->stage != 0)
        return -EALREADY;
    /* both structs carry a version the user must set (raft/uv.h) */
    r->transport.version = 1;
    r->io.version = 2;
    if ((rv = ms_raft_transport_init(&r->transport, r->loop, r->key, r->bind)) < 0)
        return rv;
    r->stage = 1;
    if ((rv = raft_uv_init(&r->io, r->loop, r->dir, &r->transport)) != 0) {
        MS_ERROR(CTX, "raft_uv_init %s: %s", r->dir, r->io.errmsg);
        return map_raft_err(rv);
    }
    r->stage = 2;
    raft_uv_set_connect_retry_delay(&r->io,
                                    r->cfg.connect_retry_ms ? r->cfg.connect_retry_ms : 100);
    ms_fsm_raft_init(&r->rf, r->fsm);
    ms_fsm_set_apply_hook(r->fsm, on_applied, r);
    if ((rv = raft_init(&r->raft, &r->io, &r->rf, r->id, r->address)) != 0) {
        MS_ERROR(CTX, "raft_init: %s", raft_errmsg(&r->raft));
        return map_raft_err(rv);
    }
    r->stage = 3;
    r->raft.data = r;
    /* from here ms_raft_stop() closes these two with raft */
    uv_check_init(r->loop, &r->check);
    r->check.data = r;
    uv_timer_init(r->loop, &r->stop_timer);
    r->stop_timer.data = r;
    raft_set_election_timeout(&r->raft,
                              r->cfg.election_timeout_ms ? r->cfg.election_timeout_ms : 500);
    raft_set_heartbeat_timeout(&r->raft, r->cfg.heartbeat_ms ? r->cfg.heartbeat_ms : 50);
    raft_set_pre_vote(&r->raft, true);
    raft_set_snapshot_threshold(&r->raft,
                                r->cfg.snapshot_threshold ? r->cfg.snapshot_threshold : 1024);
    raft_set_snapshot_trailing(&r->raft, r->cfg.snapshot_trailing ? r->cfg.snapshot_trailing : 128);

    if (!r->cfg.join) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        rv = raft_configuration_add(&conf, r->id, r->address, RAFT_VOTER);
        if (rv == 0) {
            rv = raft_bootstrap(&r->raft, &conf);
            if (rv == 0)
                MS_INFO(CTX, "bootstrapped a new cluster (id %" PRIu64 ", %s)", r->id, r->address);
            else if (rv == RAFT_CANTBOOTSTRAP)
                rv = 0; /* existing state: restart from it */
        }
        raft_configuration_close(&conf);
        if (rv != 0) {
            MS_ERROR(CTX, "bootstrap: %s", raft_errmsg(&r->raft));
            return map_raft_err(rv);
        }
    }
    if ((rv = raft_start(&r->raft)) != 0) {
        MS_ERROR(CTX, "raft_start: %s", raft_errmsg(&r->raft));
        return map_raft_err(rv);
    }
    r->restores_at_start = ms_fsm_restore_count(r->fsm);
    uv_check_start(&r->check, check_cb);
    return 0;
}

/* ---- info ----------------------------------------------------------- */

static const char *state_name(int s)
{
    switch (s) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    default:
        return "unavailable";
    }
}

void ms_raft_info(ms_raft_t *r, ms_raft_info_t *out)
{
    memset(out, 0, sizeof *out);
    out->id = r->id;
    out->address = r->address;
    out->state = "unavailable";
    if (r->stage < 3)
        return;
    out->state = state_name(raft_state(&r->raft));
    out->leader_ready = r->leader_ready;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&r->raft, &lid, &laddr);
    out->leader_id = lid;
    out->leader_address = laddr;
    out->term = raft_current_term(&r->raft);
    out->commit_index = raft_commit_index(&r->raft);
    out->last_applied = raft_last_applied(&r->raft);
    out->last_index = raft_last_index(&r->raft);
}

int ms_raft_is_leader(ms_raft_t *r)
{
    return r->stage == 3 && !r->stopping && r->leader_ready;
}

int64_t ms_raft_leader_contact_ms(ms_raft_t *r, uint64_t *leader_id)
{
    if (leader_id)
        *leader_id = 0;
    if (r->stage != 3 || r->stopping || raft_state(&r->raft) != RAFT_FOLLOWER)
        return 0;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&r->raft, &lid, &laddr);
    if (!lid || lid == r->id)
        return 0;
    /* election_timer_start is in the raft_uv clock (uv_now of the loop) */
    uint64_t now = uv_now(r->loop), at = r->raft.election_timer_start;
    int64_t age = now > at ? (int64_t)(now - at) : 0;
    if (leader_id)
        *leader_id = lid;
    return ms_mono_ms() - age;
}

int ms_raft_member_role(ms_raft_t *r, uint64_t id)
{
    if (r->stage != 3)
        return -1;
    const struct raft_configuration *c = &r->raft.configuration;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].id != id)
            continue;
        switch (c->servers[i].role) {
        case RAFT_VOTER:
            return MS_RAFT_VOTER;
        case RAFT_STANDBY:
            return MS_RAFT_STANDBY;
        default:
            return MS_RAFT_SPARE;
        }
    }
    return -1;
}

json_t *ms_raft_info_json(ms_raft_t *r)
{
    ms_raft_info_t in;
    char sum[65] = "";
    ms_raft_info(r, &in);
    ms_fsm_checksum(r->fsm, sum);
    json_t *members = json_array(), *o;
    int voters = 0, standbys = 0;
    if (r->stage == 3) {
        const struct raft_configuration *c = &r->raft.configuration;
        for (unsigned i = 0; i < c->n; i++) {
            const struct raft_server *s = &c->servers[i];
            const char *role = s->role == RAFT_VOTER     ? "voter"
                               : s->role == RAFT_STANDBY ? "standby"
                                                         : "spare";
            voters += s->role == RAFT_VOTER;
            standbys += s->role == RAFT_STANDBY;
            json_array_append_new(members, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)s->id,
                                                     "address", s->address, "role", role));
        }
    }
    uint64_t restores = ms_fsm_restore_count(r->fsm);
    o = json_pack("{s:I, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:o, s:i, s:s, s:i, s:I, s:{s:I, s:I}}",
                  "id", (json_int_t)in.id, "address", in.address, "state", in.state, "leader_ready",
                  in.leader_ready, "term", (json_int_t)in.term, "commit_index",
                  (json_int_t)in.commit_index, "applied_index", (json_int_t)in.last_applied,
                  "last_index", (json_int_t)in.last_index, "members", members, "voters", voters,
                  "state_checksum", sum, "schema", ms_fsm_schema_version(r->fsm),
                  "commands_applied", (json_int_t)ms_fsm_applied(r->fsm), "snapshots", "taken",
                  (json_int_t)ms_fsm_snapshot_count(r->fsm), "installed",
                  (json_int_t)(restores - r->restores_at_start));
    if (o)
        json_object_set_new(o, "standbys", json_integer(standbys));
    if (o)
        json_object_set_new(o, "leader",
                            in.leader_id
                                ? json_pack("{s:I, s:s}", "id", (json_int_t)in.leader_id, "address",
                                            in.leader_address ? in.leader_address : "")
                                : json_null());
    return o;
}

/* ---- stop ----------------------------------------------------------- */

static void handle_closed_cb(uv_handle_t *h)
{
    ms_raft_t *r = h->data;
    if (--r->closes == 0 && r->stop_cb)
        r->stop_cb(r->stop_ud);
}

static void node_closed_cb(struct raft *raft)
{
    ms_raft_t *r = raft->data;
    raft_uv_close(&r->io);
    ms_raft_transport_free(&r->transport);
    r->stage = 0;
    ms_fsm_set_apply_hook(r->fsm, NULL, NULL);
    r->closes = 2;
    uv_close((uv_handle_t *)&r->check, handle_closed_cb);
    uv_close((uv_handle_t *)&r->stop_timer, handle_closed_cb);
}

static void do_close(ms_raft_t *r)
{
    if (r->closing)
        return;
    r->closing = 1;
    uv_timer_stop(&r->stop_timer);
    if (r->leader_ready) {
        r->leader_ready = 0;
        if (r->cfg.on_leader)
            r->cfg.on_leader(r->cfg.ud, 0);
    }
    r->raft.data = r;
    raft_close(&r->raft, node_closed_cb);
}

/* The transfer did not finish in time (e.g. every other voter is down). */
static void stop_timer_cb(uv_timer_t *t)
{
    ms_raft_t *r = t->data;
    MS_INFO(CTX, "leadership transfer timed out");
    do_close(r);
}

static void transfer_cb(struct raft_transfer *req)
{
    ms_raft_t *r = req->data;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&r->raft, &lid, &laddr);
    if (r->closing)
        return;
    MS_INFO(CTX, "leadership transfer %s (leader now %llu)",
            lid != 0 && lid != r->id ? "done" : "did not complete", (unsigned long long)lid);
    do_close(r);
}

void ms_raft_stop(ms_raft_t *r, void (*cb)(void *ud), void *ud)
{
    r->stop_cb = cb;
    r->stop_ud = ud;
    if (r->stopping)
        return;
    r->stopping = 1;
    if (r->stage < 3) {
        /* never started: nothing runs on the loop */
        if (r->stage >= 2)
            raft_uv_close(&r->io);
        if (r->stage >= 1)
            ms_raft_transport_free(&r->transport);
        r->stage = 0;
        if (cb)
            cb(ud);
        return;
    }
    if (raft_state(&r->raft) == RAFT_LEADER) {
        const struct raft_configuration *c = &r->raft.configuration;
        int others = 0;
        for (unsigned i = 0; i < c->n; i++)
            others += c->servers[i].role == RAFT_VOTER && c->servers[i].id != r->id;
        if (others > 0) {
            memset(&r->transfer, 0, sizeof r->transfer);
            r->transfer.data = r;
            if (raft_transfer(&r->raft, &r->transfer, 0, transfer_cb) == 0) {
                unsigned et = r->cfg.election_timeout_ms ? r->cfg.election_timeout_ms : 500;
                uv_timer_start(&r->stop_timer, stop_timer_cb, 2 * (uint64_t)et, 0);
                return;
            }
        }
    }
    do_close(r);
}
