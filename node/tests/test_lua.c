/* Lua sandbox and loading (node/lua.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/lua.h"

static char g_dir[64];

static void put(const char *name, const char *src)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
}

static void rm(const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    unlink(p);
}

static int setup(void **st)
{
    (void)st;
    snprintf(g_dir, sizeof g_dir, "/tmp/ms_test_lua_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static ms_lua_t *engine(const char *name, const char *src)
{
    rm("a.lua");
    rm("b.lua");
    put(name, src);
    ms_lua_opts_t o = {.budget = 2000000, .mem_cap = 8u << 20};
    ms_lua_t *e = ms_lua_new(g_dir, &o);
    assert_non_null(e);
    return e;
}

/* GET /probe of a.lua: its JSON answer (the caller frees) and status */
static json_t *probe(ms_lua_t *e, int *status)
{
    json_t *out = NULL;
    *status = ms_lua_http(e, "a", "GET", "/probe", "", "127.0.0.1", NULL, 0, &out);
    assert_non_null(out);
    return out;
}

/* a.lua whose /probe route runs body and answers {r = <its value>} */
static ms_lua_t *probe_engine(const char *body)
{
    char src[2048];
    snprintf(src, sizeof src, "ms.route('GET', '/probe', function(req)\n%s\nend)\n", body);
    return engine("a.lua", src);
}

static void test_no_io_os_require(void **st)
{
    (void)st;
    ms_lua_t *e = probe_engine(
        "return 200, {io = type(io), os = type(os), require = type(require),\n"
        " package = type(package), debug = type(debug), dofile = type(dofile),\n"
        " loadfile = type(loadfile), cg = type(collectgarbage), dump = type(string.dump),\n"
        " co = type(coroutine)}");
    int status;
    json_t *j = probe(e, &status);
    assert_int_equal(status, 200);
    const char *keys[] = {"io",     "os",       "require", "package", "debug",
                          "dofile", "loadfile", "cg",      "dump",    "co"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_string_equal(json_string_value(json_object_get(j, keys[i])), "nil");
    json_decref(j);
    ms_lua_free(e);

    /* os.execute is not reachable even through load with an env */
    e = probe_engine("return 200, {ok = pcall(function() os.execute('touch /tmp/x') end)}");
    j = probe(e, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_false(json_object_get(j, "ok")));
    json_decref(j);
    ms_lua_free(e);

    /* load reads text only: a binary chunk (ESC Lua) is refused */
    e = probe_engine("local f, err = load('\\27Lua', 'x', 'b')\n"
                     "local g = load('return 1 + 1')\n"
                     "return 200, {f = type(f), two = g()}");
    j = probe(e, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(j, "f")), "nil");
    assert_int_equal(json_integer_value(json_object_get(j, "two")), 2);
    json_decref(j);
    ms_lua_free(e);
}

static void test_infinite_loop_inside_pcall(void **st)
{
    (void)st;
    ms_lua_t *e = probe_engine("local n = 0\n"
                               "while true do\n"
                               "  pcall(function() while true do end end)\n"
                               "  n = n + 1\n"
                               "end");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int status;
    json_t *j = probe(e, &status);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_int_equal(status, 500);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "budget"));
    json_decref(j);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(s < 5.0);
    /* also an xpcall whose handler loops, and error() in a loop of pcalls */
    ms_lua_free(e);
    e = probe_engine("while true do xpcall(function() while true do end end,\n"
                     "  function() while true do end end) end");
    j = probe(e, &status);
    assert_int_equal(status, 500);
    json_decref(j);
    /* the state works again on the next call (the budget is per call) */
    j = probe(e, &status);
    assert_int_equal(status, 500);
    json_decref(j);
    ms_lua_free(e);

    /* on_play looping: refused (fail closed), within the budget */
    e = engine("a.lua", "function on_play(req) while true do pcall(error) end end");
    ms_lua_req_t q = {.action = "play", .stream = "cam", .ip = "127.0.0.1"};
    char why[128];
    assert_int_equal(ms_lua_decide(e, &q, why, sizeof why), -EACCES);
    ms_lua_free(e);
}

