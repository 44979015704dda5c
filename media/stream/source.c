#include "media/stream/source.h"

#include <stdint.h>
#include <string.h>

const char *ms_stream_state_name(ms_stream_state_t s)
{
    switch (s) {
    case MS_STATE_EMPTY:
        return "empty";
    case MS_STATE_INITIALIZATION:
        return "initialization";
    case MS_STATE_ACTIVE:
        return "active";
    case MS_STATE_INACTIVE:
        return "inactive";
    case MS_STATE_SUSPEND:
        return "suspend";
    }
    return "empty";
}

const char *ms_characteristic_name(ms_characteristic_t c)
{
    switch (c) {
    case MS_CHAR_OK:
        return "ok";
    case MS_CHAR_INCORRECT:
        return "incorrect";
    case MS_CHAR_PROBLEMATIC:
        return "problematic";
    case MS_CHAR_DISCONNECTED:
        return "disconnected";
    }
    return "ok";
}

int ms_src_window_note(ms_src_window_t *w, uint64_t total, int64_t now_ms)
{
    const int64_t n = (int64_t)(sizeof w->sec / sizeof w->sec[0]);
    int64_t sec = now_ms / 1000;
    if (sec - w->last_s >= n || sec < w->last_s)
        memset(w->sec, 0, sizeof w->sec);
    else
        for (int64_t s = w->last_s + 1; s <= sec; s++)
            w->sec[s % n] = 0;
    w->last_s = sec;
    uint64_t add = total > w->seen ? total - w->seen : 0;
    w->seen = total;
    uint32_t *b = &w->sec[((sec % n) + n) % n];
    *b = add > (uint64_t)(UINT32_MAX - *b) ? UINT32_MAX : *b + (uint32_t)add;
    uint64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        k += w->sec[i];
    return k > INT32_MAX ? INT32_MAX : (int)k;
}
