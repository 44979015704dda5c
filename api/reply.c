/* Response helpers: every reply of the server goes through here so that
 * the status and the size are recorded for the request log and
 * ms_http_requests_total. Media blobs are handed to MHD without a copy. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "util/log.h"

#define NCODES 500 /* 100..599 */
static atomic_uint_least64_t g_status[NCODES];

void ms_api_count_status(unsigned code)
{
    if (code >= 100 && code < 600)
        atomic_fetch_add_explicit(&g_status[code - 100], 1, memory_order_relaxed);
}

void ms_api_status_counts(uint64_t *counts, size_t n)
{
    for (size_t i = 0; i < n && i < NCODES; i++)
        counts[i] = atomic_load_explicit(&g_status[i], memory_order_relaxed);
}

static void blob_free_cb(void *cls)
{
    ms_blob_unref(cls);
}

static enum MHD_Result queue(ms_req_t *r, unsigned code, struct MHD_Response *resp,
                             const char *ctype, size_t len, const char *const *headers)
{
    if (!resp)
        return MHD_NO;
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    /* Playback responses may be fetched by web players on other origins
     * (hls.js, MSE players): allow any origin for them, as media servers do.
     * Access is decided by the stream's access mode, not by the origin. */
    if (ms_api_is_playback(r->route.id))
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    enum MHD_Result ret = MHD_queue_response(r->conn, code, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->status = code;
        r->bytes = len;
    }
    return ret;
}

enum MHD_Result ms_api_reply_blob(ms_req_t *r, unsigned code, const char *ctype, ms_blob_t *b,
                                  const char *const *headers)
{
    /* Zero-copy: MHD sends from the blob and drops our reference when the
     * response is destroyed (after the last byte or on disconnect). */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback_cls(b->len, b->data, blob_free_cb, b);
    if (!resp) {
        ms_blob_unref(b);
        return MHD_NO;
    }
    return queue(r, code, resp, ctype, b->len, headers);
}

static void body_free_cb(void *cls)
{
    ms_hls_body_t *b = cls;
    ms_hls_body_free(b);
    free(b);
}

enum MHD_Result ms_api_reply_body(ms_req_t *r, unsigned code, const char *ctype, ms_hls_body_t *b,
                                  const char *const *headers)
{
    /* Zero-copy over several blobs: MHD sends the vector (copying only the
     * vector itself) and calls body_free_cb when the response is destroyed. */
    ms_hls_body_t *held = malloc(sizeof *held);
    struct MHD_IoVec *iov = malloc(sizeof *iov * (size_t)(b->n ? b->n : 1));
    if (!held || !iov) {
        free(held);
        free(iov);
        ms_hls_body_free(b);
        return MHD_NO;
    }
    *held = *b;
    memset(b, 0, sizeof *b);
    for (int i = 0; i < held->n; i++) {
        iov[i].iov_base = held->blobs[i]->data;
        iov[i].iov_len = held->blobs[i]->len;
    }
    size_t len = held->len;
    struct MHD_Response *resp =
        MHD_create_response_from_iovec(iov, (unsigned)held->n, body_free_cb, held);
    free(iov);
    if (!resp) {
        body_free_cb(held);
        return MHD_NO;
    }
    return queue(r, code, resp, ctype, len, headers);
}

enum MHD_Result ms_api_reply_text(ms_req_t *r, unsigned code, const char *ctype, const char *text,
                                  size_t len, const char *const *headers)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)text, MHD_RESPMEM_MUST_COPY);
    return queue(r, code, resp, ctype, len, headers);
}

enum MHD_Result ms_api_reply_json(ms_req_t *r, unsigned code, json_t *j, const char *const *headers)
{
    if (!j)
        return ms_api_reply_text(r, 500, "application/json", "{\"error\":\"out of memory\"}\n", 26,
                                 NULL);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return ms_api_reply_text(r, 500, "application/json", "{\"error\":\"out of memory\"}\n", 26,
                                 NULL);
    size_t len = strlen(s);
    s[len] = '\0';
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, s, free);
    if (!resp) {
        free(s);
        return MHD_NO;
    }
    return queue(r, code, resp, "application/json", len, headers);
}

enum MHD_Result ms_api_reply_error(ms_req_t *r, unsigned code, const char *msg, const char *field,
                                   const char *const *headers)
{
    json_t *j = json_pack("{s:s}", "error", msg);
    if (j && field)
        json_object_set_new(j, "field", json_string(field));
    return ms_api_reply_json(r, code, j, headers);
}