static void test_memory_cap(void **st)
{
    (void)st;
    ms_lua_t *e = probe_engine("local ok, err = pcall(string.rep, 'x', 1e9)\n"
                               "local t = {}\n"
                               "local ok2 = pcall(function() for i = 1, 1e8 do t[i] = i end end)\n"
                               "t = nil\n"
                               "return 200, {ok = ok, err = tostring(err), ok2 = ok2}");
    int status;
    json_t *j = probe(e, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_false(json_object_get(j, "ok")));
    assert_non_null(strstr(json_string_value(json_object_get(j, "err")), "memory"));
    assert_true(json_is_false(json_object_get(j, "ok2")));
    json_decref(j);
    /* without pcall: a 500, and the node goes on */
    ms_lua_free(e);
    e = probe_engine("return 200, {s = string.rep('x', 1e9)}");
    j = probe(e, &status);
    assert_int_equal(status, 500);
    json_decref(j);
    ms_lua_free(e);
}

static void test_gc_refused(void **st)
{
    (void)st;
    ms_lua_t *e = probe_engine(
        "local ok, err = pcall(setmetatable, {}, {__gc = function() while true do end end})\n"
        "local ok2 = pcall(setmetatable, {}, {__gc = true})\n"
        "local ok3 = pcall(setmetatable, {}, {__index = {}})\n"
        "return 200, {ok = ok, err = tostring(err), ok2 = ok2, ok3 = ok3}");
    int status;
    json_t *j = probe(e, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_false(json_object_get(j, "ok")));
    assert_non_null(strstr(json_string_value(json_object_get(j, "err")), "__gc"));
    assert_true(json_is_false(json_object_get(j, "ok2")));
    assert_true(json_is_true(json_object_get(j, "ok3")));
    json_decref(j);
    ms_lua_free(e);
}

static void test_pattern_caps(void **st)
{
    (void)st;
    /* a backtracking bomb is refused before it runs; plain find and
     * ordinary patterns work */
    ms_lua_t *e =
        probe_engine("local s = string.rep('a', 20000)\n"
                     "local ok, err = pcall(string.find, s, 'a*a*a*a*b')\n"
                     "local ok2 = pcall(function() return s:match(('a?'):rep(40) .. 'b') end)\n"
                     "local k, v = ('user=bob&x=1'):match('([^&=]+)=([^&]*)')\n"
                     "local n = 0 for w in ('a,b,c'):gmatch('[^,]+') do n = n + 1 end\n"
                     "return 200, {ok = ok, err = tostring(err), ok2 = ok2, k = k, v = v, n = n,\n"
                     "  plain = s:find('b', 1, true) == nil}");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int status;
    json_t *j = probe(e, &status);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_int_equal(status, 200);
    assert_true(json_is_false(json_object_get(j, "ok")));
    assert_non_null(strstr(json_string_value(json_object_get(j, "err")), "pattern"));
    assert_true(json_is_false(json_object_get(j, "ok2")));
    assert_string_equal(json_string_value(json_object_get(j, "k")), "user");
    assert_string_equal(json_string_value(json_object_get(j, "v")), "bob");
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 3);
    assert_true(json_is_true(json_object_get(j, "plain")));
    json_decref(j);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(s < 2.0);
    ms_lua_free(e);
}

/* The worst a pattern call the cap accepts can cost: for backtracking
 * patterns, every subject size up to the largest accepted one runs (a
 * failing match: the most backtracking). All of it stays well under a
 * second (measured ~0.1 s). */
static void test_pattern_worst_accepted(void **st)
{
    (void)st;
    ms_lua_t *e = probe_engine(
        "local pats = {'a*b', 'a-b', 'a*a*b', '.-.-b', '(a*)%1b', ('a?'):rep(12) .. 'b',\n"
        "  '[ab]*[ab]*[ab]*c', '%w+%s*$'}\n"
        "local biggest = {}\n"
        "for i, p in ipairs(pats) do\n"
        "  local n = 16\n"
        "  while true do\n"
        "    local ok, r = pcall(string.find, string.rep('a', n), p)\n"
        "    if not ok then break end\n"
        "    biggest[i] = n\n"
        "    n = math.floor(n * 1.25) + 1\n"
        "  end\n"
        "end\n"
        "return 200, {biggest = biggest}");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int status;
    json_t *j = probe(e, &status);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_int_equal(status, 200);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    char *txt = json_dumps(j, JSON_COMPACT);
    fprintf(stderr, "worst accepted patterns: %s in %.3f s\n", txt, s);
    free(txt);
    /* 'a*b' on a long subject (user agents, queries) is accepted */
    assert_true(json_integer_value(json_array_get(json_object_get(j, "biggest"), 0)) > 1000);
    assert_true(s < 1.5);
    json_decref(j);
    ms_lua_free(e);
}

