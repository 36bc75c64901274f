#include "log.h"

#include "util.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *program = "llm-ops";
static int cached_pid; /* getpid() is a system call in glibc 2.36: once per process */

static int my_pid(void)
{
    if (!cached_pid)
        cached_pid = (int)getpid();
    return cached_pid;
}

static size_t alen;

void log_forked(void)
{
    cached_pid = 0;
    alen = 0; /* the parent's kept access lines are the parent's to write */
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

/* A whole line, ending in a newline: an access line may be kept (emit_access); an event
 * first writes the access lines kept before it. */
static void emit_access(const char *line, size_t n);

static void emit(const char *line, size_t n, int access)
{
    if (access) {
        emit_access(line, n);
        return;
    }
    log_flush();
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

/* One event, one line: control characters (libpq's messages carry newlines and tabs) become
 * spaces, trailing blanks go. */
static void write_line(char *buf, int n, size_t cap, int access)
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
    emit(buf, (size_t)n, access);
}

/* Access lines kept for one write(2) ([server] access_log_flush_ms; standalone workers only,
 * see log_access_buffer in log.h). */
static char abuf[16384];
static int64_t afirst_ms; /* when the oldest kept line was made */
static int64_t aflush_ms; /* 0: every line is written at once */

void log_flush(void)
{
    size_t off = 0;
    while (off < alen) {
        ssize_t w = write(STDERR_FILENO, abuf + off, alen - off);
        if (w <= 0)
            break; /* as with one line: a log that cannot be written loses it */
        off += (size_t)w;
    }
    alen = 0;
}

void log_access_buffer(int flush_ms)
{
    log_flush();
    aflush_ms = flush_ms > 0 ? flush_ms : 0;
}

/* An access line, ending in a newline: kept, or written at once. */
static void emit_access(const char *line, size_t n)
{
    if (!aflush_ms || n > sizeof abuf) {
        log_flush();
        ssize_t w = write(STDERR_FILENO, line, n);
        (void)w;
        return;
    }
    if (alen + n > sizeof abuf)
        log_flush();
    int64_t now = util_now_ms();
    if (!alen)
        afirst_ms = now;
    memcpy(abuf + alen, line, n);
    alen += n;
    if (now - afirst_ms >= aflush_ms)
        log_flush();
}

static int json_mode;
static char current_request_buf[130];
static const char *current_request;
/* The instances the current request called (JSON access lines name them). */
static char called[4][64];
static int ncalled;

void log_note_instance(const char *instance)
{
    for (int i = 0; i < ncalled; i++)
        if (strcmp(called[i], instance) == 0)
            return;
    if (ncalled < 4)
        snprintf(called[ncalled++], sizeof called[0], "%s", instance);
}

void log_set_json(int on)
{
    json_mode = on;
}

void log_set_request(const char *request_id)
{
    ncalled = 0;
    if (!request_id) {
        current_request = NULL;
        return;
    }
    snprintf(current_request_buf, sizeof current_request_buf, "%s", request_id);
    current_request = current_request_buf;
}

static void iso_now(char out[32])
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

/* One JSON object per line (jansson writes it; invalid UTF-8 in a message is replaced). */
static void write_json(json_t *o, int access)
{
    char ts[32];
    iso_now(ts);
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "program", json_string(program));
    json_object_set_new(o, "pid", json_integer(my_pid()));
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!line)
        return;
    size_t n = strlen(line);
    line[n] = '\n';
    emit(line, n + 1, access);
    free(line);
}

static json_t *text_value(const char *s)
{
    json_t *v = json_string(s);
    if (!v) { /* not UTF-8: keep the ASCII */
        char buf[2048];
        size_t i = 0;
        for (; s[i] && i < sizeof buf - 1; i++)
            buf[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
        buf[i] = '\0';
        v = json_string(buf);
    }
    return v;
}

static void json_event(enum log_level level, const char *instance, const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "level", json_string(level_names[level]));
    json_object_set_new(o, "msg", text_value(msg));
    if (current_request)
        json_object_set_new(o, "request_id", json_string(current_request));
    if (instance)
        json_object_set_new(o, "instance", text_value(instance));
    write_json(o, 0);
}

void log_instance(enum log_level level, const char *instance, const char *msg)
{
    if (level < threshold)
        return;
    if (json_mode)
        json_event(level, instance, msg);
    else
        log_msg(level, "instance %s: %s", instance, msg);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (json_mode && level >= threshold) {
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        json_event(level, NULL, msg);
        return;
    }
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
    write_line(buf, n + m, sizeof buf, 0);
}

void log_access(const char *method, const char *route, int status, long long duration_us,
                const char *request_id)
{
    if (json_mode) {
        char ms[32];
        snprintf(ms, sizeof ms, "%lld.%03lld", duration_us / 1000, duration_us % 1000);
        json_t *o = json_pack("{s:s,s:o,s:o,s:i,s:o,s:s}", "type", "access", "method",
                              text_value(method), "route", text_value(route), "status", status,
                              "duration_ms", json_real(atof(ms)), "request_id", request_id);
        if (o && ncalled) {
            json_t *a = json_array();
            for (int i = 0; i < ncalled; i++)
                json_array_append_new(a, text_value(called[i]));
            json_object_set_new(o, "instances", a);
        }
        if (o)
            write_json(o, 1);
        return;
    }
    /* "PROGRAM[PID]: access: method=M route=R status=S duration_ms=D.DDD request_id=ID",
     * put together by hand: snprintf was a good part of the hot path's own work */
    char buf[1024];
    struct util_line l = {buf, 0, sizeof buf - 2, 0};
    util_line_str(&l, program);
    util_line_str(&l, "[");
    util_line_uint(&l, (unsigned long long)my_pid(), 0);
    util_line_str(&l, "]: access: method=");
    util_line_str(&l, method);
    util_line_str(&l, " route=");
    util_line_str(&l, route);
    util_line_str(&l, " status=");
    util_line_uint(&l, status < 0 ? 0 : (unsigned long long)status, 0);
    util_line_str(&l, " duration_ms=");
    unsigned long long us = duration_us < 0 ? 0 : (unsigned long long)duration_us;
    util_line_uint(&l, us / 1000, 0);
    util_line_str(&l, ".");
    util_line_uint(&l, us % 1000, 3);
    util_line_str(&l, " request_id=");
    util_line_str(&l, request_id);
    write_line(buf, (int)l.n, sizeof buf, 1);
}
