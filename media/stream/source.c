#include "media/stream/source.h"

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