static void test_on_play(void **st)
{
    (void)st;
    ms_lua_t *e = engine("a.lua", "function on_play(req)\n"
                                  "  if req.ip == '127.0.0.2' then return false, 'not you' end\n"
                                  "  if req.stream ~= 'cam' then error('boom') end\n"
                                  "  return true\n"
                                  "end");
    ms_lua_req_t q = {.action = "play", .stream = "cam", .ip = "127.0.0.1", .protocol = "hls"};
    char why[128];
    assert_int_equal(ms_lua_decide(e, &q, why, sizeof why), 0);
    q.ip = "127.0.0.2";
    assert_int_equal(ms_lua_decide(e, &q, why, sizeof why), -EACCES);
    assert_string_equal(why, "not you");
    q.ip = "127.0.0.1";
    q.stream = "other"; /* a script error: fail closed */
    assert_int_equal(ms_lua_decide(e, &q, why, sizeof why), -EACCES);
    /* no on_publish: allowed */
    q.action = "publish";
    assert_int_equal(ms_lua_decide(e, &q, why, sizeof why), 0);
    ms_lua_free(e);

    /* fail open */
    put("a.lua", "function on_play(req) error('boom') end");
    ms_lua_opts_t o = {.fail_open = 1};
    e = ms_lua_new(g_dir, &o);
    q.action = "play";
    assert_int_equal(ms_lua_decide(e, &q, why, sizeof why), 0);
    ms_lua_free(e);

    /* two scripts: both must allow, each with its own globals */
    put("a.lua", "local n = 'a' function on_play(req) return req.query ~= 'deny=a', n end");
    put("b.lua", "local n = 'b' function on_play(req) return req.query ~= 'deny=b', n end");
    e = ms_lua_new(g_dir, NULL);
    q.query = "deny=b";
    assert_int_equal(ms_lua_decide(e, &q, why, sizeof why), -EACCES);
    assert_string_equal(why, "b");
    q.query = "deny=a";
    assert_int_equal(ms_lua_decide(e, &q, why, sizeof why), -EACCES);
    assert_string_equal(why, "a");
    q.query = "";
    assert_int_equal(ms_lua_decide(e, &q, why, sizeof why), 0);
    ms_lua_free(e);
}

static void test_reload(void **st)
{
    (void)st;
    ms_lua_t *e = engine("a.lua", "ms.route('GET', '/v', function() return 200, {v = 1} end)");
    json_t *out = NULL;
    assert_int_equal(ms_lua_http(e, "a", "GET", "/v", "", "", NULL, 0, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "v")), 1);
    json_decref(out);
    json_t *st1 = ms_lua_status(e);
    char h1[65];
    snprintf(h1, sizeof h1, "%s", json_string_value(json_object_get(st1, "hash")));
    json_decref(st1);

    /* a good new version replaces it */
    put("a.lua", "ms.route('GET', '/v', function() return 200, {v = 2} end)");
    json_t *rep = ms_lua_reload(e);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    json_decref(rep);
    assert_int_equal(ms_lua_http(e, "a", "GET", "/v", "", "", NULL, 0, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "v")), 2);
    json_decref(out);

    /* a syntax error: reported with file:line, the previous version runs */
    put("a.lua", "ms.route('GET', '/v', function() return 200, {v = 3} end)\n\nlocal x = = 1\n");
    rep = ms_lua_reload(e);
    assert_true(json_is_false(json_object_get(rep, "ok")));
    json_t *f0 = json_array_get(json_object_get(rep, "files"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(f0, "error")), "a.lua:3:"));
    assert_true(json_is_true(json_object_get(f0, "kept_previous")));
    json_decref(rep);
    assert_int_equal(ms_lua_http(e, "a", "GET", "/v", "", "", NULL, 0, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "v")), 2);
    json_decref(out);

    /* a runaway top level: reported, the previous version runs */
    put("a.lua", "while true do end");
    rep = ms_lua_reload(e);
    assert_true(json_is_false(json_object_get(rep, "ok")));
    f0 = json_array_get(json_object_get(rep, "files"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(f0, "error")), "budget"));
    json_decref(rep);
    assert_int_equal(ms_lua_http(e, "a", "GET", "/v", "", "", NULL, 0, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "v")), 2);
    json_decref(out);

    /* removed: gone after the reload; the hash changes */
    rm("a.lua");
    rep = ms_lua_reload(e);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    assert_string_not_equal(json_string_value(json_object_get(rep, "hash")), h1);
    json_decref(rep);
    assert_int_equal(ms_lua_http(e, "a", "GET", "/v", "", "", NULL, 0, &out), 404);
    json_decref(out);
    ms_lua_free(e);

    /* a script that never loaded: left out, the others run */
    put("a.lua", "local = 1");
    put("b.lua", "ms.route('POST', '/echo', function(req) return 201, req.body end)");
    e = ms_lua_new(g_dir, NULL);
    const char *body = "{\"x\":[1,2,{\"y\":null}]}";
    assert_int_equal(ms_lua_http(e, "b", "POST", "/echo", "", "", body, strlen(body), &out), 201);
    char *txt = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(txt, "{\"x\":[1,2,{\"y\":null}]}");
    free(txt);
    json_decref(out);
    assert_int_equal(ms_lua_http(e, "b", "POST", "/echo", "", "", "{", 1, &out), 400);
    json_decref(out);
    assert_int_equal(ms_lua_http(e, "a", "GET", "/v", "", "", NULL, 0, &out), 404);
    json_decref(out);
    ms_lua_free(e);
}

