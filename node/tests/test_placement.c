/* Unit tests of the placement rules (node/placement.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "node/placement.h"

#define NOW 1700000000000LL

static json_t *srv(const char *name, const char *grp, int limit, int kbps, int limit_kbps,
                   int used_pct, int up)
{
    return json_pack("{s:s,s:s,s:i,s:i,s:i,s:I,s:I,s:{s:i},s:s,s:I}", "name", name, "group", grp,
                     "distribution", 1, "stream_limit", limit, "bitrate_limit_kbps", limit_kbps,
                     "storage_total", (json_int_t)100, "storage_used", (json_int_t)used_pct, "load",
                     "bitrate_kbps", kbps, "health", up ? "up" : "down", "last_report_ms",
                     (json_int_t)(up ? NOW - 500 : NOW - 10000));
}

static json_t *stream(const char *name, const char *url, int reserve, const char *p, const char *b)
{
    return json_pack("{s:s,s:s,s:s,s:b,s:s,s:s,s:{s:o,s:o}}", "uid", name, "name", name, "url", url,
                     "reserve", reserve, "group", "", "camera", "", "placement", "primary",
                     p ? json_string(p) : json_null(), "backup", b ? json_string(b) : json_null());
}

static ms_placement_opts_t opts(void)
{
    ms_placement_opts_t o;
    ms_placement_opts_defaults(&o);
    o.now_ms = NOW;
    return o;
}

static json_t *find(json_t *plan, const char *uid)
{
    size_t i;
    json_t *d;
    json_array_foreach(plan, i, d) if (strcmp(json_string_value(json_object_get(d, "uid")), uid) ==
                                       0) return d;
    return NULL;
}

static const char *P(json_t *d, const char *k)
{
    return json_string_value(json_object_get(d, k));
}

/* No clusters: unreserved streams spread over every server (least loaded),
 * each with a backup on another server. */
static void test_unreserved_spread(void **st)
{
    (void)st;
    json_t *servers =
        json_pack("[o,o,o]", srv("a", "default", 10, 0, 0, 10, 1),
                  srv("b", "default", 10, 0, 0, 10, 1), srv("c", "default", 10, 0, 0, 10, 1));
    json_t *streams = json_pack("[o,o,o]", stream("s1", "rtsp://10.0.0.1/x", 0, NULL, NULL),
                                stream("s2", "rtsp://10.0.0.2/x", 0, NULL, NULL),
                                stream("s3", "rtsp://10.0.0.3/x", 0, NULL, NULL));
    json_t *g = json_array(), *cl = json_array();
    ms_placement_opts_t o = opts();
    json_t *plan = ms_placement_plan(servers, g, cl, streams, &o);
    assert_int_equal(json_array_size(plan), 3);
    assert_string_equal(P(find(plan, "s1"), "primary"), "a");
    assert_string_equal(P(find(plan, "s1"), "backup"), "b");
    assert_string_equal(P(find(plan, "s2"), "primary"), "b");
    assert_string_equal(P(find(plan, "s3"), "primary"), "c");
    assert_string_equal(P(find(plan, "s3"), "backup"), "a");
    /* deterministic: the same input gives the same plan */
    json_t *again = ms_placement_plan(servers, g, cl, streams, &o);
    assert_true(json_equal(plan, again));
    json_decref(again);
    json_decref(plan);
    json_decref(servers);
    json_decref(streams);
    json_decref(g);
    json_decref(cl);
}

/* Primary down, backup up: the backup takes over and a new backup is
 * chosen; a healthy placement is left alone; the dead server coming back
 * takes nothing back (no failback). */
