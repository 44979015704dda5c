/* Lua hook scripts (node/lua.h, docs/lua.md). */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <openssl/evp.h>

#include "dvr/dvr.h"
#include "node/cluster.h"
#include "node/cluster_read.h"
#include "node/config.h"
#include "node/lua.h"
#include "node/streams.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/token.h"
#include "util/urlquery.h"

#define CTX        "[lua]"
#define HOOK_EVERY 1000 /* instructions between two budget checks */

/* ---- the script set (immutable once built, reference counted) ---------- */

typedef struct {
    char name[64]; /* base name without .lua */
    char *src;     /* text */
    size_t len;
    char sha[65]; /* SHA-256 (FIPS 180-4) of src, hex */
} script_t;

typedef struct {
    atomic_int refs;
    uint64_t serial; /* unique per set: a thread's state is rebuilt when it changes */
    size_t n;
    script_t *v;
    char hash[65]; /* SHA-256 over "name sha\n" of every script */
} set_t;

struct ms_lua {
    pthread_mutex_t mu;        /* guards cur */
    pthread_mutex_t reload_mu; /* serialises reloads */
    set_t *cur;
    char dir[MS_PATH_MAX];
    size_t mem_cap;
    int64_t budget;
    int fail_open;
    int ttl_ms;
    char secret[256]; /* ms.token ("" = no tokens) */
    /* the event thread (ms_lua_events_start): on_event and ms.every */
    pthread_mutex_t ev_mu;
    pthread_cond_t ev_cv;
    pthread_t ev_thread;
    int ev_running, ev_stop;
    int poll_ms;
    struct ev *ev_head, *ev_tail;
    size_t ev_n;
    uint64_t ev_dropped;
    /* durations of the on_play/on_publish calls that ran the scripts
     * (ms_lua_decide), ns, in buckets of a quarter of a power of two
     * (hook_bucket): read by ms_lua_status */
    atomic_uint_fast64_t hook_hist[256];
    atomic_uint_fast64_t hook_max_ns;
};

typedef struct ev {
    struct ev *next;
    char type[16], stream[MS_NAME_MAX], state[24], previous[24];
} ev_t;

static atomic_uint_fast64_t g_serial = 1;

static void set_unref(set_t *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].src);
    free(s->v);
    free(s);
}

static set_t *cur_ref(ms_lua_t *e)
{
    pthread_mutex_lock(&e->mu);
    set_t *s = e->cur;
    if (s)
        atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&e->mu);
    return s;
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        snprintf(out, 65, "%s", "");
        return;
    }
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void set_hash(set_t *s)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int mdlen = 0;
    s->hash[0] = '\0';
    if (!c)
        return;
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    for (size_t i = 0; i < s->n; i++) {
        EVP_DigestUpdate(c, s->v[i].name, strlen(s->v[i].name));
        EVP_DigestUpdate(c, " ", 1);
        EVP_DigestUpdate(c, s->v[i].sha, 64);
        EVP_DigestUpdate(c, "\n", 1);
    }
    if (EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == 32)
        for (int i = 0; i < 32; i++)
            snprintf(s->hash + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(c);
}

/* ---- one lua_State with its limits ----------------------------------- */

typedef struct {
    lua_State *L;
    size_t used, cap; /* bytes allocated / the cap */
    int64_t left;     /* instructions left in this call */
    int64_t budget;
    int exhausted;
    uint64_t serial; /* of the set it was built from */
    ms_lua_t *e;     /* the engine (ms.token's secret) */
} lstate_t;

/* lua_Alloc with the cap: a growth past it fails (Lua raises a memory
 * error); shrinking and freeing never fail (Lua 5.4 manual 4.6). */
static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lstate_t *s = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        s->used -= old;
        return NULL;
    }
    if (nsize > old && s->used - old + nsize > s->cap)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (!p)
        return nsize <= old ? ptr : NULL;
    s->used = s->used - old + nsize;
    return p;
}

static lstate_t *lstate_of(lua_State *L)
{
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

/* The count hook: charges HOOK_EVERY instructions; past the budget it
 * fires at every instruction and raises an error each time, so no Lua
 * code (a pcall's caller, an error handler) runs further. */
static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lstate_t *s = lstate_of(L);
    if (!s->exhausted) {
        s->left -= HOOK_EVERY;
        if (s->left > 0)
            return;
        s->exhausted = 1;
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    }
    luaL_error(L, "instruction budget exhausted (%I instructions)", (lua_Integer)s->budget);
}

static void budget_start(lstate_t *s)
{
    s->left = s->budget;
    s->exhausted = 0;
    lua_sethook(s->L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

/* ---- sandboxed base functions ----------------------------------------- */

static int l_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2)) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc is not allowed");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* load(chunk [, name [, mode [, env]]]) reading text only */
static int l_load(lua_State *L)
{
    int n = lua_gettop(L);
    if (n < 1)
        return luaL_error(L, "load: chunk expected");
    lua_settop(L, n < 4 ? (n < 2 ? 2 : n) : n);
    if (lua_gettop(L) < 3)
        lua_settop(L, 3);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* xpcall(f, msgh, ...) as pcall(f, ...) followed, on an error, by
 * msgh(err) as an ordinary call. Lua's own xpcall runs msgh before the
 * stack unwinds, which after an error raised by the count hook is with
 * hooks still disabled (ldo.c luaD_hook): a looping handler could never
 * be stopped. Here the handler runs under the hook; an error in it
 * propagates (instead of LUA_ERRERR). */
static int l_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    for (int i = 3; i <= n; i++)
        lua_pushvalue(L, i);
    int rc = lua_pcall(L, n < 2 ? 0 : n - 2, LUA_MULTRET, 0);
    if (rc == LUA_OK) {
        lua_pushboolean(L, 1);
        lua_replace(L, n); /* true, results... from slot n on */
        return lua_gettop(L) - n + 1;
    }
    lua_pushvalue(L, 2);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

/* The cost of one pattern call, an upper estimate of the matcher's steps:
 * a subject of n bytes is tried at up to n positions and each unbounded
 * quantifier (*, +, -) may expand over the rest (and each back reference
 * compare as much), so n^(q+1), times 2 for each '?' and the pattern's
 * length. */
static double pattern_cost(const char *p, size_t plen, size_t n)
{
    int q = 0, opt = 0;
    for (size_t i = 0; i < plen; i++) {
        if (p[i] == '%') {
            /* a back reference %1..%9 compares up to the whole subject */
            if (i + 1 < plen && p[i + 1] >= '1' && p[i + 1] <= '9')
                q++;
            i++;
            continue;
        }
        if (p[i] == '*' || p[i] == '+' || p[i] == '-')
            q++;
        else if (p[i] == '?')
            opt++;
    }
    double nn = n ? (double)n : 1.0;
    return pow(nn, q + 1) * pow(2.0, opt > 30 ? 30 : opt) * (double)(plen ? plen : 1);
}

/* string.find/match/gmatch/gsub with the caps; upvalue 1 = the original,
 * upvalue 2 = 1 for find (its 4th argument asks for a plain search). */
static int l_pattern(lua_State *L)
{
    size_t n = 0, plen = 0;
    luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &plen);
    int is_find = (int)lua_tointeger(L, lua_upvalueindex(2));
    int plain = is_find && lua_toboolean(L, 4);
    if (!plain) {
        if (plen > MS_LUA_PAT_MAX)
            return luaL_error(L, "pattern longer than %d bytes", MS_LUA_PAT_MAX);
        if (pattern_cost(p, plen, n) > MS_LUA_PAT_COST_MAX)
            return luaL_error(L,
                              "pattern too costly for a %d-byte subject (fewer quantifiers or "
                              "a shorter subject)",
                              (int)(n > INT32_MAX ? INT32_MAX : n));
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* ---- ms.* ---------------------------------------------------------------- */

static void setf(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v ? v : "");
    lua_setfield(L, -2, k);
}

static char ms_null_key; /* its address marks ms.null */

/* "file.lua:line" of the calling Lua function */
static void where(lua_State *L, char *buf, size_t cap)
{
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
        snprintf(buf, cap, "%s:%d", ar.short_src, ar.currentline);
    else
        snprintf(buf, cap, "?");
}

static int l_log(lua_State *L)
{
    const char *lvl = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    ms_log_level_t l;
    if (ms_log_level_parse(lvl, &l) < 0)
        return luaL_error(L, "ms.log: level must be debug, info, warn or error");
    char w[128];
    where(L, w, sizeof w);
    ms_log(l, CTX, "%s: %.*s", w, 2000, msg);
    return 0;
}

static json_t *to_json(lua_State *L, int idx, int depth, char *err, size_t cap);

static int is_array(lua_State *L, int idx, size_t *len)
{
    size_t n = (size_t)lua_rawlen(L, idx);
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
        if (!lua_isinteger(L, -1)) {
            lua_pop(L, 1);
            return 0;
        }
    }
    *len = n;
    return n > 0 && count == n;
}