/* Threads that call while another reloads: every answer is one whole
 * version (1 or 2), never a mix or an error. */
typedef struct {
    ms_lua_t *e;
    int bad, n;
} thr_t;

#include <pthread.h>
static void *caller(void *p)
{
    thr_t *t = p;
    for (int i = 0; i < 300; i++) {
        json_t *out = NULL;
        int st = ms_lua_http(t->e, "a", "GET", "/v", "", "", NULL, 0, &out);
        json_int_t v = json_integer_value(json_object_get(out, "v"));
        json_int_t w = json_integer_value(json_object_get(out, "w"));
        if (st != 200 || v != w || (v != 1 && v != 2))
            t->bad++;
        t->n++;
        json_decref(out);
    }
    return NULL;
}

static void test_reload_atomic(void **st)
{
    (void)st;
    ms_lua_t *e =
        engine("a.lua", "V = 1 ms.route('GET', '/v', function() return 200, {v = V, w = 1} end)");
    pthread_t th[3];
    thr_t t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = (thr_t){e, 0, 0};
        pthread_create(&th[i], NULL, caller, &t[i]);
    }
    for (int i = 0; i < 20; i++) {
        put("a.lua",
            i % 2 ? "V = 1 ms.route('GET', '/v', function() return 200, {v = V, w = 1} end)"
                  : "V = 2 ms.route('GET', '/v', function() return 200, {v = V, w = 2} end)");
        json_decref(ms_lua_reload(e));
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].bad, 0);
        assert_int_equal(t[i].n, 300);
    }
    ms_lua_free(e);
}

static void test_json_and_log(void **st)
{
    (void)st;
    ms_lua_t *e = probe_engine(
        "ms.log('info', 'hello from a script')\n"
        "local t = ms.json_decode('{\"a\":[1,2.5,\"x\",true,null]}')\n"
        "local bad, err = ms.json_decode('{')\n"
        "local ok = pcall(ms.json_encode, {[true] = 1})\n"
        "local ok2 = pcall(ms.log, 'loud', 'x')\n"
        "local q = ms.query('a=1&b=x%20y+z&a=2&flag&bad=%zz&=v')\n"
        "assert(q.a == '1' and q.b == 'x y z' and q.flag == '' and q.bad == nil)\n"
        "assert(next(ms.query('')) == nil)\n"
        "return 200, {a = t.a, s = ms.json_encode({1, 2}), bad = bad == nil, err = type(err),\n"
        "  ok = ok, ok2 = ok2, streams = #ms.streams(), none = ms.stream('nope') == nil}");
    int status;
    json_t *j = probe(e, &status);
    assert_int_equal(status, 200);
    char *txt = json_dumps(json_object_get(j, "a"), JSON_COMPACT);
    assert_string_equal(txt, "[1,2.5,\"x\",true,null]");
    free(txt);
    assert_string_equal(json_string_value(json_object_get(j, "s")), "[1,2]");
    assert_true(json_is_true(json_object_get(j, "bad")));
    assert_string_equal(json_string_value(json_object_get(j, "err")), "string");
    assert_true(json_is_false(json_object_get(j, "ok")));
    assert_true(json_is_false(json_object_get(j, "ok2")));
    assert_int_equal(json_integer_value(json_object_get(j, "streams")), 0);
    assert_true(json_is_true(json_object_get(j, "none")));
    json_decref(j);
    ms_lua_free(e);
}

static void test_no_dir(void **st)
{
    (void)st;
    ms_lua_t *e = ms_lua_new("", NULL);
    assert_non_null(e);
    ms_lua_req_t q = {.action = "play", .stream = "cam"};
    char why[64];
    assert_int_equal(ms_lua_decide(e, &q, why, sizeof why), 0);
    ms_lua_free(e);
    /* no global engine: everything allowed */
    assert_int_equal(ms_lua_on_play(&q, 0, why, sizeof why), 0);
}

