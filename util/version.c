/* Build identity, linked into the node (kept out of the pure library so that
 * fuzzers and unit tests do not rebuild on every version change). */
#include "util/version.h"

const char *ms_version(void)
{
    return MS_VERSION;
}