static json_t *to_json(lua_State *L, int idx, int depth, char *err, size_t cap)
{
    idx = lua_absindex(L, idx);
    if (depth > 32) {
        snprintf(err, cap, "nested too deep");
        return NULL;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return json_integer((json_int_t)lua_tointeger(L, idx));
        if (!isfinite(lua_tonumber(L, idx))) {
            snprintf(err, cap, "a number is not finite");
            return NULL;
        }
        return json_real(lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        json_t *j = json_stringn(s, n);
        if (!j)
            snprintf(err, cap, "a string is not UTF-8");
        return j;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == (void *)&ms_null_key)
            return json_null();
        break;
    case LUA_TTABLE: {
        luaL_checkstack(L, 4, "json");
        size_t n = 0;
        if (is_array(L, idx, &n)) {
            json_t *a = json_array();
            for (size_t i = 1; a && i <= n; i++) {
                lua_rawgeti(L, idx, (lua_Integer)i);
                json_t *v = to_json(L, -1, depth + 1, err, cap);
                lua_pop(L, 1);
                if (!v || json_array_append_new(a, v) < 0) {
                    json_decref(a);
                    return NULL;
                }
            }
            return a;
        }
        json_t *o = json_object();
        lua_pushnil(L);
        while (o && lua_next(L, idx)) {
            if (lua_type(L, -2) != LUA_TSTRING) {
                snprintf(err, cap, "an object key is not a string");
                lua_pop(L, 2);
                json_decref(o);
                return NULL;
            }
            json_t *v = to_json(L, -1, depth + 1, err, cap);
            if (!v || json_object_set_new(o, lua_tostring(L, -2), v) < 0) {
                lua_pop(L, 2);
                json_decref(o);
                return NULL;
            }
            lua_pop(L, 1);
        }
        return o;
    }
    default:
        break;
    }
    snprintf(err, cap, "a %s has no JSON form", luaL_typename(L, idx));
    return NULL;
}

static void push_json(lua_State *L, json_t *j, int depth)
{
    luaL_checkstack(L, 4, "json");
    if (depth > 64)
        luaL_error(L, "JSON nested too deep");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            push_json(L, v, depth + 1);
            lua_setfield(L, -2, k);
        }
        break;
    }
    case JSON_ARRAY: {
        lua_createtable(L, (int)json_array_size(j), 0);
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            push_json(L, v, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(j));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(j));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    default:
        lua_pushlightuserdata(L, (void *)&ms_null_key);
        break;
    }
}

static int push_json_p(lua_State *L)
{
    push_json(L, lua_touserdata(L, 1), 0);
    return 1;
}

/* The JSON text of a Lua value, pushed; or raises the error. */
static int l_json_encode(lua_State *L)
{
    char err[96] = "";
    luaL_checkany(L, 1);
    json_t *j = to_json(L, 1, 0, err, sizeof err);
    if (!j)
        return luaL_error(L, "ms.json_encode: %s", err);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    if (!s)
        return luaL_error(L, "ms.json_encode: out of memory");
    lua_pushstring(L, s);
    free(s);
    return 1;
}

/* value, or nil and the error */
static int l_json_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    json_error_t je;
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        lua_pushnil(L);
        lua_pushfstring(L, "line %d: %s", je.line, je.text);
        return 2;
    }
    /* pushed in a protected call so that a memory error does not leak j */
    lua_pushcfunction(L, push_json_p);
    lua_pushlightuserdata(L, j);
    int rc = lua_pcall(L, 1, 1, 0);
    json_decref(j);
    if (rc != LUA_OK)
        return lua_error(L);
    return 1;
}

typedef struct {
    char uid[64], name[MS_NAME_MAX];
    int enabled, active, clients;
    double kbps;
} sinfo_t;

static void stream_info(ms_stream_t *s, sinfo_t *o)
{
    memset(o, 0, sizeof *o);
    ms_stream_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    if (ms_stream_get_cfg(s, &cfg) == 0) {
        snprintf(o->uid, sizeof o->uid, "%s", cfg.uid);
        snprintf(o->name, sizeof o->name, "%s", cfg.name);
        o->enabled = cfg.enabled;
        ms_stream_cfg_free(&cfg);
    }
    ms_stream_load_t ld;
    memset(&ld, 0, sizeof ld);
    ms_stream_get_load(s, &ld);
    o->active = ld.source_active;
    o->clients = ld.clients;
    o->kbps = ld.bitrate_kbps;
}

static void push_info(lua_State *L, const sinfo_t *o)
{
    lua_createtable(L, 0, 6);
    setf(L, "uid", o->uid);
    setf(L, "name", o->name);
    lua_pushboolean(L, o->enabled);
    lua_setfield(L, -2, "enabled");
    lua_pushboolean(L, o->active);
    lua_setfield(L, -2, "active");
    lua_pushinteger(L, o->clients);
    lua_setfield(L, -2, "clients");
    lua_pushnumber(L, o->kbps);
    lua_setfield(L, -2, "bitrate_kbps");
}

static int new_udata_p(lua_State *L)
{
    size_t *n = lua_touserdata(L, 1);
    lua_newuserdatauv(L, *n ? *n : 1, 0);
    return 1;
}

/* ms.streams(): the streams of this node. Their figures are copied into a
 * userdata (allocated in a protected call while the references are held)
 * before anything else is pushed, so that a memory error (a longjmp)
 * never leaves a reference behind. */
static int l_streams(lua_State *L)
{
    ms_stream_t **v = NULL;
    size_t n = ms_streams_list(&v);
    size_t bytes = n * sizeof(sinfo_t);
    lua_pushcfunction(L, new_udata_p);
    lua_pushlightuserdata(L, &bytes);
    int rc = lua_pcall(L, 1, 1, 0);
    sinfo_t *info = rc == LUA_OK ? lua_touserdata(L, -1) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (info)
            stream_info(v[i], &info[i]);
        ms_stream_unref(v[i]);
    }
    free(v);
    if (!info)
        return lua_error(L);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_info(L, &info[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int l_stream(lua_State *L)
{
    const char *id = luaL_checkstring(L, 1);
    ms_stream_t *s = ms_streams_find(id);
    if (!s) {
        lua_pushnil(L);
        return 1;
    }
    sinfo_t o;
    stream_info(s, &o);
    ms_stream_unref(s);
    push_info(L, &o);
    return 1;
}

/* ms.query(q): the pairs of a raw query string, percent-decoded ('+' is
 * a space), as a table key -> value (the first of a repeated key; a key
 * without '=' is ""); pairs that do not decode are left out. Linear, so
 * scripts need no pattern over a long query. */
static int l_query(lua_State *L)
{
    size_t n;
    const char *q = luaL_optlstring(L, 1, "", &n);
    if (n > 65536)
        return luaL_error(L, "ms.query: longer than 64 KiB");
    lua_createtable(L, 0, 4);
    char *buf = lua_newuserdatauv(L, n + 1, 0); /* freed by the collector */
    int t = lua_gettop(L) - 1;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && q[j] != '&' && q[j] != ';')
            j++;
        size_t eq = i;
        while (eq < j && q[eq] != '=')
            eq++;
        if (j > i) {
            int kl = ms_url_decode(q + i, eq - i, 1, buf, n + 1);
            if (kl > 0) {
                lua_pushlstring(L, buf, (size_t)kl);
                if (lua_rawget(L, t) == LUA_TNIL) {
                    lua_pop(L, 1);
                    lua_pushlstring(L, buf, (size_t)kl);
                    int vl = eq < j ? ms_url_decode(q + eq + 1, j - eq - 1, 1, buf, n + 1) : 0;
                    if (vl >= 0) {
                        lua_pushlstring(L, buf, (size_t)vl);
                        lua_rawset(L, t);
                    } else {
                        lua_pop(L, 1);
                    }
                } else {
                    lua_pop(L, 1);
                }
            }
        }
        i = j + 1;
    }
    lua_settop(L, t);
    return 1;
}

/* ms.route(method, path, fn): only while a script's top level runs */
static int l_route(lua_State *L)
{
    const char *m = luaL_checkstring(L, 1);
    const char *p = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    if (strcmp(m, "GET") && strcmp(m, "POST") && strcmp(m, "PUT") && strcmp(m, "DELETE") &&
        strcmp(m, "PATCH"))
        return luaL_error(L, "ms.route: method must be GET, POST, PUT, PATCH or DELETE");
    if (p[0] != '/' || strlen(p) > 256)
        return luaL_error(L, "ms.route: the path must start with / (at most 256 bytes)");
    if (lua_getfield(L, LUA_REGISTRYINDEX, "ms.loading") != LUA_TSTRING)
        return luaL_error(L, "ms.route: only while the script loads");
    const char *script = lua_tostring(L, -1);
    lua_getfield(L, LUA_REGISTRYINDEX, "ms.routes");
    if (lua_getfield(L, -1, script) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, script);
    }
    lua_pushfstring(L, "%s %s", m, p);
    lua_pushvalue(L, 3);
    lua_settable(L, -3);
    return 0;
}

/* ms.every(seconds, fn): only while a script's top level runs; run by the
 * event thread only (its own state's list) */
