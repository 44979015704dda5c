/* JSON Merge Patch, RFC 7396 section 2. See jsonmerge.h. */
#include "util/jsonmerge.h"

#define MERGE_DEPTH_MAX 64

static json_t *merge(json_t *target, json_t *patch, int depth)
{
    if (!json_is_object(patch))
        return json_deep_copy(patch);
    if (depth > MERGE_DEPTH_MAX)
        return NULL;
    json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
    if (!out)
        return NULL;
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v)
    {
        if (json_is_null(v)) {
            json_object_del(out, k);
            continue;
        }
        json_t *m = merge(json_object_get(out, k), v, depth + 1);
        if (!m || json_object_set_new(out, k, m) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

json_t *ms_json_merge_patch(json_t *target, json_t *patch)
{
    if (!patch)
        return NULL;
    return merge(target, patch, 0);
}