/* The node's on_play: once per session (cached), again after a reload,
 * for another session, and after the token's expiry. */
static void test_on_play_cache(void **st)
{
    (void)st;
    ms_lua_t *e =
        engine("a.lua", "N = 0\n"
                        "function on_play(req) N = N + 1 return req.ip ~= '10.0.0.2', 'no' end\n"
                        "ms.route('GET', '/n', function() return 200, {n = N} end)");
    ms_lua_set_global(e);
    ms_lua_req_t q = {.stream = "cam", .ip = "10.0.0.1", .protocol = "hls", .token = "t1"};
    char why[64];
    for (int i = 0; i < 5; i++)
        assert_int_equal(ms_lua_on_play(&q, 0, why, sizeof why), 0);
    q.ip = "10.0.0.2";
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ms_lua_on_play(&q, 0, why, sizeof why), -EACCES);
        assert_string_equal(why, "no");
    }
    json_t *out = NULL;
    assert_int_equal(ms_lua_http(e, "a", "GET", "/n", "", "", NULL, 0, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "n")), 2);
    json_decref(out);
    /* an expired token's decision is not reused */
    q.ip = "10.0.0.3";
    assert_int_equal(ms_lua_on_play(&q, 1, why, sizeof why), 0);
    assert_int_equal(ms_lua_on_play(&q, 1, why, sizeof why), 0);
    assert_int_equal(ms_lua_http(e, "a", "GET", "/n", "", "", NULL, 0, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "n")), 4);
    json_decref(out);
    /* a reload starts over (N is 0 again in the new state) */
    json_decref(ms_lua_reload(e));
    q.ip = "10.0.0.1";
    assert_int_equal(ms_lua_on_play(&q, 0, why, sizeof why), 0);
    assert_int_equal(ms_lua_http(e, "a", "GET", "/n", "", "", NULL, 0, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "n")), 1);
    json_decref(out);
    ms_lua_set_global(NULL);
    ms_lua_free(e);
}

/* The HTTP on_play hook's slot (ms_lua_on_play_pre): run first, once per
 * session with the scripts' answer in the same cache, also without an
 * engine; a refusal by it skips the scripts. */
static int g_pre_calls;
static int pre_hook(void *ud, const ms_lua_req_t *q, char *why, size_t cap)
{
    assert_ptr_equal(ud, &g_pre_calls);
    g_pre_calls++;
    if (strcmp(q->token, "bad") == 0) {
        snprintf(why, cap, "hook answered 403");
        return -EACCES;
    }
    return 0;
}

static void test_on_play_pre(void **st)
{
    (void)st;
    char why[64];
    ms_lua_req_t q = {.stream = "pre1", .ip = "10.0.0.1", .protocol = "hls", .token = "good"};
    /* no engine */
    g_pre_calls = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(ms_lua_on_play_pre(&q, 0, pre_hook, &g_pre_calls, why, sizeof why), 0);
    assert_int_equal(g_pre_calls, 1);
    q.token = "bad";
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ms_lua_on_play_pre(&q, 0, pre_hook, &g_pre_calls, why, sizeof why),
                         -EACCES);
        assert_string_equal(why, "hook answered 403");
    }
    assert_int_equal(g_pre_calls, 2);
    /* with scripts: both must allow; the cache holds the combined answer */
    ms_lua_t *e =
        engine("a.lua", "N = 0\n"
                        "function on_play(req) N = N + 1 return req.ip ~= '10.0.0.2', 'no' end\n"
                        "ms.route('GET', '/n', function() return 200, {n = N} end)");
    ms_lua_set_global(e);
    g_pre_calls = 0;
    q.stream = "pre2";
    q.token = "good";
    q.ip = "10.0.0.2";
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ms_lua_on_play_pre(&q, 0, pre_hook, &g_pre_calls, why, sizeof why),
                         -EACCES);
        assert_string_equal(why, "no");
    }
    q.token = "bad";
    q.ip = "10.0.0.1";
    for (int i = 0; i < 3; i++)
        assert_int_equal(ms_lua_on_play_pre(&q, 0, pre_hook, &g_pre_calls, why, sizeof why),
                         -EACCES);
    assert_string_equal(why, "hook answered 403");
    assert_int_equal(g_pre_calls, 2);
    json_t *out = NULL;
    assert_int_equal(ms_lua_http(e, "a", "GET", "/n", "", "", NULL, 0, &out), 200);
    assert_int_equal(json_integer_value(json_object_get(out, "n")), 1); /* not for "bad" */
    json_decref(out);
    ms_lua_set_global(NULL);
    ms_lua_free(e);
}