static int l_every(lua_State *L)
{
    lua_Number sec = luaL_checknumber(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (!(sec >= 0.1 && sec <= 86400.0))
        return luaL_error(L, "ms.every: seconds must be 0.1 .. 86400");
    if (lua_getfield(L, LUA_REGISTRYINDEX, "ms.loading") != LUA_TSTRING)
        return luaL_error(L, "ms.every: only while the script loads");
    lua_getfield(L, LUA_REGISTRYINDEX, "ms.timers");
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n >= 64)
        return luaL_error(L, "ms.every: at most 64 timers");
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, sec);
    lua_setfield(L, -2, "every");
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "fn");
    lua_pushnumber(L, (lua_Number)ms_mono_ms() / 1000.0 + sec);
    lua_setfield(L, -2, "next");
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "script");
    lua_rawseti(L, -2, n + 1);
    return 0;
}

/* ---- servers and cluster (docs/lua.md "Servers and the cluster") ------- */

/* ms.servers() / ms.cluster(): the body of GET /api/v1/servers ("servers"
 * array) or GET /api/v1/cluster, as the REST API builds it (the same job
 * on the control loop, node/cluster_read.h); nil, msg without the cluster
 * state, while a script's top level runs (a reload may run on the control
 * loop, which answers the job), or when the loop does not answer within
 * MS_CLUSTER_READ_TIMEOUT_MS. */
static int fail(lua_State *L, const char *msg);

static int cluster_get(lua_State *L, const char *res)
{
    int loading = lua_getfield(L, LUA_REGISTRYINDEX, "ms.loading") != LUA_TNIL;
    lua_pop(L, 1);
    if (loading)
        return luaL_error(L, "ms.%s: not available at a script's top level", res);
    unsigned st = 0;
    json_t *rep = NULL;
    int rc = ms_cluster_read(res, 0, &st, &rep);
    if (rc == -ENOTSUP)
        return fail(L, "needs the cluster state (listen.raft)");
    if (rc == -ETIMEDOUT)
        return fail(L, "the cluster did not answer in time");
    if (rc < 0)
        return fail(L, rc == -ENOMEM ? "out of memory" : "the node is stopping");
    if (st != 200 || !rep) {
        char msg[160];
        const char *err = json_string_value(json_object_get(rep, "error"));
        snprintf(msg, sizeof msg, "%u %s", st, err ? err : "");
        json_decref(rep);
        return fail(L, msg);
    }
    json_t *v = strcmp(res, "servers") == 0 ? json_object_get(rep, "servers") : rep;
    if (!v) {
        json_decref(rep);
        return fail(L, "no answer");
    }
    /* pushed in a protected call so that a memory error does not leak rep */
    lua_pushcfunction(L, push_json_p);
    lua_pushlightuserdata(L, v);
    rc = lua_pcall(L, 1, 1, 0);
    json_decref(rep);
    if (rc != LUA_OK)
        return lua_error(L);
    return 1;
}

static int l_servers(lua_State *L)
{
    return cluster_get(L, "servers");
}

static int l_cluster(lua_State *L)
{
    return cluster_get(L, "cluster");
}

/* ---- actions (docs/lua.md "Actions") ----------------------------------- */

/* A stream action handed to the cluster's control loop (node/cluster.h),
 * the job the REST handler would post for POST /api/v1/streams/{id}/
 * {action}; asynchronous: its answer is only logged. The job is ours
 * (heap) until done(job), which the loop calls once, and frees it. */
static void ljob_done(ms_cluster_job_t *j)
{
    if (j->status < 200 || j->status > 299) {
        const char *err = json_string_value(json_object_get(j->reply, "error"));
        MS_WARN(CTX, "ms.%s(%s): %u %s", j->action, j->id, j->status, err ? err : "");
    } else {
        MS_INFO(CTX, "ms.%s(%s): done", j->action, j->id);
    }
    json_decref(j->reply);
    free(j);
}

/* pushes nil, msg; returns 2 */
static int fail(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

static int post_action(lua_State *L, const char *action, const char *id)
{
    if (strlen(id) == 0 || strlen(id) >= sizeof(((ms_cluster_job_t *)0)->id))
        return fail(L, "bad stream id");
    ms_cluster_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return fail(L, "out of memory");
    snprintf(j->method, sizeof j->method, "POST");
    snprintf(j->res, sizeof j->res, "streams");
    snprintf(j->id, sizeof j->id, "%s", id);
    snprintf(j->action, sizeof j->action, "%s", action);
    j->done = ljob_done;
    if (ms_cluster_post(j) < 0) {
        free(j);
        return fail(L, "the node is stopping");
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* ms.restart(id): with the cluster state, the REST call's job (the server
 * that runs the stream restarts it); without, ms_streams_restart here. */
static int l_restart(lua_State *L)
{
    const char *id = luaL_checkstring(L, 1);
    if (ms_cluster_enabled())
        return post_action(L, "restart", id);
    int rc = ms_streams_restart(id);
    if (rc == -ENOENT)
        return fail(L, "unknown stream");
    if (rc < 0)
        return fail(L, "the stream is not running here");
    lua_pushboolean(L, 1);
    return 1;
}

static int set_enabled(lua_State *L, const char *action)
{
    const char *id = luaL_checkstring(L, 1);
    if (!ms_cluster_enabled())
        return fail(L, "needs the cluster state (listen.raft)");
    return post_action(L, action, id);
}

static int l_enable(lua_State *L)
{
    return set_enabled(L, "enable");
}

static int l_disable(lua_State *L)
{
    return set_enabled(L, "disable");
}

/* The config of a stream of this node; 0 or pushes nil, msg (2). */
static int find_cfg(lua_State *L, const char *id, ms_stream_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    ms_stream_t *s = ms_streams_find(id);
    if (!s)
        return fail(L, "unknown stream");
    int rc = ms_stream_get_cfg(s, cfg);
    ms_stream_unref(s);
    if (rc < 0)
        return fail(L, "out of memory");
    return 0;
}

/* ms.record_event(id, seconds): what POST /api/v1/streams/{id}/events
 * does (api/archive.c): ms_dvr_event on a stream recording in event mode. */
static int l_record_event(lua_State *L)
{
    const char *id = luaL_checkstring(L, 1);
    lua_Integer sec = luaL_checkinteger(L, 2);
    if (sec < 1 || sec > 86400)
        return fail(L, "seconds: 1..86400");
    ms_stream_cfg_t cfg;
    int n = find_cfg(L, id, &cfg);
    if (n)
        return n;
    const char *err = NULL;
    if (!cfg.dvr_enabled || cfg.dvr_mode != MS_DVR_EVENT) {
        err = "stream does not record in event mode";
    } else {
        int rc = ms_dvr_event(cfg.uid, (int64_t)sec);
        if (rc == -ENOENT)
            err = "stream is not recording (not running here)";
        else if (rc < 0)
            err = "event failed";
    }
    ms_stream_cfg_free(&cfg);
    if (err)
        return fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* ms.token(id, {hours=, seconds=, ip=}): a live playback token as
 * POST /api/v1/streams/{id}/tokens issues it (util/token.h, the node's
 * secret); returns token, expires (UTC s). */
static int l_token(lua_State *L)
{
    const char *id = luaL_checkstring(L, 1);
    lua_Number ttl = 3600;
    const char *ip = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        if (lua_getfield(L, 2, "hours") != LUA_TNIL)
            ttl = luaL_checknumber(L, -1) * 3600;
        if (lua_getfield(L, 2, "seconds") != LUA_TNIL)
            ttl = luaL_checknumber(L, -1);
        if (lua_getfield(L, 2, "ip") != LUA_TNIL)
            ip = luaL_checkstring(L, -1);
    }
    if (!(ttl >= 1 && ttl <= 365.0 * 86400))
        return fail(L, "the lifetime must be 1 s .. 365 days");
    lstate_t *st = lstate_of(L);
    if (!st->e || !st->e->secret[0])
        return fail(L, "no secret: tokens are unavailable");
    ms_stream_cfg_t cfg;
    int n = find_cfg(L, id, &cfg);
    if (n)
        return n;
    /* the issue time rounded up, as the REST call does (api/tokens_api.c) */
    int64_t expires = (ms_wall_us() + 999999) / 1000000 + (int64_t)ttl;
    char tok[MS_TOKEN_MAX];
    int rc =
        ms_token_make(st->e->secret, cfg.uid, MS_TOKEN_LIVE, expires, 0, 0, ip, tok, sizeof tok);
    ms_stream_cfg_free(&cfg);
    if (rc < 0)
        return fail(L,
                    rc == -EINVAL ? "bad argument (ip: a literal address)" : "cannot make a token");
    lua_pushstring(L, tok);
    lua_pushinteger(L, (lua_Integer)expires);
    return 2;
}

/* ---- cpanel extensions (docs/lua.md "cpanel") ---------------------------- */

/* ms.panel_column(title, fn) / ms.panel_field(title, fn): only while a
 * script's top level runs; kept in ms.panel[script] = {{kind, title, fn}}
 * (in registration order), at most MS_LUA_PANEL_MAX of each kind per
 * state. */
static int panel_add(lua_State *L, const char *kind)
{
    size_t tl;
    luaL_checklstring(L, 1, &tl);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (tl == 0 || tl > 64)
        return luaL_error(L, "ms.panel_%s: the title must be 1..64 bytes", kind);
    if (lua_getfield(L, LUA_REGISTRYINDEX, "ms.loading") != LUA_TSTRING)
        return luaL_error(L, "ms.panel_%s: only while the script loads", kind);
    const char *script = lua_tostring(L, -1);
    lua_getfield(L, LUA_REGISTRYINDEX, "ms.npanel");
    lua_getfield(L, -1, kind);
    lua_Integer n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (n >= MS_LUA_PANEL_MAX)
        return luaL_error(L, "ms.panel_%s: at most %d", kind, MS_LUA_PANEL_MAX);
    lua_pushinteger(L, n + 1);
    lua_setfield(L, -2, kind);
    lua_pop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, "ms.panel");
    if (lua_getfield(L, -1, script) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, script);
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "title");
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "fn");
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int l_panel_column(lua_State *L)
{
    return panel_add(L, "column");
}

