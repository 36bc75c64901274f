#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *program = "llm-ops";
static int cached_pid; /* getpid() is a system call in glibc 2.36: once per process */

static int my_pid(void)
{
    if (!cached_pid)
        cached_pid = (int)getpid();
    return cached_pid;
}

void log_forked(void)
{
    cached_pid = 0;
}
static enum log_level threshold = LOG_LVL_INFO;
static const char *const level_names[] = {"debug", "info", "warning", "error"};

void log_set_program(const char *name)
{
    program = name;
}

void log_set_level(enum log_level level)
{
    threshold = level;
}

int log_level_from_string(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* One event, one line: control characters (libpq's messages carry newlines and tabs) become
 * spaces, trailing blanks go. */
static void write_line(char *buf, int n, size_t cap)
{
    if (n < 0)
        return;
    if ((size_t)n >= cap - 1)
        n = (int)cap - 2;
    for (int i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20)
            buf[i] = ' ';
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
    (void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < threshold)
        return;
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "%s[%d]: %s: ", program, my_pid(), level_names[level]);
    if (n < 0 || (size_t)n >= sizeof buf)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    write_line(buf, n + m, sizeof buf);
}

void log_access(const char *method, const char *route, int status, long long duration_us,
                const char *request_id)
{
    char buf[1024];
    /* integers only: %f costs more than the rest of the line */
    int n = snprintf(buf, sizeof buf,
                     "%s[%d]: access: method=%s route=%s status=%d duration_ms=%lld.%03lld "
                     "request_id=%s",
                     program, my_pid(), method, route, status, duration_us / 1000,
                     duration_us % 1000, request_id);
    write_line(buf, n, sizeof buf);
}
