#include "testutil.h"

#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void check_failure(const char *message)
{
    ck_abort_msg("%s", message);
}

static void (*fail_hook)(const char *) = check_failure;

void tu_on_failure(void (*fn)(const char *message))
{
    fail_hook = fn;
}

/* Only a failure calls into Check: its assertions cannot run outside a test. */
#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            char m_[512];                                                                          \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                                  \
            fail_hook(m_);                                                                         \
        }                                                                                          \
    } while (0)

int tu_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

char *tu_capture(int *status, const char *fmt, ...)
{
    static char out[4096];
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    REQUIRE(p, "cannot run %.200s", cmd);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

/* Clusters still running at exit (a setup that aborted half-way never reaches its
 * teardown): stopped by an atexit handler so no test leaves a postgres behind. */
static struct tu_pg *running[8];
static pid_t owner; /* forked test children inherit the handler: only the starter stops */

static void stop_leftovers(void)
{
    if (getpid() != owner)
        return;
    for (int i = 0; i < 8; i++)
        if (running[i])
            tu_pg_stop(running[i]);
}

int tu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0, "socket failed");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
             getsockname(fd, (struct sockaddr *)&a, &len) == 0;
    close(fd);
    REQUIRE(ok, "cannot find a free port");
    return ntohs(a.sin_port);
}

void tu_pg_start(struct tu_pg *pg, const char *tag)
{
    static int registered;
    if (!registered) {
        owner = getpid();
        atexit(stop_leftovers);
        registered = 1;
    }
    for (int i = 0; i < 8; i++) {
        if (!running[i]) {
            running[i] = pg;
            break;
        }
    }
    snprintf(pg->dir, sizeof pg->dir, "/tmp/llmops-%s-XXXXXX", tag);
    REQUIRE(mkdtemp(pg->dir), "mkdtemp %s failed", pg->dir);
    pg->port = tu_free_port();
    if (tu_sh("%s/tests/db/pg-private start %s %d", LLMOPS_SOURCE_DIR, pg->dir, pg->port) != 0) {
        tu_sh("cat %s/log/*.log >&2", pg->dir);
        REQUIRE(0, "PostgreSQL did not start");
    }
}

void tu_pg_stop(struct tu_pg *pg)
{
    for (int i = 0; i < 8; i++)
        if (running[i] == pg)
            running[i] = NULL;
    tu_sh("%s/tests/db/pg-private stop %s; rm -rf %s", LLMOPS_SOURCE_DIR, pg->dir, pg->dir);
}

void tu_pg_createdb(const struct tu_pg *pg, const char *name)
{
    REQUIRE(tu_sh("/usr/lib/postgresql/15/bin/createdb -h %s/sock -p %d -U postgres %s", pg->dir,
                  pg->port, name) == 0,
            "createdb %s failed", name);
}

void tu_pg_conninfo(const struct tu_pg *pg, const char *db, char *out, int size)
{
    snprintf(out, (size_t)size, "host=%s/sock port=%d user=postgres dbname=%s", pg->dir, pg->port,
             db);
}