static int l_panel_field(lua_State *L)
{
    return panel_add(L, "field");
}

static void open_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL}};
    for (const luaL_Reg *l = libs; l->name; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    static const char *const drop[] = {"dofile", "loadfile", "collectgarbage", "require", NULL};
    for (int i = 0; drop[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, g, drop[i]);
    }
    lua_getfield(L, g, "setmetatable");
    lua_pushcclosure(L, l_setmetatable, 1);
    lua_setfield(L, g, "setmetatable");
    lua_pushcfunction(L, l_xpcall);
    lua_setfield(L, g, "xpcall");
    lua_getfield(L, g, "load");
    lua_pushcclosure(L, l_load, 1);
    lua_setfield(L, g, "load");

    lua_getfield(L, g, "string");
    int st = lua_gettop(L);
    lua_pushnil(L);
    lua_setfield(L, st, "dump");
    static const char *const pat[] = {"find", "match", "gmatch", "gsub", NULL};
    for (int i = 0; pat[i]; i++) {
        lua_getfield(L, st, pat[i]);
        lua_pushinteger(L, i == 0);
        lua_pushcclosure(L, l_pattern, 2);
        lua_setfield(L, st, pat[i]);
    }
    lua_pop(L, 1);

    static const luaL_Reg ms[] = {{"log", l_log},
                                  {"json_encode", l_json_encode},
                                  {"json_decode", l_json_decode},
                                  {"streams", l_streams},
                                  {"stream", l_stream},
                                  {"route", l_route},
                                  {"every", l_every},
                                  {"query", l_query},
                                  {"restart", l_restart},
                                  {"enable", l_enable},
                                  {"disable", l_disable},
                                  {"record_event", l_record_event},
                                  {"token", l_token},
                                  {"panel_column", l_panel_column},
                                  {"panel_field", l_panel_field},
                                  {"servers", l_servers},
                                  {"cluster", l_cluster},
                                  {NULL, NULL}};
    luaL_newlib(L, ms);
    lua_pushlightuserdata(L, (void *)&ms_null_key);
    lua_setfield(L, -2, "null");
    lua_setfield(L, g, "ms");
    lua_pop(L, 1);

    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "ms.envs");
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "ms.routes");
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "ms.timers");
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "ms.panel");
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "ms.npanel");
}

static int traceback_msg(lua_State *L)
{
    /* keep the message as raised (it carries file:line) */
    if (!lua_isstring(L, 1))
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    return 1;
}

/* pcall of the function on top with nargs below it, under the budget. */
static int call(lstate_t *s, int nargs, int nres)
{
    lua_State *L = s->L;
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback_msg);
    lua_insert(L, base);
    budget_start(s);
    int rc = lua_pcall(L, nargs, nres, base);
    lua_sethook(L, NULL, 0, 0);
    lua_remove(L, base);
    return rc;
}

/* Compiles and runs one script's top level in its own environment,
 * registered in ms.envs. 0, or -1 with the error message pushed. */
static int load_script(lstate_t *s, const script_t *sc)
{
    lua_State *L = s->L;
    char chunk[80];
    snprintf(chunk, sizeof chunk, "@%s.lua", sc->name);
    if (luaL_loadbufferx(L, sc->src, sc->len, chunk, "t") != LUA_OK)
        return -1;
    lua_newtable(L); /* the environment */
    lua_newtable(L);
    lua_pushglobaltable(L);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    if (!lua_setupvalue(L, -3, 1))
        lua_pop(L, 1);
    lua_insert(L, -2); /* env, chunk */
    lua_pushstring(L, sc->name);
    lua_setfield(L, LUA_REGISTRYINDEX, "ms.loading");
    int rc = call(s, 0, 0);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "ms.loading");
    if (rc != LUA_OK) {
        lua_remove(L, -2); /* env */
        /* drop the routes and panel entries it registered before failing */
        lua_getfield(L, LUA_REGISTRYINDEX, "ms.routes");
        lua_pushnil(L);
        lua_setfield(L, -2, sc->name);
        lua_pop(L, 1);
        lua_getfield(L, LUA_REGISTRYINDEX, "ms.panel");
        lua_pushnil(L);
        lua_setfield(L, -2, sc->name);
        lua_pop(L, 1);
        return -1;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "ms.envs");
    lua_insert(L, -2);
    lua_setfield(L, -2, sc->name);
    lua_pop(L, 1);
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}

static void lstate_close(lstate_t *s)
{
    if (!s)
        return;
    if (s->L)
        lua_close(s->L);
    free(s);
}

static lstate_t *lstate_new(size_t cap, int64_t budget)
{
    lstate_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cap = cap;
    s->budget = budget;
    s->L = lua_newstate(l_alloc, s);
    if (!s->L) {
        free(s);
        return NULL;
    }
    return s;
}

static int open_protected(lua_State *L)
{
    open_sandbox(L);
    return 0;
}

/* ---- per-thread states ---------------------------------------------------- */

static pthread_key_t g_tls_key;
static pthread_once_t g_tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p)
{
    lstate_close(p);
}
static void tls_init(void)
{
    pthread_key_create(&g_tls_key, tls_free);
}

/* The calling thread's state for the engine's current set (built or
 * rebuilt when the set changed). NULL when there are no scripts or out
 * of memory. */
static lstate_t *thread_state(ms_lua_t *e)
{
    pthread_once(&g_tls_once, tls_init);
    lstate_t *s = pthread_getspecific(g_tls_key);
    set_t *set = cur_ref(e);
    if (!set || set->n == 0) {
        set_unref(set);
        return NULL;
    }
    if (s && s->serial == set->serial && s->cap == e->mem_cap && s->budget == e->budget) {
        set_unref(set);
        return s;
    }
    lstate_close(s);
    pthread_setspecific(g_tls_key, NULL);
    s = lstate_new(e->mem_cap, e->budget);
    if (!s) {
        set_unref(set);
        return NULL;
    }
    s->e = e;
    lua_pushcfunction(s->L, open_protected);
    if (lua_pcall(s->L, 0, 0, 0) != LUA_OK) {
        lstate_close(s);
        set_unref(set);
        return NULL;
    }
    for (size_t i = 0; i < set->n; i++)
        if (load_script(s, &set->v[i]) < 0) {
            /* it loaded at reload time: only a limit can differ here */
            MS_WARN(CTX, "%s", lua_tostring(s->L, -1));
            lua_pop(s->L, 1);
        }
    s->serial = set->serial;
    set_unref(set);
    pthread_setspecific(g_tls_key, s);
    return s;
}

/* ---- loading --------------------------------------------------------------- */