/* on_event and ms.every run on the engine's event thread; they are
 * observed through the log (stderr, redirected to a file here). */
static int log_has(const char *path, const char *what)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, what) != NULL;
    fclose(f);
    return found;
}

static int wait_log(const char *path, const char *what)
{
    for (int i = 0; i < 300; i++) {
        if (log_has(path, what))
            return 1;
        usleep(10000);
    }
    return 0;
}

static void test_events_and_timers(void **st)
{
    (void)st;
    char logp[128];
    snprintf(logp, sizeof logp, "%s/stderr.log", g_dir);
    fflush(stderr);
    int saved = dup(2);
    FILE *lf = freopen(logp, "w", stderr);
    assert_non_null(lf);
    ms_lua_t *e =
        engine("a.lua", "local n = 0\n"
                        "function on_event(ev)\n"
                        "  if ev.stream == 'loop' then while true do end end\n"
                        "  ms.log('info', 'ev ' .. ev.type .. ' ' .. ev.stream .. ' ' .. ev.state"
                        " .. ' ' .. ev.previous)\n"
                        "end\n"
                        "ms.every(0.1, function() n = n + 1 ms.log('info', 'tick ' .. n) end)\n");
    assert_int_equal(ms_lua_events_start(e, 0), 0);
    assert_int_equal(ms_lua_event_post(e, "stream", "loop", "active", ""), 0);
    assert_int_equal(ms_lua_event_post(e, "stream", "cam", "active", "inactive"), 0);
    int ev = wait_log(logp, "ev stream cam active inactive");
    int tick = wait_log(logp, "tick 3");
    int budget = log_has(logp, "budget");
    ms_lua_free(e); /* stops and joins the thread */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_true(ev);
    assert_true(tick);
    assert_true(budget);
}

/* The actions' answers without a stream and without the cluster state
 * (the integration tests run them on a node: test_lua.py). */
static void test_actions_errors(void **st)
{
    (void)st;
    ms_lua_t *e =
        probe_engine("local function two(f, ...) local a, b = f(...) return {a == nil, b} end\n"
                     "return 200, {\n"
                     "  restart = two(ms.restart, 'nope'),\n"
                     "  enable = two(ms.enable, 'nope'),\n"
                     "  disable = two(ms.disable, 'nope'),\n"
                     "  event = two(ms.record_event, 'nope', 10),\n"
                     "  event0 = two(ms.record_event, 'nope', 0),\n"
                     "  token = two(ms.token, 'nope', {hours = 2}),\n"
                     "  token0 = two(ms.token, 'nope', {seconds = 0}),\n"
                     "  badarg = pcall(ms.record_event, 'nope', 'x'),\n"
                     "}");
    int status;
    json_t *j = probe(e, &status);
    assert_int_equal(status, 200);
    struct {
        const char *k, *err;
    } want[] = {{"restart", "unknown stream"},
                {"enable", "needs the cluster state (listen.raft)"},
                {"disable", "needs the cluster state (listen.raft)"},
                {"event", "unknown stream"},
                {"event0", "seconds: 1..86400"},
                {"token", "no secret: tokens are unavailable"},
                {"token0", "the lifetime must be 1 s .. 365 days"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *a = json_object_get(j, want[i].k);
        assert_true(json_is_true(json_array_get(a, 0)));
        assert_string_equal(json_string_value(json_array_get(a, 1)), want[i].err);
    }
    assert_true(json_is_false(json_object_get(j, "badarg")));
    json_decref(j);
    ms_lua_free(e);

    /* with a secret, an unknown stream is the error */
    put("a.lua", "ms.route('GET', '/probe', function(req)\n"
                 "  local t, err = ms.token('nope') return 200, {t == nil, err} end)\n");
    ms_lua_opts_t o = {.secret = "s3cret"};
    e = ms_lua_new(g_dir, &o);
    assert_non_null(e);
    j = probe(e, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_array_get(j, 1)), "unknown stream");
    json_decref(j);
    ms_lua_free(e);
}

/* ms.servers()/ms.cluster() without the cluster state: nil and why; at a
 * script's top level they raise (a reload may run on the control loop,
 * which answers them), so such a script does not load. */
