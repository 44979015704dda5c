/* Placement of streams on servers. See placement.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/placement.h"
#include "util/ipaddr.h"

typedef struct {
    json_t *servers, *groups, *clusters, *streams;
    const ms_placement_opts_t *o;
    int64_t *cnt; /* primary streams per server (parallel to servers) */
    size_t ns;
    json_t *rejected; /* searches only: [{"server", "reason"}] of the servers passed over */
    char *note;       /* the last search's warning ("" for none), NOTE_MAX bytes */
} ctx_t;

#define NOTE_MAX 200

static const char *S(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static int64_t I(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (json_is_boolean(v))
        return json_is_true(v);
    return json_is_integer(v) ? json_integer_value(v) : (int64_t)json_number_value(v);
}

/* Records why server name was passed over (searches with c->rejected). */
static void reject(const ctx_t *c, const char *name, const char *reason)
{
    if (!c->rejected || !name || !name[0])
        return;
    size_t i;
    json_t *r;
    json_array_foreach(c->rejected, i, r) if (strcmp(S(r, "server"), name) == 0) return;
    json_array_append_new(c->rejected, json_pack("{s:s,s:s}", "server", name, "reason", reason));
}

void ms_placement_opts_defaults(ms_placement_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->down_after_ms = 3000;
    o->storage_max_pct = 80;
}

static int srv_index(const ctx_t *c, const char *name)
{
    if (!name || !name[0])
        return -1;
    for (size_t i = 0; i < c->ns; i++)
        if (strcmp(S(json_array_get(c->servers, i), "name"), name) == 0)
            return (int)i;
    return -1;
}

static int healthy(const ctx_t *c, json_t *s)
{
    if (c->o->self && strcmp(S(s, "name"), c->o->self) == 0)
        return 1;
    json_t *lr = json_object_get(s, "last_report_ms");
    return strcmp(S(s, "health"), "up") == 0 && json_is_integer(lr) &&
           c->o->now_ms - json_integer_value(lr) <= c->o->down_after_ms;
}

/* NULL when server i qualifies for a stream of group grp ("" = any), else
 * why not. */
static const char *qualifies(const ctx_t *c, int i, const char *grp)
{
    if (i < 0)
        return "no such server";
    json_t *s = json_array_get(c->servers, (size_t)i);
    if (!healthy(c, s))
        return "down";
    if (!I(s, "distribution"))
        return "distribution disabled";
    if (I(s, "draining"))
        return "draining";
    if (c->cnt[i] >= I(s, "stream_limit"))
        return "stream limit reached";
    int64_t bl = I(s, "bitrate_limit_kbps");
    if (bl > 0 && I(json_object_get(s, "load"), "bitrate_kbps") >= bl)
        return "bitrate limit reached";
    if (grp && grp[0] && strcmp(S(s, "group"), grp) != 0)
        return "other group";
    int64_t tot = I(s, "storage_total"), used = I(s, "storage_used");
    if (tot > 0 && used * 100 > (int64_t)c->o->storage_max_pct * tot)
        return "storage full";
    return NULL;
}

static int in_any_cluster(const ctx_t *c, const char *name)
{
    size_t i;
    json_t *cl;
    json_array_foreach(c->clusters, i, cl)
    {
        if (strcmp(S(cl, "main"), name) == 0 || strcmp(S(cl, "additional"), name) == 0)
            return 1;
    }
    return 0;
}

static int group_exists(const ctx_t *c, const char *name)
{
    size_t i;
    json_t *g;
    json_array_foreach(c->groups, i, g) if (strcmp(S(g, "name"), name) == 0) return 1;
    return 0;
}

/* ---- camera IP -> group (subnets are CIDR, IPv4 or IPv6) ------------- */

/* A literal address (util/ipaddr.h); *v4 says whether it was written as IPv4. */
static int parse_ip(const char *s, ms_ip_t *out, int *v4)
{
    if (ms_ip_parse(s, out) < 0)
        return -1;
    *v4 = strchr(s, ':') == NULL;
    return 0;
}

/* 1 when ip is inside the block cidr (a bare address is a /32 or /128; the
 * group op accepts a prefix length with leading zeros). An address only
 * matches a block written in its own family: an IPv4 camera never matches
 * "::/0", "::ffff:192.0.2.1" never matches "192.0.2.0/24". */
static int in_subnet(const ms_ip_t *ip, int v4, const char *cidr)
{
    ms_cidr_t c;
    return ms_cidr_parse_opt(cidr, MS_CIDR_LEADING_ZEROS, &c, NULL) == 0 && c.v4 == v4 &&
           ms_cidr_match(&c, ip);
}

/* Host of rtsp://[user[:pass]@]host[:port]/... into out. */
static int url_host(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -1;
    p += 3;
    const char *end = p + strcspn(p, "/?#");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at)
        p = at + 1;
    const char *hend;
    if (*p == '[') {
        p++;
        hend = memchr(p, ']', (size_t)(end - p));
        if (!hend)
            return -1;
    } else {
        hend = memchr(p, ':', (size_t)(end - p));
        if (!hend)
            hend = end;
    }
    size_t n = (size_t)(hend - p);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

const char *ms_placement_stream_group(json_t *groups, json_t *stream)
{
    const char *g = S(stream, "group");
    if (g[0])
        return g;
    char host[256];
    ms_ip_t ip;
    int v4;
    const char *cam = S(stream, "camera");
    if (parse_ip(cam, &ip, &v4) < 0 &&
        (url_host(S(stream, "url"), host, sizeof host) < 0 || parse_ip(host, &ip, &v4) < 0))
        return "";
    size_t i, k;
    json_t *grp, *sn;
    json_array_foreach(groups, i, grp)
    {
        json_array_foreach(json_object_get(grp, "subnets"), k, sn)
        {
            if (json_is_string(sn) && in_subnet(&ip, v4, json_string_value(sn)))
                return S(grp, "name");
        }
    }
    return "";
}

/* ---- searches --------------------------------------------------------- */

static void why_add(char *why, size_t cap, const char *name, const char *r)
{
    size_t n = strlen(why);
    if (n + 4 < cap)
        snprintf(why + n, cap - n, "%s%s: %s", n ? "; " : "", name, r);
}

/* Least-loaded qualifying server of the pool (servers in no cluster, or
 * every server while no cluster exists), not ex1/ex2; -1 when none. */
static int pick_pool(const ctx_t *c, const char *grp, const char *ex1, const char *ex2, char *why,
                     size_t cap)
{
    int best = -1;
    int any_cluster = json_array_size(c->clusters) > 0;
    for (size_t i = 0; i < c->ns; i++) {
        const char *name = S(json_array_get(c->servers, i), "name");
        if ((ex1 && strcmp(name, ex1) == 0) || (ex2 && strcmp(name, ex2) == 0)) {
            if (why) /* the main search, not the backup's */
                reject(c, name, "current server");
            continue;
        }
        if (any_cluster && in_any_cluster(c, name)) {
            if (why)
                reject(c, name, "in a cluster: runs reserved streams only");
            continue;
        }
        const char *r = qualifies(c, (int)i, grp);
        if (r) {
            if (why) {
                why_add(why, cap, name, r);
                reject(c, name, r);
            }
            continue;
        }
        if (best < 0 || c->cnt[i] < c->cnt[best])
            best = (int)i;
    }
    return best;
}

static int cluster_candidate(const ctx_t *c, json_t *cl, const char *grp)
{
    const char *cg = S(cl, "group");
    if (grp[0])
        return strcmp(cg, grp) == 0;
    return !cg[0] || !group_exists(c, cg); /* clusters outside any group */
}

/* Best cluster for a reserved stream of group grp: both members qualify
 * (least-loaded main first), else one of them. exclude: a server not to
 * take as primary. p, b: server indexes or -1. */
static void pick_cluster(const ctx_t *c, const char *grp, const char *want, const char *exclude,
                         int *p, int *b, char *why, size_t cap)
{
    int bp = -1, bb = -1, rank = 0;
    size_t i;
    json_t *cl;
    *p = *b = -1;
    json_array_foreach(c->clusters, i, cl)
    {
        if (want ? strcmp(S(cl, "name"), want) != 0 : !cluster_candidate(c, cl, grp))
            continue;
        int m = srv_index(c, S(cl, "main")), a = srv_index(c, S(cl, "additional"));
        const char *rm = qualifies(c, m, NULL), *ra = a >= 0 ? qualifies(c, a, NULL) : "none";
        if (!rm && exclude && strcmp(S(cl, "main"), exclude) == 0)
            rm = "current server";
        if (!ra && exclude && strcmp(S(cl, "additional"), exclude) == 0)
            ra = "current server";
        if (rm)
            reject(c, S(cl, "main"), rm);
        if (ra && a >= 0)
            reject(c, S(cl, "additional"), ra);
        int pp = !rm ? m : !ra ? a : -1, pb = !rm && !ra ? a : -1;
        if (pp < 0) {
            char n[160];
            snprintf(n, sizeof n, "cluster %s", S(cl, "name"));
            why_add(why, cap, n, rm);
            continue;
        }
        int r = pb >= 0 ? 2 : 1;
        if (r > rank || (r == rank && c->cnt[pp] < c->cnt[bp])) {
            rank = r;
            bp = pp;
            bb = pb;
        }
    }
    if (rank == 0 && !why[0])
        snprintf(why, cap, want ? "no cluster '%s'" : "no cluster for group '%s'",
                 want ? want : grp);
    *p = bp;
    *b = bb;
}

/* 1 when a cluster may take a reserved stream of group grp. */
static int has_cluster_for(const ctx_t *c, const char *grp)
{
    size_t i;
    json_t *cl;
    json_array_foreach(c->clusters, i, cl) if (cluster_candidate(c, cl, grp)) return 1;
    return 0;
}

static const char *grp_label(const char *grp)
{
    return grp[0] ? grp : "(none)";
}

/* Fresh search; fills p, b (indexes or -1) and why. A reserved stream runs
 * on a cluster of its group; when its group has no cluster at all it falls
 * back to the pool of unreserved streams (primary and backup among the
 * servers in no cluster) and c->note says so (docs/cluster.md "Two
 * pools"). */
static void search(const ctx_t *c, json_t *st, const char *want, const char *exclude, int *p,
                   int *b, char *why, size_t cap)
{
    const char *grp = ms_placement_stream_group(c->groups, st);
    int reserved = I(st, "reserve") != 0;
    why[0] = '\0';
    if (c->note)
        c->note[0] = '\0';
    if (want || (reserved && has_cluster_for(c, grp))) {
        pick_cluster(c, grp, want, exclude, p, b, why, cap);
        if (*p < 0 && reserved && !want) { /* say which pool failed */
            char tmp[512];
            snprintf(tmp, sizeof tmp, "reserve: no cluster of group %s has a qualifying server: %s",
                     grp_label(grp), why);
            snprintf(why, cap, "%s", tmp);
        }
        return;
    }
    *p = pick_pool(c, grp, exclude, NULL, why, cap);
    *b = -1;
    if (*p >= 0) {
        c->cnt[*p]++; /* the backup is chosen with the primary counted */
        *b = pick_pool(c, grp, S(json_array_get(c->servers, (size_t)*p), "name"), NULL, NULL, 0);
        c->cnt[*p]--;
    } else if (!why[0]) {
        snprintf(why, cap,
                 json_array_size(c->clusters) > 0 ? "no server outside the clusters" : "no server");
    }
    if (reserved) {
        if (c->note)
            snprintf(c->note, NOTE_MAX,
                     "reserve: no cluster in group %s: placed like an unreserved stream "
                     "(primary and backup among the servers in no cluster)",
                     grp_label(grp));
        if (*p < 0) {
            char tmp[512];
            snprintf(tmp, sizeof tmp, "reserve: no cluster in group %s, and %s", grp_label(grp),
                     why);
            snprintf(why, cap, "%s", tmp);
        }
    }
}

/* Backup for a stream whose primary is server p (index). */
static int pick_backup(const ctx_t *c, json_t *st, int p)
{
    const char *pname = S(json_array_get(c->servers, (size_t)p), "name");
    if (I(st, "reserve") && in_any_cluster(c, pname)) {
        size_t i;
        json_t *cl;
        json_array_foreach(c->clusters, i, cl)
        {
            const char *other = strcmp(S(cl, "main"), pname) == 0         ? S(cl, "additional")
                                : strcmp(S(cl, "additional"), pname) == 0 ? S(cl, "main")
                                                                          : NULL;
            int o = other ? srv_index(c, other) : -1;
            if (o >= 0 && !qualifies(c, o, NULL))
                return o;
        }
        return -1;
    }
    return pick_pool(c, ms_placement_stream_group(c->groups, st), pname, NULL, NULL, 0);
}

static int ctx_init(ctx_t *c, json_t *servers, json_t *groups, json_t *clusters, json_t *streams,
                    const ms_placement_opts_t *o)
{
    c->servers = servers;
    c->groups = groups;
    c->clusters = clusters;
    c->streams = streams;
    c->o = o;
    c->rejected = NULL;
    c->note = NULL;
    c->ns = json_array_size(servers);
    c->cnt = calloc(c->ns + 1, sizeof *c->cnt);
    if (!c->cnt)
        return -1;
    size_t i;
    json_t *st;
    json_array_foreach(streams, i, st)
    {
        int k = srv_index(c, S(json_object_get(st, "placement"), "primary"));
        if (k >= 0)
            c->cnt[k]++;
    }
    return 0;
}

static json_t *name_or_null(const ctx_t *c, int i)
{
    return i < 0 ? json_null() : json_string(S(json_array_get(c->servers, (size_t)i), "name"));
}

json_t *ms_placement_plan(json_t *servers, json_t *groups, json_t *clusters, json_t *streams,
                          const ms_placement_opts_t *o)
{
    ctx_t c;
    if (ctx_init(&c, servers, groups, clusters, streams, o) < 0)
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *st;
    char note[NOTE_MAX];
    c.note = note;
    json_array_foreach(streams, i, st)
    {
        note[0] = '\0';
        json_t *pl = json_object_get(st, "placement");
        int p = srv_index(&c, S(pl, "primary")), b = srv_index(&c, S(pl, "backup"));
        int ph = p >= 0 && healthy(&c, json_array_get(servers, (size_t)p));
        int bh = b >= 0 && b != p && healthy(&c, json_array_get(servers, (size_t)b));
        /* a draining server (POST /servers/{name}/drain) hands its
         * primaries to their backups, or to a new search; with nowhere to
         * go a stream stays where it is rather than stop */
        int pd = ph && I(json_array_get(servers, (size_t)p), "draining");
        int bd = bh && I(json_array_get(servers, (size_t)b), "draining");
        int np = p, nb = b, failover = 0;
        char why[512] = "";
        if (pd && bh && !bd) {
            np = b;
            c.cnt[b]++;
            nb = pick_backup(&c, st, b);
            c.cnt[b]--;
        } else if (pd) {
            c.cnt[p]--;
            search(&c, st, NULL, NULL, &np, &nb, why, sizeof why);
            c.cnt[p]++;
            if (np < 0) { /* nowhere else: stay, and keep a backup that is not draining */
                np = p;
                nb = bh && !bd ? b : pick_backup(&c, st, p);
                if (nb < 0 && bh)
                    nb = b;
                why[0] = '\0';
            }
        } else if (ph) {
            if (o->failback && I(st, "reserve")) { /* back to the cluster's main */
                size_t k;
                json_t *cl;
                json_array_foreach(clusters, k, cl)
                {
                    int m = srv_index(&c, S(cl, "main"));
                    if (strcmp(S(cl, "additional"), S(pl, "primary")) == 0 && m >= 0 &&
                        !qualifies(&c, m, NULL)) {
                        np = m;
                        nb = p;
                    }
                }
            }
            if (np == p && (!bh || bd)) {
                nb = pick_backup(&c, st, p);
                if (nb < 0 && bd)
                    nb = b; /* a draining backup until another qualifies */
            }
        } else if (bh) {
            np = b;
            failover = 1;
            c.cnt[b]++; /* so the backup search sees the new load */
            nb = pick_backup(&c, st, b);
            c.cnt[b]--;
        } else {
            if (p >= 0)
                c.cnt[p]--; /* its stream leaves the dead server */
            search(&c, st, NULL, NULL, &np, &nb, why, sizeof why);
            if (p >= 0)
                c.cnt[p]++;
        }
        if (np == p && nb == b && np >= 0)
            continue; /* unplaced streams are always listed (reason) */
        if (p >= 0)
            c.cnt[p]--;
        if (np >= 0)
            c.cnt[np]++;
        json_t *d = json_pack("{s:O,s:O,s:o,s:o,s:b}", "uid", json_object_get(st, "uid"), "name",
                              json_object_get(st, "name"), "primary", name_or_null(&c, np),
                              "backup", name_or_null(&c, nb), "failover", failover);
        json_object_set_new(d, "reason", np < 0 ? json_string(why) : json_null());
        if (note[0])
            json_object_set_new(d, "note", json_string(note));
        json_array_append_new(out, d);
    }
    free(c.cnt);
    return out;
}

/* The servers the search passed over, in the order of the state. */
static json_t *take_rejected(ctx_t *c)
{
    json_t *r = c->rejected;
    c->rejected = NULL;
    return r ? r : json_array();
}

json_t *ms_placement_search(json_t *servers, json_t *groups, json_t *clusters, json_t *streams,
                            json_t *stream, const char *want_cluster, const char *exclude,
                            const ms_placement_opts_t *o)
{
    ctx_t c;
    if (ctx_init(&c, servers, groups, clusters, streams, o) < 0)
        return NULL;
    c.rejected = json_array();
    char note[NOTE_MAX] = "";
    c.note = note;
    int cur = srv_index(&c, S(json_object_get(stream, "placement"), "primary"));
    if (cur >= 0)
        c.cnt[cur]--;
    int p, b;
    char why[512];
    search(&c, stream, want_cluster, exclude, &p, &b, why, sizeof why);
    json_t *out = p < 0 ? json_pack("{s:s}", "reason", why)
                        : json_pack("{s:o,s:o}", "primary", name_or_null(&c, p), "backup",
                                    name_or_null(&c, b));
    if (out)
        json_object_set_new(out, "rejected", take_rejected(&c));
    if (out && note[0])
        json_object_set_new(out, "note", json_string(note));
    json_decref(c.rejected);
    free(c.cnt);
    return out;
}

json_t *ms_placement_search_server(json_t *servers, json_t *groups, json_t *clusters,
                                   json_t *streams, json_t *stream, const char *target,
                                   const ms_placement_opts_t *o)
{
    ctx_t c;
    if (!target || ctx_init(&c, servers, groups, clusters, streams, o) < 0)
        return NULL;
    c.rejected = json_array();
    const char *curname = S(json_object_get(stream, "placement"), "primary");
    int cur = srv_index(&c, curname);
    if (cur >= 0)
        c.cnt[cur]--;
    const char *grp = ms_placement_stream_group(c.groups, stream);
    int t = srv_index(&c, target), b = -1;
    char why[512] = "";
    /* a cluster member qualifies by its cluster's group, a pool server by its own */
    /* a reserved stream whose group has no cluster uses the unreserved pool */
    int reserved = I(stream, "reserve") && has_cluster_for(&c, grp);
    const char *r =
        strcmp(target, curname) == 0 ? "current server" : qualifies(&c, t, reserved ? NULL : grp);
    if (!r && reserved) {
        /* a reserved stream runs on a cluster of its group: target is the
         * main or additional of one, the other member is the backup */
        size_t i;
        json_t *cl;
        int member = 0;
        json_array_foreach(c.clusters, i, cl)
        {
            const char *other = strcmp(S(cl, "main"), target) == 0         ? S(cl, "additional")
                                : strcmp(S(cl, "additional"), target) == 0 ? S(cl, "main")
                                                                           : NULL;
            if (!other || !cluster_candidate(&c, cl, grp))
                continue;
            member = 1;
            int ob = srv_index(&c, other);
            const char *ro = ob >= 0 ? qualifies(&c, ob, NULL) : "none";
            if (!ro && ob != cur) {
                b = ob;
                break;
            }
            if (ob >= 0)
                reject(&c, other, ro ? ro : "current server");
        }
        if (!member)
            r = grp[0] ? "not in a cluster of the stream's group (the stream is reserved)"
                       : "not in a cluster (the stream is reserved)";
    } else if (!r && json_array_size(c.clusters) > 0 && in_any_cluster(&c, target)) {
        r = "in a cluster: runs reserved streams only";
    } else if (!r) {
        c.cnt[t]++; /* the backup is chosen with the primary counted */
        b = pick_pool(&c, grp, target, NULL, NULL, 0);
        c.cnt[t]--;
    }
    json_t *out;
    if (r) {
        reject(&c, target, r);
        snprintf(why, sizeof why, "%s: %s", target, r);
        out = json_pack("{s:s}", "reason", why);
    } else {
        out = json_pack("{s:s,s:o}", "primary", target, "backup", name_or_null(&c, b));
    }
    if (out)
        json_object_set_new(out, "rejected", take_rejected(&c));
    json_decref(c.rejected);
    free(c.cnt);
    return out;
}