static int name_ok(const char *n, size_t len)
{
    /* n is the file name: its first len bytes are the base name; reload
     * and panel are calls of /api/v1/lua, not script names */
    if (len == 0 || len >= 64 || (len == 6 && strncmp(n, "reload", 6) == 0) ||
        (len == 5 && strncmp(n, "panel", 5) == 0))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *buf = malloc(MS_LUA_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, MS_LUA_FILE_MAX + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return -EIO;
    }
    if (n > MS_LUA_FILE_MAX) {
        free(buf);
        return -EFBIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static const script_t *find_script(const set_t *s, const char *name)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return &s->v[i];
    return NULL;
}

static int add_script(set_t *s, const char *name, const char *src, size_t len, const char *sha)
{
    script_t *v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    s->v = v;
    script_t *sc = &v[s->n];
    memset(sc, 0, sizeof *sc);
    snprintf(sc->name, sizeof sc->name, "%s", name);
    sc->src = malloc(len + 1);
    if (!sc->src)
        return -ENOMEM;
    memcpy(sc->src, src, len);
    sc->src[len] = '\0';
    sc->len = len;
    memcpy(sc->sha, sha, 65);
    s->n++;
    return 0;
}

json_t *ms_lua_reload(ms_lua_t *e)
{
    assert(e);
    pthread_mutex_lock(&e->reload_mu);
    json_t *files = json_array();
    json_t *rep = json_object();
    set_t *old = cur_ref(e);
    set_t *ns = calloc(1, sizeof *ns);
    lstate_t *chk = NULL;
    int all_ok = 1;
    char **names = NULL;
    size_t nn = 0;
    if (!files || !rep || !ns)
        goto oom;
    atomic_init(&ns->refs, 1);
    if (e->dir[0]) {
        DIR *d = opendir(e->dir);
        if (!d) {
            all_ok = 0;
            json_object_set_new(rep, "error", json_sprintf("%s: %s", e->dir, strerror(errno)));
        }
        struct dirent *de;
        while (d && (de = readdir(d))) {
            size_t l = strlen(de->d_name);
            if (l < 5 || strcmp(de->d_name + l - 4, ".lua") != 0 || de->d_name[0] == '.')
                continue;
            if (nn >= MS_LUA_FILES_MAX) {
                all_ok = 0;
                json_array_append_new(files,
                                      json_pack("{s:s,s:b,s:s}", "file", de->d_name, "loaded", 0,
                                                "error", "too many scripts (at most 64)"));
                continue;
            }
            char **nv = realloc(names, (nn + 1) * sizeof *nv);
            if (!nv || !(nv[nn] = strdup(de->d_name))) {
                free(nv ? NULL : names);
                names = nv;
                closedir(d);
                goto oom;
            }
            names = nv;
            nn++;
        }
        if (d)
            closedir(d);
    }
    if (nn)
        qsort(names, nn, sizeof *names, cmp_str);
    chk = lstate_new(e->mem_cap, e->budget);
    if (!chk)
        goto oom;
    chk->e = e;
    lua_pushcfunction(chk->L, open_protected);
    if (lua_pcall(chk->L, 0, 0, 0) != LUA_OK)
        goto oom;
    for (size_t i = 0; i < nn; i++) {
        const char *fn = names[i];
        size_t bl = strlen(fn) - 4;
        char base[64] = "";
        char err[512] = "";
        char path[MS_PATH_MAX + 80];
        char *src = NULL;
        size_t len = 0;
        char sha[65] = "";
        if (!name_ok(fn, bl)) {
            snprintf(err, sizeof err,
                     "%s: the base name must be 1-63 of A-Z a-z 0-9 _ - (and not \"reload\")", fn);
        } else {
            memcpy(base, fn, bl);
            snprintf(path, sizeof path, "%s/%s", e->dir, fn);
            int rc = read_file(path, &src, &len);
            if (rc < 0) {
                snprintf(err, sizeof err, "%s: %s", fn,
                         rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
            } else {
                sha256_hex(src, len, sha);
                script_t sc = {.src = src, .len = len};
                snprintf(sc.name, sizeof sc.name, "%s", base);
                if (load_script(chk, &sc) < 0) {
                    snprintf(err, sizeof err, "%s", lua_tostring(chk->L, -1));
                    lua_pop(chk->L, 1);
                }
            }
        }
        json_t *fj = json_pack("{s:s,s:s,s:b}", "file", fn, "sha256", sha, "loaded", !err[0]);
        if (err[0]) {
            all_ok = 0;
            MS_WARN(CTX, "%s did not load: %s", fn, err);
            const script_t *prev = base[0] ? find_script(old, base) : NULL;
            if (prev && add_script(ns, prev->name, prev->src, prev->len, prev->sha) < 0) {
                free(src);
                json_decref(fj);
                goto oom;
            }
            if (fj) {
                json_object_set_new(fj, "error", json_string(err));
                json_object_set_new(fj, "kept_previous", json_boolean(prev != NULL));
                if (prev)
                    json_object_set_new(fj, "sha256", json_string(prev->sha));
            }
        } else if (add_script(ns, base, src, len, sha) < 0) {
            free(src);
            json_decref(fj);
            goto oom;
        }
        free(src);
        json_array_append_new(files, fj);
    }
    set_hash(ns);
    ns->serial = atomic_fetch_add(&g_serial, 1);
    pthread_mutex_lock(&e->mu);
    set_t *prev = e->cur;
    e->cur = ns;
    pthread_mutex_unlock(&e->mu);
    set_unref(prev);
    MS_INFO(CTX, "%zu script(s) running from %s, hash %.16s", ns->n, e->dir[0] ? e->dir : "-",
            ns->hash);
    json_object_set_new(rep, "ok", json_boolean(all_ok));
    json_object_set_new(rep, "hash", json_string(ns->hash));
    json_object_set_new(rep, "files", files);
    files = NULL;
    ns = NULL;
    goto out;
oom:
    json_decref(rep);
    rep = NULL;
out:
    json_decref(files);
    if (ns)
        set_unref(ns);
    set_unref(old);
    lstate_close(chk);
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    pthread_mutex_unlock(&e->reload_mu);
    return rep;
}

/* ---- hook timing ------------------------------------------------------- */

/* The bucket of a duration of v ns: v itself below 4, else 4 buckets per
 * power of two (the two bits after the leading one): at most 25% wide. */
static unsigned hook_bucket(uint64_t v)
{
    if (v < 4)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    return (e << 2) | (unsigned)((v >> (e - 2)) & 3u);
}

/* The largest duration of bucket b (ns). */
static uint64_t hook_bucket_top(unsigned b)
{
    if (b < 4)
        return b;
    unsigned e = b >> 2, m = b & 3u;
    return (((uint64_t)(4u | m) + 1) << (e - 2)) - 1;
}

static void hook_note(ms_lua_t *e, uint64_t ns)
{
    atomic_fetch_add_explicit(&e->hook_hist[hook_bucket(ns)], 1, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&e->hook_max_ns, memory_order_relaxed);
    while (ns > m && !atomic_compare_exchange_weak_explicit(
                         &e->hook_max_ns, &m, ns, memory_order_relaxed, memory_order_relaxed))
        ;
}

/* {"calls", "p50_us", "p99_us", "max_us"}: the quantiles are the tops of
 * their buckets (so at most 25% above the true value), 0 without calls. */
static json_t *hook_stats(ms_lua_t *e)
{
    uint64_t c[256], n = 0;
    for (unsigned i = 0; i < 256; i++)
        n += c[i] = atomic_load_explicit(&e->hook_hist[i], memory_order_relaxed);
    double q[2] = {0, 0};
    const double want[2] = {0.50, 0.99};
    for (int k = 0; k < 2 && n; k++) {
        uint64_t need = (uint64_t)(want[k] * (double)n + 0.999999), acc = 0;
        if (need == 0)
            need = 1;
        for (unsigned i = 0; i < 256; i++) {
            acc += c[i];
            if (acc >= need) {
                q[k] = (double)hook_bucket_top(i) / 1000.0;
                break;
            }
        }
    }
    double mx = (double)atomic_load_explicit(&e->hook_max_ns, memory_order_relaxed) / 1000.0;
    return json_pack("{s:I,s:f,s:f,s:f}", "calls", (json_int_t)n, "p50_us", q[0], "p99_us", q[1],
                     "max_us", mx);
}

static json_t *cache_stats(void);

json_t *ms_lua_status(ms_lua_t *e)
{
    set_t *s = cur_ref(e);
    json_t *files = json_array();
    for (size_t i = 0; s && files && i < s->n; i++)
        json_array_append_new(
            files, json_pack("{s:s+,s:s}", "file", s->v[i].name, ".lua", "sha256", s->v[i].sha));
    json_t *j = json_pack("{s:s,s:s,s:o*,s:o*,s:o*}", "dir", e->dir, "hash", s ? s->hash : "",
                          "files", files, "hooks", hook_stats(e), "session_cache", cache_stats());
    set_unref(s);
    return j;
}

ms_lua_t *ms_lua_new(const char *dir, const ms_lua_opts_t *o)
{
    ms_lua_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->reload_mu, NULL);
    pthread_mutex_init(&e->ev_mu, NULL);
    pthread_cond_init(&e->ev_cv, NULL);
    snprintf(e->dir, sizeof e->dir, "%s", dir ? dir : "");
    e->mem_cap = o && o->mem_cap ? o->mem_cap : MS_LUA_MEM_CAP_DEFAULT;
    e->budget = o && o->budget > 0 ? o->budget : MS_LUA_BUDGET_DEFAULT;
    e->fail_open = o ? o->fail_open : 0;
    e->ttl_ms = o && o->session_ttl_ms > 0 ? o->session_ttl_ms : 10000;
    snprintf(e->secret, sizeof e->secret, "%s", o && o->secret ? o->secret : "");
    json_t *rep = ms_lua_reload(e);
    if (!rep) {
        ms_lua_free(e);
        return NULL;
    }
    json_decref(rep);
    return e;
}

void ms_lua_free(ms_lua_t *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->ev_mu);
    e->ev_stop = 1;
    pthread_cond_signal(&e->ev_cv);
    int running = e->ev_running;
    pthread_mutex_unlock(&e->ev_mu);
    if (running)
        pthread_join(e->ev_thread, NULL);
    for (ev_t *v = e->ev_head, *nx; v; v = nx) {
        nx = v->next;
        free(v);
    }
    pthread_mutex_destroy(&e->ev_mu);
    pthread_cond_destroy(&e->ev_cv);
    /* this thread's state goes now; other threads' at their next call */
    pthread_once(&g_tls_once, tls_init);
    lstate_close(pthread_getspecific(g_tls_key));
    pthread_setspecific(g_tls_key, NULL);
    set_unref(e->cur);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->reload_mu);
    free(e);
}

/* ---- calls ----------------------------------------------------------------- */

