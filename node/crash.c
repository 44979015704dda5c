/* Crash handler; see node/crash.h. Formatting is done by hand into a stack
 * buffer: snprintf is not async-signal-safe (POSIX.1-2017 2.4.3). */
#include "node/crash.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MS_CRASH_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define MS_CRASH_SANITIZER 1
#endif
#endif

#define ALT_STACK_SIZE (64 * 1024)
#define MAX_FRAMES     64

static const int SIGNALS[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

#ifndef MS_CRASH_SANITIZER
static char g_altstack[ALT_STACK_SIZE];

static const char *sig_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGABRT:
        return "SIGABRT";
    default:
        return "signal";
    }
}

/* Appends s to b (bounded). */
static size_t put_str(char *b, size_t n, size_t cap, const char *s)
{
    while (*s && n + 1 < cap)
        b[n++] = *s++;
    return n;
}

static size_t put_dec(char *b, size_t n, size_t cap, uintmax_t v)
{
    char t[24];
    int k = 0;
    do {
        t[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k && n + 1 < cap)
        b[n++] = t[--k];
    return n;
}

static size_t put_hex(char *b, size_t n, size_t cap, uintptr_t v)
{
    static const char hx[] = "0123456789abcdef";
    char t[2 * sizeof v];
    int k = 0;
    do {
        t[k++] = hx[v & 15];
        v >>= 4;
    } while (v);
    n = put_str(b, n, cap, "0x");
    while (k && n + 1 < cap)
        b[n++] = t[--k];
    return n;
}

static void write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int saved = errno;
    char line[256];
    size_t n = put_str(line, 0, sizeof line, "mediaserver: fatal signal ");
    n = put_str(line, n, sizeof line, sig_name(sig));
    n = put_str(line, n, sizeof line, " (");
    n = put_dec(line, n, sizeof line, (uintmax_t)sig);
    if (si && si->si_code <= 0) { /* SI_USER, SI_QUEUE, SI_TKILL: sent, not a fault */
        n = put_str(line, n, sizeof line, ") sent by pid ");
        n = put_dec(line, n, sizeof line, (uintmax_t)si->si_pid);
        n = put_str(line, n, sizeof line, " (no fault address)");
    } else {
        n = put_str(line, n, sizeof line, ") at address ");
        n = put_hex(line, n, sizeof line, si ? (uintptr_t)si->si_addr : 0);
    }
    n = put_str(line, n, sizeof line, ", pid ");
    n = put_dec(line, n, sizeof line, (uintmax_t)getpid());
    n = put_str(line, n, sizeof line, "; backtrace:\n");
    write_all(line, n);
    void *frames[MAX_FRAMES];
    int nf = backtrace(frames, MAX_FRAMES);
    backtrace_symbols_fd(frames, nf, STDERR_FILENO);
    /* die of the same signal: default action, then raise it again (it is
     * blocked while this handler runs, so it lands when the handler
     * returns; a fault would also recur on the faulting instruction) */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    errno = saved;
    raise(sig);
}
#endif

int ms_crash_install(void)
{
#ifdef MS_CRASH_SANITIZER
    (void)SIGNALS;
    return 1;
#else
    /* backtrace() loads libgcc on its first call (which allocates): do it
     * now, not in the handler */
    void *warm[2];
    (void)backtrace(warm, 2);
    stack_t ss = {.ss_sp = g_altstack, .ss_size = sizeof g_altstack, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0)
        return -errno;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof SIGNALS / sizeof *SIGNALS; i++)
        sigaddset(&sa.sa_mask, SIGNALS[i]);
    for (size_t i = 0; i < sizeof SIGNALS / sizeof *SIGNALS; i++)
        if (sigaction(SIGNALS[i], &sa, NULL) != 0)
            return -errno;
    return 0;
#endif
}
