/* The daemon's crash handler (docs/security.md "Crashes"): on SIGSEGV,
 * SIGBUS, SIGFPE, SIGILL and SIGABRT it writes one line naming the signal
 * and the fault address, then a backtrace, to stderr, and dies of the same
 * signal (default action restored and the signal raised again), so the exit
 * status and a core dump stay those of the crash.
 *
 * The handler runs on an alternate signal stack (a stack overflow of the
 * main thread is reported too) and is async-signal-safe: write(2),
 * backtrace_symbols_fd(3), sigaction(2), raise(3), no malloc, no stdio.
 * Sanitizer builds (ASan, TSan, MSan) keep the sanitizer's own handler:
 * ms_crash_install() does nothing there. */
#ifndef MS_NODE_CRASH_H
#define MS_NODE_CRASH_H

/* Installs the handler for the process. Call once, from the main thread,
 * before other threads start (the alternate stack is the main thread's).
 * Returns 0, 1 when skipped (sanitizer build), or a negative errno. */
int ms_crash_install(void);

#endif