int ms_lua_decide(ms_lua_t *e, const ms_lua_req_t *q, char *reason, size_t cap)
{
    assert(e && q);
    if (reason && cap)
        reason[0] = '\0';
    const char *hook = q->action && strcmp(q->action, "publish") == 0 ? "on_publish" : "on_play";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lstate_t *s = thread_state(e);
    if (!s)
        return 0;
    lua_State *L = s->L;
    int top = lua_gettop(L);
    int rc = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "ms.envs");
    int envs = lua_gettop(L);
    /* in name order: the envs table is unordered, the set is sorted */
    set_t *set = cur_ref(e);
    for (size_t i = 0; set && i < set->n && rc == 0; i++) {
        if (lua_getfield(L, envs, set->v[i].name) != LUA_TTABLE) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushstring(L, hook);
        if (lua_rawget(L, -2) != LUA_TFUNCTION) { /* the script's own global */
            lua_pop(L, 2);
            continue;
        }
        lua_createtable(L, 0, 9);
        setf(L, "action", q->action ? q->action : "play");
        setf(L, "stream", q->stream);
        setf(L, "app", q->app);
        setf(L, "protocol", q->protocol);
        setf(L, "ip", q->ip);
        setf(L, "query", q->query);
        setf(L, "token", q->token);
        setf(L, "user_agent", q->user_agent);
        setf(L, "mode", q->mode ? q->mode : "live");
        int c = call(s, 1, 2);
        if (c != LUA_OK) {
            const char *msg = lua_tostring(L, -1);
            uint32_t sup = 0;
            static ms_ratelimit_t rl = MS_RATELIMIT_INIT(1000);
            if (ms_ratelimit_ok_mt(&rl, &sup))
                MS_WARN(CTX, "%s of %s.lua failed (%s): %s", hook, set->v[i].name,
                        e->fail_open ? "allowed: fail open" : "refused: fail closed",
                        msg ? msg : "?");
            if (!e->fail_open) {
                rc = -EACCES;
                if (reason && cap)
                    snprintf(reason, cap, "%s script error", hook);
            }
        } else if (!lua_toboolean(L, -2)) {
            rc = -EACCES;
            if (reason && cap)
                snprintf(reason, cap, "%s",
                         lua_isstring(L, -1) ? lua_tostring(L, -1) : "refused by a script");
        }
        lua_settop(L, envs);
    }
    set_unref(set);
    lua_settop(L, top);
    lua_gc(L, LUA_GCSTEP, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
    hook_note(e, ns > 0 ? (uint64_t)ns : 0);
    return rc;
}

int ms_lua_http(ms_lua_t *e, const char *script, const char *method, const char *path,
                const char *query, const char *ip, const char *body, size_t body_len, json_t **out)
{
    assert(e && script && method && path && out);
    *out = NULL;
    lstate_t *s = thread_state(e);
    if (!s) {
        *out = json_pack("{s:s}", "error", "no such script");
        return *out ? 404 : -ENOMEM;
    }
    lua_State *L = s->L;
    int top = lua_gettop(L);
    int status = 404;
    const char *why = "no such script";
    lua_getfield(L, LUA_REGISTRYINDEX, "ms.envs");
    if (lua_getfield(L, -1, script) == LUA_TTABLE) {
        why = "no such route";
        lua_getfield(L, LUA_REGISTRYINDEX, "ms.routes");
        if (lua_getfield(L, -1, script) == LUA_TTABLE) {
            lua_pushfstring(L, "%s %s", strcmp(method, "HEAD") == 0 ? "GET" : method, path);
            if (lua_gettable(L, -2) == LUA_TFUNCTION)
                status = 0;
        }
    }
    if (status == 404) {
        lua_settop(L, top);
        *out = json_pack("{s:s}", "error", why);
        return *out ? 404 : -ENOMEM;
    }
    json_t *jb = NULL;
    if (body && body_len) {
        json_error_t je;
        jb = json_loadb(body, body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
        if (!jb) {
            lua_settop(L, top);
            *out = json_pack("{s:s}", "error", "the body is not JSON");
            return *out ? 400 : -ENOMEM;
        }
    }
    int fn = lua_gettop(L);
    lua_createtable(L, 0, 5);
    setf(L, "method", method);
    setf(L, "path", path);
    setf(L, "query", query);
    setf(L, "ip", ip);
    if (jb) {
        push_json(L, jb, 0);
        lua_setfield(L, -2, "body");
        json_decref(jb);
    }
    (void)fn;
    int c = call(s, 1, 2);
    if (c != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        MS_WARN(CTX, "route %s %s of %s.lua failed: %s", method, path, script, msg ? msg : "?");
        *out = json_pack("{s:s}", "error", msg ? msg : "script error");
        status = 500;
    } else {
        lua_Integer code = 200;
        int vi = -1;
        if (lua_isinteger(L, -2)) {
            code = lua_tointeger(L, -2);
        } else if (!lua_isnil(L, -2)) {
            vi = -2; /* only a value */
        }
        if (code < 200 || code > 599) {
            *out = json_pack("{s:s}", "error", "the script answered an invalid status");
            status = 500;
        } else {
            char err[96] = "";
            *out = to_json(L, vi, 0, err, sizeof err);
            status = (int)code;
            if (!*out) {
                *out = json_pack("{s:s+}", "error", "the script's answer is not JSON: ", err);
                status = 500;
            }
        }
    }
    lua_settop(L, top);
    lua_gc(L, LUA_GCSTEP, 0);
    return *out ? status : -ENOMEM;
}

/* ---- the cpanel descriptor ---------------------------------------------- */

/* The length of the longest prefix of p[0..n) that is whole UTF-8
 * characters (RFC 3629 section 4), at most max bytes; -1 when p is not
 * UTF-8. */
static long utf8_prefix(const unsigned char *p, size_t n, size_t max)
{
    size_t i = 0, keep = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len = c < 0x80             ? 1
                     : (c & 0xE0) == 0xC0 ? 2
                     : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4
                                          : 0;
        if (len == 0 || (len == 2 && c < 0xC2) || (len == 4 && c > 0xF4) || i + len > n)
            return -1;
        for (size_t k = 1; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return -1;
        i += len;
        if (i <= max)
            keep = i;
    }
    return (long)keep;
}

/* Runs in one protected call under one budget: the streams (ms.streams())
 * and every panel entry of every script (file name order; the script
 * names are upvalue 1, an array), one call per entry and stream, each in
 * its own pcall. Returns {columns = {...}, fields = {...}}, each entry
 * {title, script, values = {uid = text}, error = first error}. */
static int panel_run(lua_State *L)
{
    lstate_t *st = lstate_of(L);
    lua_settop(L, 0);
    lua_pushcfunction(L, l_streams);
    lua_call(L, 0, 1); /* 1: streams */
    lua_createtable(L, 0, 2);
    lua_newtable(L);
    lua_setfield(L, 2, "columns");
    lua_newtable(L);
    lua_setfield(L, 2, "fields");                   /* 2: the result */
    lua_getfield(L, LUA_REGISTRYINDEX, "ms.panel"); /* 3 */
    lua_Integer nscripts = (lua_Integer)lua_rawlen(L, lua_upvalueindex(1));
    lua_Integer nstreams = (lua_Integer)lua_rawlen(L, 1);
    for (lua_Integer si = 1; si <= nscripts; si++) {
        lua_rawgeti(L, lua_upvalueindex(1), si);                    /* 4: script name */
        if (lua_getfield(L, 3, lua_tostring(L, 4)) != LUA_TTABLE) { /* 5: its entries */
            lua_settop(L, 3);
            continue;
        }
        for (lua_Integer k = 1; k <= (lua_Integer)lua_rawlen(L, 5); k++) {
            lua_rawgeti(L, 5, k); /* 6: entry */
            lua_getfield(L, 6, "kind");
            int column = strcmp(lua_tostring(L, -1), "column") == 0;
            lua_pop(L, 1);
            lua_getfield(L, 2, column ? "columns" : "fields"); /* 7 */
            lua_createtable(L, 0, 4);                          /* 8: out entry */
            lua_getfield(L, 6, "title");
            lua_setfield(L, 8, "title");
            lua_pushvalue(L, 4);
            lua_setfield(L, 8, "script");
            lua_newtable(L); /* 9: values */
            for (lua_Integer i = 1; i <= nstreams && !st->exhausted; i++) {
                lua_getfield(L, 6, "fn");
                lua_rawgeti(L, 1, i);
                lua_getfield(L, -1, "uid"); /* fn, stream, uid */
                lua_insert(L, -3);          /* uid, fn, stream */
                const char *err = NULL;
                if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
                    err = lua_isstring(L, -1) ? lua_tostring(L, -1) : "error";
                } else if (lua_isnil(L, -1)) {
                    lua_pop(L, 2); /* no value for this stream */
                    continue;
                } else if (lua_type(L, -1) == LUA_TNUMBER || lua_type(L, -1) == LUA_TBOOLEAN ||
                           lua_type(L, -1) == LUA_TSTRING) {
                    size_t len;
                    const char *v = luaL_tolstring(L, -1, &len);
                    long keep = utf8_prefix((const unsigned char *)v, len, MS_LUA_PANEL_TEXT_MAX);
                    if (keep < 0) {
                        err = "the value is not UTF-8 text";
                        lua_pop(L, 1);
                    } else {
                        lua_pushlstring(L, v, (size_t)keep);
                        lua_remove(L, -2); /* the tolstring copy */
                        lua_remove(L, -2); /* the value */
                        lua_rawset(L, 9);  /* values[uid] = text */
                        continue;
                    }
                } else {
                    err = "the value must be a string, number or boolean";
                }
                if (lua_getfield(L, 8, "error") == LUA_TNIL) {
                    lua_pop(L, 1);
                    size_t el;
                    const char *e = err;
                    el = strlen(e);
                    long keep = utf8_prefix((const unsigned char *)e, el, MS_LUA_PANEL_TEXT_MAX);
                    lua_pushlstring(L, e, keep < 0 ? 0 : (size_t)keep);
                    lua_setfield(L, 8, "error");
                } else {
                    lua_pop(L, 1);
                }
                lua_settop(L, 9);
            }
            if (st->exhausted && lua_getfield(L, 8, "error") == LUA_TNIL) {
                lua_pushstring(L, "instruction budget exhausted");
                lua_setfield(L, 8, "error");
            }
            lua_settop(L, 9);
            lua_setfield(L, 8, "values");
            lua_rawseti(L, 7, (lua_Integer)lua_rawlen(L, 7) + 1);
            lua_settop(L, 5);
        }
        lua_settop(L, 3);
    }
    lua_settop(L, 2);
    return 1;
}