static void test_servers_cluster_errors(void **st)
{
    (void)st;
    ms_lua_t *e = probe_engine("local a, ae = ms.servers()\n"
                               "local b, be = ms.cluster()\n"
                               "return 200, {a == nil, ae, b == nil, be}");
    int status;
    json_t *j = probe(e, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_true(json_array_get(j, 0)));
    assert_string_equal(json_string_value(json_array_get(j, 1)),
                        "needs the cluster state (listen.raft)");
    assert_true(json_is_true(json_array_get(j, 2)));
    assert_string_equal(json_string_value(json_array_get(j, 3)),
                        "needs the cluster state (listen.raft)");
    json_decref(j);
    ms_lua_free(e);

    rm("a.lua");
    put("b.lua", "local s = ms.servers()\n");
    e = ms_lua_new(g_dir, NULL);
    assert_non_null(e);
    json_t *rep = ms_lua_reload(e);
    json_t *f = json_array_get(json_object_get(rep, "files"), 0);
    assert_true(json_is_false(json_object_get(f, "loaded")));
    assert_non_null(strstr(json_string_value(json_object_get(f, "error")),
                           "ms.servers: not available at a script's top level"));
    json_decref(rep);
    ms_lua_free(e);
    rm("b.lua");
}

/* GET /api/v1/lua's hooks: the decisions that ran the scripts are counted
 * and timed; a hook that spins for a while is seen in max and p99. */
static void test_hook_time(void **st)
{
    (void)st;
    ms_lua_t *e = engine(
        "a.lua", "function on_play(req)\n"
                 "  if req.ip == 'slow' then local x = 0 for i = 1, 200000 do x = x + i end end\n"
                 "  return true\n"
                 "end\n");
    json_t *j = ms_lua_status(e);
    json_t *h = json_object_get(j, "hooks");
    assert_int_equal(json_integer_value(json_object_get(h, "calls")), 0);
    assert_true(json_number_value(json_object_get(h, "p99_us")) == 0);
    json_decref(j);
    ms_lua_req_t q = {.action = "play", .stream = "cam", .ip = "fast"};
    char why[64];
    for (int i = 0; i < 98; i++)
        assert_int_equal(ms_lua_decide(e, &q, why, sizeof why), 0);
    q.ip = "slow";
    for (int i = 0; i < 2; i++)
        assert_int_equal(ms_lua_decide(e, &q, why, sizeof why), 0);
    j = ms_lua_status(e);
    h = json_object_get(j, "hooks");
    assert_int_equal(json_integer_value(json_object_get(h, "calls")), 100);
    double p50 = json_number_value(json_object_get(h, "p50_us"));
    double p99 = json_number_value(json_object_get(h, "p99_us"));
    double mx = json_number_value(json_object_get(h, "max_us"));
    /* 200000 loop turns take far longer than a call that returns at once */
    assert_true(p50 > 0 && p50 < p99);
    assert_true(p99 > 10 * p50);
    assert_true(p99 <= mx * 1.25 + 0.001 && mx >= p99 / 1.25);
    json_decref(j);
    ms_lua_free(e);
}

/* More sessions than the on_play cache holds, all fresh (a distinct token
 * on every request): the full cache is swept once, not on every further
 * request (each sweep walks all entries under the cache's lock); the
 * decisions stay right. */
static void test_on_play_cache_full(void **st)
{
    (void)st;
    ms_lua_t *e = engine("a.lua", "function on_play(req) return req.token ~= 'no', 'no' end\n");
    ms_lua_set_global(e);
    json_t *j = ms_lua_status(e);
    json_t *c = json_object_get(j, "session_cache");
    json_int_t max = json_integer_value(json_object_get(c, "max"));
    json_int_t sweeps0 = json_integer_value(json_object_get(c, "sweeps"));
    assert_true(max > 0);
    json_decref(j);
    char tok[32], why[64];
    ms_lua_req_t q = {.stream = "cam", .ip = "10.9.0.1", .protocol = "hls", .token = tok};
    for (json_int_t i = 0; i < max + 200; i++) {
        snprintf(tok, sizeof tok, "t%lld", (long long)i);
        assert_int_equal(ms_lua_on_play(&q, 0, why, sizeof why), 0);
    }
    q.token = "no";
    assert_int_equal(ms_lua_on_play(&q, 0, why, sizeof why), -EACCES);
    assert_string_equal(why, "no");
    j = ms_lua_status(e);
    c = json_object_get(j, "session_cache");
    assert_int_equal(json_integer_value(json_object_get(c, "entries")), max);
    /* one sweep that drops the earlier tests' entries (of another engine's
     * set) and one that finds every entry fresh; without the hold, each of
     * the 200 calls past the limit swept */
    json_int_t sweeps = json_integer_value(json_object_get(c, "sweeps")) - sweeps0;
    assert_true(sweeps >= 1 && sweeps <= 2);
    json_decref(j);
    ms_lua_set_global(NULL);
    ms_lua_free(e);
}