static void test_failover_and_no_failback(void **st)
{
    (void)st;
    json_t *servers =
        json_pack("[o,o,o]", srv("a", "default", 10, 0, 0, 10, 0),
                  srv("b", "default", 10, 0, 0, 10, 1), srv("c", "default", 10, 0, 0, 10, 1));
    json_t *streams = json_pack("[o,o]", stream("s1", "rtsp://h/x", 0, "a", "b"),
                                stream("s2", "rtsp://h/y", 0, "b", "c"));
    json_t *g = json_array(), *cl = json_array();
    ms_placement_opts_t o = opts();
    json_t *plan = ms_placement_plan(servers, g, cl, streams, &o);
    assert_int_equal(json_array_size(plan), 1);
    json_t *d = find(plan, "s1");
    assert_string_equal(P(d, "primary"), "b");
    assert_string_equal(P(d, "backup"), "c");
    assert_true(json_is_true(json_object_get(d, "failover")));
    json_decref(plan);
    /* a comes back: s1 stays on b */
    json_object_set_new(json_object_get(json_array_get(streams, 0), "placement"), "primary",
                        json_string("b"));
    json_object_set_new(json_object_get(json_array_get(streams, 0), "placement"), "backup",
                        json_string("c"));
    json_array_set_new(servers, 0, srv("a", "default", 10, 0, 0, 10, 1));
    plan = ms_placement_plan(servers, g, cl, streams, &o);
    assert_int_equal(json_array_size(plan), 0);
    json_decref(plan);
    json_decref(servers);
    json_decref(streams);
    json_decref(g);
    json_decref(cl);
}

/* Qualification: stream limit, bitrate limit, storage > 80 %, group, and
 * the reason when nothing qualifies. */
static void test_qualification(void **st)
{
    (void)st;
    json_t *servers = json_pack(
        "[o,o,o,o]", srv("a", "default", 0, 0, 0, 10, 1), srv("b", "default", 10, 900, 800, 10, 1),
        srv("c", "west", 10, 0, 0, 81, 1), srv("d", "east", 10, 0, 0, 10, 1));
    json_t *streams = json_pack("[o]", stream("s1", "rtsp://h/x", 0, NULL, NULL));
    json_t *g = json_array(), *cl = json_array();
    ms_placement_opts_t o = opts();
    json_t *plan = ms_placement_plan(servers, g, cl, streams, &o);
    assert_string_equal(P(find(plan, "s1"), "primary"), "d"); /* no group: d qualifies */
    json_decref(plan);
    /* the stream's group is "west": nothing qualifies */
    json_object_set_new(json_array_get(streams, 0), "group", json_string("west"));
    plan = ms_placement_plan(servers, g, cl, streams, &o);
    json_t *d = find(plan, "s1");
    assert_true(json_is_null(json_object_get(d, "primary")));
    const char *why = P(d, "reason");
    assert_non_null(strstr(why, "a: stream limit reached"));
    assert_non_null(strstr(why, "b: bitrate limit reached"));
    assert_non_null(strstr(why, "c: storage full"));
    assert_non_null(strstr(why, "d: other group"));
    json_decref(plan);
    /* storage threshold configurable */
    o.storage_max_pct = 90;
    json_object_set_new(json_array_get(streams, 0), "group", json_string(""));
    json_array_remove(servers, 3);
    plan = ms_placement_plan(servers, g, cl, streams, &o);
    assert_string_equal(P(find(plan, "s1"), "primary"), "c");
    json_decref(plan);
    json_decref(servers);
    json_decref(streams);
    json_decref(g);
    json_decref(cl);
}

/* A camera's group: the first group with a subnet holding its address, in the
 * address's own family only; the group op's leading zeros match too. */
