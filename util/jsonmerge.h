/* JSON Merge Patch (RFC 7396): the PATCH body format of the REST API
 * (docs/api.md). Pure, any thread. */
#ifndef MS_UTIL_JSONMERGE_H
#define MS_UTIL_JSONMERGE_H

#include <jansson.h>

/* Applies patch to target as RFC 7396 section 2 "MergePatch" does: a patch
 * that is not an object replaces the target; an object patch merges into
 * the target (replaced by {} when not an object) key by key, a null value
 * deletes the key, an object value merges recursively, any other value
 * replaces. Neither argument is modified (both borrowed; target may be
 * NULL). Returns a new reference the caller owns, NULL on out of memory or
 * when the patch nests deeper than 64 levels. */
json_t *ms_json_merge_patch(json_t *target, json_t *patch);

#endif