/* The cpanel descriptor: entries in file and registration order, their
 * limits, a script that fails to load contributes nothing, panel.lua is
 * a reserved name. (No streams here: the values are tested on a node.) */
static void test_panel(void **st)
{
    (void)st;
    rm("a.lua");
    rm("b.lua");
    put("b.lua", "ms.panel_column('Site', function(s) return 'x' end)\n"
                 "ms.panel_field('Owner', function(s) return 1 end)\n");
    put("a.lua", "ms.panel_column('Zone', function(s) return s.name end)\n"
                 "ms.panel_column('Rack', function(s) return nil end)\n");
    put("c.lua", "ms.panel_column('Broken', function(s) end)\nerror('no')\n");
    put("panel.lua", "ms.panel_column('Reserved', function(s) end)\n");
    put("reload.lua", "ms.panel_column('Reserved', function(s) end)\n");
    ms_lua_t *e = ms_lua_new(g_dir, NULL);
    assert_non_null(e);
    json_t *j = ms_lua_panel(e);
    assert_non_null(j);
    json_t *cols = json_object_get(j, "columns");
    assert_int_equal(json_array_size(cols), 3);
    const char *titles[] = {"Zone", "Rack", "Site"};
    const char *scripts[] = {"a", "a", "b"};
    for (int i = 0; i < 3; i++) {
        json_t *c = json_array_get(cols, (size_t)i);
        assert_string_equal(json_string_value(json_object_get(c, "title")), titles[i]);
        assert_string_equal(json_string_value(json_object_get(c, "script")), scripts[i]);
        assert_true(json_is_object(json_object_get(c, "values")));
    }
    json_t *f = json_array_get(json_object_get(j, "fields"), 0);
    assert_string_equal(json_string_value(json_object_get(f, "title")), "Owner");
    assert_int_equal(json_array_size(json_object_get(j, "fields")), 1);
    json_decref(j);
    j = ms_lua_status(e);
    assert_int_equal(json_array_size(json_object_get(j, "files")), 2); /* a, b */
    json_decref(j);
    ms_lua_free(e);
    rm("c.lua");
    rm("panel.lua");
    rm("reload.lua");

    /* at most MS_LUA_PANEL_MAX of a kind; titles 1..64 bytes; only at load */
    rm("b.lua");
    put("a.lua", "for i = 1, 17 do ms.panel_column('c' .. i, function() end) end\n");
    e = ms_lua_new(g_dir, NULL);
    j = ms_lua_status(e);
    assert_int_equal(json_array_size(json_object_get(j, "files")), 0);
    json_decref(j);
    ms_lua_free(e);
    e = probe_engine("local ok1 = pcall(ms.panel_column, '', function() end)\n"
                     "local ok2 = pcall(ms.panel_field, string.rep('t', 65), function() end)\n"
                     "local ok3 = pcall(ms.panel_field, 'late', function() end)\n"
                     "return 200, {ok1, ok2, ok3}");
    int status;
    j = probe(e, &status);
    assert_int_equal(status, 200);
    for (int i = 0; i < 3; i++)
        assert_true(json_is_false(json_array_get(j, (size_t)i)));
    json_decref(j);
    j = ms_lua_panel(e);
    assert_int_equal(json_array_size(json_object_get(j, "columns")), 0);
    assert_true(json_is_array(json_object_get(j, "fields")));
    json_decref(j);
    ms_lua_free(e);
    /* no scripts at all */
    e = ms_lua_new("", NULL);
    j = ms_lua_panel(e);
    assert_int_equal(json_array_size(json_object_get(j, "columns")), 0);
    json_decref(j);
    ms_lua_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_io_os_require),
        cmocka_unit_test(test_infinite_loop_inside_pcall),
        cmocka_unit_test(test_memory_cap),
        cmocka_unit_test(test_gc_refused),
        cmocka_unit_test(test_pattern_caps),
        cmocka_unit_test(test_pattern_worst_accepted),
        cmocka_unit_test(test_on_play),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_reload_atomic),
        cmocka_unit_test(test_json_and_log),
        cmocka_unit_test(test_no_dir),
        cmocka_unit_test(test_on_play_cache),
        cmocka_unit_test(test_on_play_pre),
        cmocka_unit_test(test_events_and_timers),
        cmocka_unit_test(test_actions_errors),
        cmocka_unit_test(test_panel),
        cmocka_unit_test(test_servers_cluster_errors),
        cmocka_unit_test(test_hook_time),
        cmocka_unit_test(test_on_play_cache_full),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