static void test_stream_group_subnets(void **st)
{
    (void)st;
    json_t *groups =
        json_pack("[{s:s,s:[s,s]},{s:s,s:[s,s]},{s:s,s:[s]}]", "name", "any6", "subnets", "::/0",
                  "fd00::/8", "name", "v4", "subnets", "10.1.0.0/016", "192.0.2.7", "name",
                  "mapped", "subnets", "::ffff:198.51.100.0/120");
    struct {
        const char *camera, *url, *group;
    } cases[] = {
        {"10.1.2.3", "", "v4"},
        {"", "rtsp://u:p@10.1.200.1:554/x", "v4"},
        {"192.0.2.7", "", "v4"},
        {"192.0.2.8", "", ""},
        {"198.51.100.9", "", ""}, /* an IPv4 camera never matches an IPv6 block */
        {"::ffff:198.51.100.9", "", "any6"},
        {"", "rtsp://[fd00::5]/x", "any6"},
        {"10.2.0.1", "", ""},
        {"", "rtsp://cam.example/x", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *s = json_pack("{s:s,s:s}", "camera", cases[i].camera, "url", cases[i].url);
        assert_string_equal(ms_placement_stream_group(groups, s), cases[i].group);
        json_decref(s);
    }
    json_decref(groups);
}

/* Reserved streams: cluster of the group selected by the camera's subnet;
 * unreserved streams avoid clustered servers. */
static void test_clusters_and_subnets(void **st)
{
    (void)st;
    json_t *servers =
        json_pack("[o,o,o,o,o]", srv("a", "default", 10, 0, 0, 10, 1),
                  srv("b", "default", 10, 0, 0, 10, 1), srv("c", "default", 10, 0, 0, 10, 1),
                  srv("d", "default", 10, 0, 0, 10, 1), srv("e", "default", 10, 0, 0, 10, 1));
    json_t *groups = json_pack("[{s:s,s:[s]},{s:s,s:[s,s]}]", "name", "east", "subnets",
                               "10.1.0.0/16", "name", "west", "subnets", "10.2.0.0/16", "fd00::/8");
    json_t *clusters = json_pack("[{s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s}]", "name", "ce", "group",
                                 "east", "main", "a", "additional", "b", "name", "cw", "group",
                                 "west", "main", "c", "additional", "d");
    json_t *streams =
        json_pack("[o,o,o,o]", stream("r1", "rtsp://u:p@10.2.3.4:554/x", 1, NULL, NULL),
                  stream("r2", "rtsp://10.1.9.9/x", 1, NULL, NULL),
                  stream("r3", "rtsp://[fd00::5]:554/x", 1, NULL, NULL),
                  stream("u1", "rtsp://h/x", 0, NULL, NULL));
    ms_placement_opts_t o = opts();
    json_t *plan = ms_placement_plan(servers, groups, clusters, streams, &o);
    assert_string_equal(P(find(plan, "r1"), "primary"), "c");
    assert_string_equal(P(find(plan, "r1"), "backup"), "d");
    assert_string_equal(P(find(plan, "r2"), "primary"), "a");
    assert_string_equal(P(find(plan, "r2"), "backup"), "b");
    assert_string_equal(P(find(plan, "r3"), "primary"), "c");
    assert_string_equal(P(find(plan, "u1"), "primary"), "e"); /* the only unclustered server */
    assert_true(json_is_null(json_object_get(find(plan, "u1"), "backup")));
    json_decref(plan);
    /* main of cw down: r1 runs on the additional server, no backup */
    json_array_set_new(servers, 2, srv("c", "default", 10, 0, 0, 10, 0));
    plan = ms_placement_plan(servers, groups, clusters, streams, &o);
    assert_string_equal(P(find(plan, "r1"), "primary"), "d");
    assert_true(json_is_null(json_object_get(find(plan, "r1"), "backup")));
    json_decref(plan);
    /* transfer search into a chosen cluster, and automatic excluding the current one */
    json_t *r = ms_placement_search(servers, groups, clusters, streams, json_array_get(streams, 1),
                                    "cw", NULL, &o);
    assert_string_equal(P(r, "primary"), "d");
    json_decref(r);
    r = ms_placement_search(servers, groups, clusters, streams, json_array_get(streams, 1), "zz",
                            NULL, &o);
    assert_non_null(strstr(P(r, "reason"), "no cluster 'zz'"));
    json_decref(r);
    /* a camera in no group's subnet: clusters outside any group */
    r = ms_placement_search(servers, groups, clusters, streams,
                            json_array_get(streams, 3) /* unreserved */, NULL, "e", &o);
    assert_non_null(P(r, "reason"));
    /* every server passed over is listed with its reason (dry_run) */
    json_t *rej = json_object_get(r, "rejected");
    assert_true(json_is_array(rej));
    int seen_e = 0, seen_a = 0;
    size_t k;
    json_t *x;
    json_array_foreach(rej, k, x)
    {
        if (strcmp(P(x, "server"), "e") == 0)
            seen_e = strcmp(P(x, "reason"), "current server") == 0;
        if (strcmp(P(x, "server"), "a") == 0)
            seen_a = strstr(P(x, "reason"), "in a cluster") != NULL;
    }
    assert_true(seen_e && seen_a);
    json_decref(r);
    /* transfer to a named server: a reserved stream's target must be a
     * member of a cluster of its group; the other member is the backup */
    r = ms_placement_search_server(servers, groups, clusters, streams, json_array_get(streams, 1),
                                   "b", &o);
    assert_string_equal(P(r, "primary"), "b");
    assert_string_equal(P(r, "backup"), "a");
    json_decref(r);
    r = ms_placement_search_server(servers, groups, clusters, streams, json_array_get(streams, 1),
                                   "e", &o);
    assert_null(P(r, "primary"));
    assert_non_null(strstr(P(r, "reason"), "e: not in a cluster"));
    json_decref(r);
    r = ms_placement_search_server(servers, groups, clusters, streams, json_array_get(streams, 0),
                                   "c", &o); /* c is down */
    assert_string_equal(P(r, "reason"), "c: down");
    assert_string_equal(P(json_array_get(json_object_get(r, "rejected"), 0), "server"), "c");
    json_decref(r);
    r = ms_placement_search_server(servers, groups, clusters, streams, json_array_get(streams, 3),
                                   "a", &o); /* unreserved stream onto a clustered server */
    assert_non_null(strstr(P(r, "reason"), "runs reserved streams only"));
    json_decref(r);
    r = ms_placement_search_server(servers, groups, clusters, streams, json_array_get(streams, 3),
                                   "nosuch", &o);
    assert_string_equal(P(r, "reason"), "nosuch: no such server");
    json_decref(r);
    json_decref(servers);
    json_decref(groups);
    json_decref(clusters);
    json_decref(streams);
}

/* Two pools made visible: a reserved stream with no cluster in its group is
 * placed like an unreserved one (with a note), a reserved stream whose
 * group's clusters cannot take it is unplaced with a "reserve:" reason, and
 * an unreserved stream with every server in a cluster says so. */
static void test_reserve_pools_and_reasons(void **st)
{
    (void)st;
    json_t *servers =
        json_pack("[o,o,o]", srv("a", "default", 10, 0, 0, 10, 1),
                  srv("b", "default", 10, 0, 0, 10, 1), srv("c", "default", 10, 0, 0, 10, 1));
    json_t *groups = json_array(), *clusters = json_array();
    json_t *streams = json_pack("[o,o]", stream("r", "rtsp://h/x", 1, NULL, NULL),
                                stream("u", "rtsp://h/y", 0, NULL, NULL));
    ms_placement_opts_t o = opts();
    /* no cluster at all: the reserved stream gets a primary and a backup from the pool */
    json_t *plan = ms_placement_plan(servers, groups, clusters, streams, &o);
    json_t *d = find(plan, "r");
    assert_non_null(d);
    assert_non_null(P(d, "primary"));
    assert_non_null(P(d, "backup"));
    assert_string_not_equal(P(d, "primary"), P(d, "backup"));
    assert_non_null(P(d, "note"));
    assert_non_null(strstr(P(d, "note"), "reserve: no cluster in group"));
    assert_null(P(find(plan, "u"), "note"));
    json_decref(plan);
    /* a cluster (a, b) outside any group, both members down: r is unplaced
     * with a reason naming the reserve rule; u runs on c, the only server
     * outside the cluster */
    json_array_append_new(clusters, json_pack("{s:s,s:s,s:s,s:s}", "name", "k", "group", "", "main",
                                              "a", "additional", "b"));
    json_array_set_new(servers, 0, srv("a", "default", 10, 0, 0, 10, 0));
    json_array_set_new(servers, 1, srv("b", "default", 10, 0, 0, 10, 0));
    plan = ms_placement_plan(servers, groups, clusters, streams, &o);
    d = find(plan, "r");
    assert_null(P(d, "primary"));
    assert_non_null(strstr(P(d, "reason"), "reserve: no cluster of group (none) has a qualifying"));
    assert_non_null(strstr(P(d, "reason"), "down"));
    assert_string_equal(P(find(plan, "u"), "primary"), "c");
    json_decref(plan);
    /* c in a second cluster: no server is left for the unreserved stream */
    json_array_append_new(clusters, json_pack("{s:s,s:s,s:s,s:s}", "name", "k2", "group", "",
                                              "main", "c", "additional", "zz"));
    plan = ms_placement_plan(servers, groups, clusters, streams, &o);
    assert_null(P(find(plan, "u"), "primary"));
    assert_string_equal(P(find(plan, "u"), "reason"), "no server outside the clusters");
    json_decref(plan);
    json_decref(servers);
    json_decref(groups);
    json_decref(clusters);
    json_decref(streams);
}

/* Draining: a drained primary hands its stream to its backup (no
 * failover: the server is up), a drained backup is replaced, nothing new is
 * placed on a drained server (reason "draining" in a search), and a stream
 * with nowhere else to go stays where it is. */
static void test_draining(void **st)
{
    (void)st;
    json_t *servers =
        json_pack("[o,o,o]", srv("a", "default", 10, 0, 0, 10, 1),
                  srv("b", "default", 10, 0, 0, 10, 1), srv("c", "default", 10, 0, 0, 10, 1));
    json_object_set_new(json_array_get(servers, 0), "draining", json_true());
    json_t *streams = json_pack("[o,o,o]", stream("s1", "rtsp://h/x", 0, "a", "b"),
                                stream("s2", "rtsp://h/y", 0, "b", "a"),
                                stream("s3", "rtsp://h/z", 0, NULL, NULL));
    json_t *g = json_array(), *cl = json_array();
    ms_placement_opts_t o = opts();
    json_t *plan = ms_placement_plan(servers, g, cl, streams, &o);
    assert_int_equal(json_array_size(plan), 3);
    json_t *d = find(plan, "s1");
    assert_string_equal(P(d, "primary"), "b");
    assert_string_equal(P(d, "backup"), "c");
    assert_false(json_is_true(json_object_get(d, "failover")));
    d = find(plan, "s2"); /* its backup a is draining: c instead */
    assert_string_equal(P(d, "primary"), "b");
    assert_string_equal(P(d, "backup"), "c");
    d = find(plan, "s3"); /* new: not on a, though a is the least loaded */
    assert_string_equal(P(d, "primary"), "c");
    assert_string_equal(P(d, "backup"), "b");
    json_decref(plan);
    json_t *srch =
        ms_placement_search(servers, g, cl, streams, json_array_get(streams, 2), NULL, NULL, &o);
    json_t *rej = json_object_get(srch, "rejected");
    size_t i;
    json_t *r;
    int seen = 0;
    json_array_foreach(rej, i, r) if (strcmp(P(r, "server"), "a") == 0)
    {
        assert_string_equal(P(r, "reason"), "draining");
        seen = 1;
    }
    assert_true(seen);
    json_decref(srch);
    /* b and c down: s1 on the draining a has nowhere to go and stays */
    json_array_set_new(servers, 1, srv("b", "default", 10, 0, 0, 10, 0));
    json_array_set_new(servers, 2, srv("c", "default", 10, 0, 0, 10, 0));
    json_t *one = json_pack("[o]", stream("s1", "rtsp://h/x", 0, "a", NULL));
    plan = ms_placement_plan(servers, g, cl, one, &o);
    assert_int_equal(json_array_size(plan), 0);
    json_decref(plan);
    json_decref(one);
    json_decref(servers);
    json_decref(streams);
    json_decref(g);
    json_decref(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreserved_spread),
        cmocka_unit_test(test_failover_and_no_failback),
        cmocka_unit_test(test_qualification),
        cmocka_unit_test(test_stream_group_subnets),
        cmocka_unit_test(test_clusters_and_subnets),
        cmocka_unit_test(test_reserve_pools_and_reasons),
        cmocka_unit_test(test_draining),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
