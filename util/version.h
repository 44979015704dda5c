#ifndef MS_UTIL_VERSION_H
#define MS_UTIL_VERSION_H
const char *ms_version(void); /* "0.1.0" */
#endif