/* An object for a Lua table that to_json made an array (an empty table). */
static void as_object(json_t *parent, const char *key)
{
    if (json_is_array(json_object_get(parent, key)))
        json_object_set_new(parent, key, json_object());
}

json_t *ms_lua_panel(ms_lua_t *e)
{
    assert(e);
    json_t *out = json_pack("{s:[],s:[]}", "columns", "fields");
    lstate_t *s = thread_state(e);
    if (!s || !out)
        return out;
    set_t *set = cur_ref(e);
    lua_State *L = s->L;
    int top = lua_gettop(L);
    lua_createtable(L, set ? (int)set->n : 0, 0);
    for (size_t i = 0; set && i < set->n; i++) {
        lua_pushstring(L, set->v[i].name);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    set_unref(set);
    lua_pushcclosure(L, panel_run, 1);
    if (call(s, 0, 1) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        MS_WARN(CTX, "panel: %s", msg ? msg : "?");
        json_object_set_new(out, "error", json_string(msg ? msg : "script error"));
    } else {
        char err[96] = "";
        json_t *j = to_json(L, -1, 0, err, sizeof err);
        if (j) {
            const char *kinds[] = {"columns", "fields"};
            for (int k = 0; k < 2; k++) {
                json_t *arr = json_object_get(j, kinds[k]);
                if (!json_is_array(arr))
                    continue;
                size_t i;
                json_t *ent;
                json_array_foreach(arr, i, ent) as_object(ent, "values");
                json_object_set(out, kinds[k], arr);
            }
            json_decref(j);
        } else {
            json_object_set_new(out, "error", json_string(err));
        }
    }
    lua_settop(L, top);
    lua_gc(L, LUA_GCSTEP, 0);
    return out;
}

/* ---- the node's engine and the session cache ------------------------------- */

static _Atomic(ms_lua_t *) g_engine;

void ms_lua_set_global(ms_lua_t *e)
{
    atomic_store(&g_engine, e);
}

ms_lua_t *ms_lua_global(void)
{
    return atomic_load(&g_engine);
}

#define CACHE_BUCKETS 1024
#define CACHE_MAX     8192

typedef struct centry {
    struct centry *next;
    uint64_t serial;
    int64_t until_ms; /* hard end: the token's expiry */
    int64_t last_ms;  /* last use */
    int rc;
    char reason[128];
    char key[];
} centry_t;

static pthread_mutex_t g_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static centry_t *g_cache[CACHE_BUCKETS];
static size_t g_ncache;
/* A sweep of a full cache where every entry is fresh frees nothing and
 * costs a walk of all CACHE_MAX entries under g_cache_mu: after one, the
 * next waits until g_sweep_next (monotonic ms) and the decisions made
 * meanwhile are not cached (more than CACHE_MAX sessions within the idle
 * TTL, e.g. a distinct token on every request, would otherwise make every
 * request walk the whole cache with all HTTP threads waiting). */
#define CACHE_SWEEP_HOLD_MS 1000
static int64_t g_sweep_next;
static uint64_t g_nsweeps;

static uint32_t fnv(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static int stale(const centry_t *c, uint64_t serial, int64_t now, int ttl)
{
    return c->serial != serial || now >= c->until_ms || now - c->last_ms >= ttl;
}

static void cache_sweep(uint64_t serial, int64_t now, int ttl)
{
    for (size_t b = 0; b < CACHE_BUCKETS; b++)
        for (centry_t **pp = &g_cache[b]; *pp;) {
            centry_t *c = *pp;
            if (stale(c, serial, now, ttl)) {
                *pp = c->next;
                free(c);
                g_ncache--;
            } else {
                pp = &c->next;
            }
        }
}

/* {"entries", "max", "sweeps"} of the on_play session cache (process-wide). */
static json_t *cache_stats(void)
{
    pthread_mutex_lock(&g_cache_mu);
    size_t n = g_ncache;
    uint64_t sw = g_nsweeps;
    pthread_mutex_unlock(&g_cache_mu);
    return json_pack("{s:I,s:i,s:I}", "entries", (json_int_t)n, "max", CACHE_MAX, "sweeps",
                     (json_int_t)sw);
}

/* The uncached decision: pre (the HTTP hook), then the scripts. */
static int play_decide(ms_lua_t *e, size_t n, const ms_lua_req_t *r, ms_lua_pre_fn pre,
                       void *pre_ud, char *why, size_t cap)
{
    int rc = pre ? pre(pre_ud, r, why, cap) : 0;
    if (rc == 0 && e && n > 0)
        rc = ms_lua_decide(e, r, why, cap);
    return rc;
}

int ms_lua_on_play(const ms_lua_req_t *q, int64_t expires, char *reason, size_t cap)
{
    return ms_lua_on_play_pre(q, expires, NULL, NULL, reason, cap);
}

int ms_lua_on_play_pre(const ms_lua_req_t *q, int64_t expires, ms_lua_pre_fn pre, void *pre_ud,
                       char *reason, size_t cap)
{
    ms_lua_t *e = ms_lua_global();
    if (reason && cap)
        reason[0] = '\0';
    uint64_t serial = 0;
    size_t n = 0;
    int ttl = 10000; /* the default session_ttl_ms */
    if (e) {
        set_t *set = cur_ref(e);
        serial = set ? set->serial : 0;
        n = set ? set->n : 0;
        set_unref(set);
        ttl = e->ttl_ms;
    }
    if (n == 0 && !pre)
        return 0;
    char key[2048];
    int kn = snprintf(key, sizeof key, "%s\x1f%s\x1f%s\x1f%s\x1f%s", q->protocol ? q->protocol : "",
                      q->stream ? q->stream : "", q->ip ? q->ip : "", q->token ? q->token : "",
                      q->user_agent ? q->user_agent : "");
    if (kn < 0 || (size_t)kn >= sizeof key) { /* not cached: a cut key could merge sessions */
        ms_lua_req_t r = *q;
        r.action = "play";
        char why[128] = "";
        int rc = play_decide(e, n, &r, pre, pre_ud, why, sizeof why);
        if (reason && cap)
            snprintf(reason, cap, "%s", why);
        return rc;
    }
    uint32_t b = fnv(key) % CACHE_BUCKETS;
    int64_t now = ms_wall_us() / 1000;
    pthread_mutex_lock(&g_cache_mu);
    for (centry_t *c = g_cache[b]; c; c = c->next)
        if (strcmp(c->key, key) == 0 && !stale(c, serial, now, ttl)) {
            c->last_ms = now;
            int rc = c->rc;
            if (reason && cap)
                snprintf(reason, cap, "%s", c->reason);
            pthread_mutex_unlock(&g_cache_mu);
            return rc;
        }
    pthread_mutex_unlock(&g_cache_mu);

    ms_lua_req_t r = *q;
    r.action = "play";
    char why[128] = "";
    int rc = play_decide(e, n, &r, pre, pre_ud, why, sizeof why);
    if (reason && cap)
        snprintf(reason, cap, "%s", why);

    size_t kl = strlen(key);
    centry_t *c = malloc(sizeof *c + kl + 1);
    if (!c)
        return rc;
    c->serial = serial;
    c->until_ms = expires > 0 ? expires * 1000 : INT64_MAX;
    c->last_ms = now;
    c->rc = rc;
    snprintf(c->reason, sizeof c->reason, "%s", why);
    memcpy(c->key, key, kl + 1);
    pthread_mutex_lock(&g_cache_mu);
    if (g_ncache >= CACHE_MAX && ms_mono_ms() >= g_sweep_next) {
        cache_sweep(serial, now, ttl);
        g_nsweeps++;
        if (g_ncache >= CACHE_MAX)
            g_sweep_next = ms_mono_ms() + CACHE_SWEEP_HOLD_MS;
    }
    if (g_ncache < CACHE_MAX) {
        /* a concurrent first call may have added the same key: the newer wins */
        for (centry_t **pp = &g_cache[b]; *pp; pp = &(*pp)->next)
            if (strcmp((*pp)->key, key) == 0) {
                centry_t *old = *pp;
                *pp = old->next;
                free(old);
                g_ncache--;
                break;
            }
        c->next = g_cache[b];
        g_cache[b] = c;
        g_ncache++;
        c = NULL;
    }
    pthread_mutex_unlock(&g_cache_mu);
    free(c);
    return rc;
}

int ms_lua_on_publish(const ms_lua_req_t *q, char *reason, size_t cap)
{
    ms_lua_t *e = ms_lua_global();
    if (reason && cap)
        reason[0] = '\0';
    if (!e)
        return 0;
    ms_lua_req_t r = *q;
    r.action = "publish";
    return ms_lua_decide(e, &r, reason, cap);
}

/* ---- the event thread: on_event and ms.every ------------------------------ */

#define EV_QUEUE_MAX 1024

int ms_lua_event_post(ms_lua_t *e, const char *type, const char *stream, const char *state,
                      const char *previous)
{
    assert(e && type);
    ev_t *v = calloc(1, sizeof *v);
    if (!v)
        return -ENOMEM;
    snprintf(v->type, sizeof v->type, "%s", type);
    snprintf(v->stream, sizeof v->stream, "%s", stream ? stream : "");
    snprintf(v->state, sizeof v->state, "%s", state ? state : "");
    snprintf(v->previous, sizeof v->previous, "%s", previous ? previous : "");
    pthread_mutex_lock(&e->ev_mu);
    ev_t *drop = NULL;
    if (e->ev_n >= EV_QUEUE_MAX) { /* the oldest goes */
        drop = e->ev_head;
        e->ev_head = drop->next;
        if (!e->ev_head)
            e->ev_tail = NULL;
        e->ev_n--;
        e->ev_dropped++;
    }
    if (e->ev_tail)
        e->ev_tail->next = v;
    else
        e->ev_head = v;
    e->ev_tail = v;
    e->ev_n++;
    pthread_cond_signal(&e->ev_cv);
    pthread_mutex_unlock(&e->ev_mu);
    free(drop);
    return drop ? -ENOSPC : 0;
}

static void log_hook_error(const char *what, const char *msg)
{
    static ms_ratelimit_t rl = MS_RATELIMIT_INIT(1000);
    uint32_t sup = 0;
    if (ms_ratelimit_ok_mt(&rl, &sup))
        MS_WARN(CTX, "%s failed: %s%s", what, msg ? msg : "?",
                sup ? " (and earlier errors not logged)" : "");
}

static void dispatch_event(ms_lua_t *e, lstate_t *s, const ev_t *v)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "ms.envs");
    int envs = lua_gettop(L);
    set_t *set = cur_ref(e);
    for (size_t i = 0; set && i < set->n; i++) {
        if (lua_getfield(L, envs, set->v[i].name) != LUA_TTABLE) {
            lua_settop(L, envs);
            continue;
        }
        lua_pushliteral(L, "on_event");
        if (lua_rawget(L, -2) != LUA_TFUNCTION) {
            lua_settop(L, envs);
            continue;
        }
        lua_createtable(L, 0, 4);
        setf(L, "type", v->type);
        setf(L, "stream", v->stream);
        setf(L, "state", v->state);
        setf(L, "previous", v->previous);
        if (call(s, 1, 0) != LUA_OK)
            log_hook_error("on_event", lua_tostring(L, -1));
        lua_settop(L, envs);
    }
    set_unref(set);
    lua_settop(L, top);
}

