/* The crash handler (node/crash.h) on real faults, in a forked child: a
 * bad pointer and a stack overflow are reported (signal, fault address,
 * backtrace) on stderr and the child still dies of SIGSEGV. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node/crash.h"

/* not constants the compiler can see through */
static volatile uintptr_t g_bad_addr = 0x10;
static volatile int g_forever = 1;

static int deep(int n)
{
    volatile char pad[4096];
    pad[0] = (char)n;
    return g_forever ? deep(n + 1) + pad[0] : pad[0];
}

/* Runs what in a child with stderr to a pipe; returns its wait status and
 * what it wrote. */
static int run_child(int what, char *out, size_t cap)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(fd[1], STDERR_FILENO);
        close(fd[0]);
        if (ms_crash_install() != 0)
            _exit(77);
        if (what == 0)
            *(volatile int *)g_bad_addr = 1;
        else
            (void)deep(0);
        _exit(0);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fd[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void check(int what, const char *want)
{
    static char out[65536];
    int st = run_child(what, out, sizeof out);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
        skip(); /* sanitizer build: no handler of ours */
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSEGV);
    if (!strstr(out, want))
        fail_msg("no '%s' in:\n%s", want, out);
    const char *bt = strstr(out, "backtrace:\n");
    assert_non_null(bt);
    int frames = 0;
    for (const char *p = bt; (p = strstr(p, "[0x")); p++)
        frames++;
    assert_true(frames >= 2);
}

static void test_bad_pointer(void **st)
{
    (void)st;
    check(0, "mediaserver: fatal signal SIGSEGV (11) at address 0x10,");
}

static void test_stack_overflow(void **st)
{
    (void)st;
    check(1, "mediaserver: fatal signal SIGSEGV (11) at address 0x");
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_bad_pointer),
        cmocka_unit_test(test_stack_overflow),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
