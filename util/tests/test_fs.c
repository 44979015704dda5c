/* util/fs.h: mkdir -p. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

static mode_t mode_of(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    return st.st_mode & 0777;
}

static void test_mkdir_p(void **state)
{
    (void)state;
    char root[] = "/tmp/ms-test-fs-XXXXXX";
    assert_non_null(mkdtemp(root));
    mode_t um = umask(022);
    char p[256], q[256];
    snprintf(p, sizeof p, "%s/a/b/c", root);
    assert_int_equal(ms_mkdir_p(p, 0, 0750), 0);
    assert_int_equal(mode_of(p), 0750);
    snprintf(q, sizeof q, "%s/a", root);
    assert_int_equal(mode_of(q), 0750);
    assert_int_equal(ms_mkdir_p(p, 0, 0750), 0); /* exists: fine */
    snprintf(q, sizeof q, "%s/a/b/c/", root);    /* trailing slash */
    assert_int_equal(ms_mkdir_p(q, 0, 0750), 0);
    /* skip: the parents inside the first bytes are not tried */
    snprintf(q, sizeof q, "%s/a/x/y", root);
    assert_int_equal(ms_mkdir_p(q, strlen(root) + 2, 0755), 0);
    assert_int_equal(mode_of(q), 0755);
    /* a file in the way */
    snprintf(q, sizeof q, "%s/f", root);
    int fd = open(q, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ms_mkdir_p(q, 0, 0755), -ENOTDIR);
    snprintf(p, sizeof p, "%s/f/g", root);
    assert_int_equal(ms_mkdir_p(p, 0, 0755), -ENOTDIR);
    assert_int_equal(ms_mkdir_p("", 0, 0755), -ENOENT);
    char *longp = malloc(5000);
    assert_non_null(longp);
    memset(longp, 'a', 4999);
    longp[0] = '/';
    longp[4999] = '\0';
    assert_int_equal(ms_mkdir_p(longp, 0, 0755), -ENAMETOOLONG);
    free(longp);
    umask(um);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mkdir_p),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