/* Runs the due timers of this thread's state; returns the next due time
 * (monotonic s) or now + 1. */
static double run_timers(lstate_t *s, double now)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    double next = now + 1.0;
    lua_getfield(L, LUA_REGISTRYINDEX, "ms.timers");
    int t = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, t);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, t, i);
        int ti = lua_gettop(L);
        lua_getfield(L, ti, "next");
        lua_getfield(L, ti, "every");
        double due = lua_tonumber(L, -2), every = lua_tonumber(L, -1);
        lua_pop(L, 2);
        if (due <= now) {
            /* a late timer runs once, then keeps its period from now */
            due = due + every > now ? due + every : now + every;
            lua_pushnumber(L, due);
            lua_setfield(L, ti, "next");
            lua_getfield(L, ti, "fn");
            if (call(s, 0, 0) != LUA_OK) {
                lua_getfield(L, ti, "script");
                char what[96];
                snprintf(what, sizeof what, "a timer of %s.lua", lua_tostring(L, -1));
                lua_pop(L, 1);
                log_hook_error(what, lua_tostring(L, -1));
            }
        }
        if (due < next)
            next = due;
        lua_settop(L, t);
    }
    lua_settop(L, top);
    return next;
}

typedef struct {
    char name[MS_NAME_MAX];
    char state[24];
} seen_t;

static const char *load_state(ms_stream_t *st)
{
    ms_stream_load_t ld;
    memset(&ld, 0, sizeof ld);
    ms_stream_get_load(st, &ld);
    if (ld.run == MS_RUN_STOPPED)
        return "stopped";
    if (ld.run == MS_RUN_SUSPEND)
        return "suspended";
    return ld.source_active ? "active" : "inactive";
}

/* Compares the streams' states with the last poll and posts the changes. */
static void poll_streams(ms_lua_t *e, seen_t **seen, size_t *nseen)
{
    ms_stream_t **v = NULL;
    size_t n = ms_streams_list(&v);
    seen_t *now = n ? calloc(n, sizeof *now) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (now) {
            ms_stream_cfg_t cfg;
            memset(&cfg, 0, sizeof cfg);
            if (ms_stream_get_cfg(v[i], &cfg) == 0) {
                snprintf(now[i].name, sizeof now[i].name, "%s", cfg.name);
                ms_stream_cfg_free(&cfg);
            }
            snprintf(now[i].state, sizeof now[i].state, "%s", load_state(v[i]));
        }
        ms_stream_unref(v[i]);
    }
    free(v);
    if (n && !now)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *prev = "";
        for (size_t j = 0; j < *nseen; j++)
            if (strcmp((*seen)[j].name, now[i].name) == 0)
                prev = (*seen)[j].state;
        if (strcmp(prev, now[i].state) != 0)
            ms_lua_event_post(e, "stream", now[i].name, now[i].state, prev);
    }
    for (size_t j = 0; j < *nseen; j++) {
        int found = 0;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp((*seen)[j].name, now[i].name) == 0;
        if (!found)
            ms_lua_event_post(e, "stream", (*seen)[j].name, "removed", (*seen)[j].state);
    }
    free(*seen);
    *seen = now;
    *nseen = n;
}

static void *event_main(void *arg)
{
    ms_lua_t *e = arg;
    seen_t *seen = NULL;
    size_t nseen = 0;
    double next_timer = 0, next_poll = 0;
    for (;;) {
        double now = (double)ms_mono_ms() / 1000.0;
        if (e->poll_ms > 0 && now >= next_poll) {
            poll_streams(e, &seen, &nseen);
            next_poll = now + e->poll_ms / 1000.0;
        }
        pthread_mutex_lock(&e->ev_mu);
        double wake = next_timer > 0 ? next_timer : now + 1.0;
        if (e->poll_ms > 0 && next_poll < wake)
            wake = next_poll;
        if (!e->ev_head && !e->ev_stop && wake > now) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double d = wake - now;
            ts.tv_sec += (time_t)d;
            ts.tv_nsec += (long)((d - (double)(time_t)d) * 1e9);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&e->ev_cv, &e->ev_mu, &ts);
        }
        int stop = e->ev_stop;
        ev_t *list = e->ev_head;
        e->ev_head = e->ev_tail = NULL;
        e->ev_n = 0;
        pthread_mutex_unlock(&e->ev_mu);
        lstate_t *s = stop ? NULL : thread_state(e);
        for (ev_t *v = list, *nx; v; v = nx) {
            nx = v->next;
            if (s)
                dispatch_event(e, s, v);
            free(v);
        }
        if (stop)
            break;
        next_timer = s ? run_timers(s, (double)ms_mono_ms() / 1000.0) : 0;
        if (s)
            lua_gc(s->L, LUA_GCSTEP, 0);
    }
    free(seen);
    /* this thread's state, now (the key's destructor would too) */
    lstate_close(pthread_getspecific(g_tls_key));
    pthread_setspecific(g_tls_key, NULL);
    return NULL;
}

int ms_lua_events_start(ms_lua_t *e, int poll_ms)
{
    assert(e);
    pthread_once(&g_tls_once, tls_init);
    pthread_mutex_lock(&e->ev_mu);
    int rc = 0;
    if (!e->ev_running) {
        e->poll_ms = poll_ms;
        rc = -pthread_create(&e->ev_thread, NULL, event_main, e);
        e->ev_running = rc == 0;
    }
    pthread_mutex_unlock(&e->ev_mu);
    return rc;
}
