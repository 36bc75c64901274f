#define _GNU_SOURCE
#include "api.h"

#include "testutil.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

const char *uniq(void)
{
    static char buf[16];
    static unsigned n;
    snprintf(buf, sizeof buf, "%x%x", (unsigned)getpid() & 0xffff, ++n);
    return buf;
}

static int env_line(const char *file, const char *key, char *out, size_t size)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    char line[1024];
    size_t kl = strlen(key);
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == '=') {
            line[strcspn(line, "\n")] = '\0';
            snprintf(out, size, "%s", line + kl + 1);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

void stack_start(struct stack *s, const char *tag, const char *options)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/llmops-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    ck_assert_ptr_nonnull(mkdtemp(s->dir));
    int rc = tu_sh("%s/tests/harness/stack start %s %s >%s.start.log 2>&1", LLMOPS_SOURCE_DIR,
                   s->dir, options ? options : "", s->dir);
    if (rc != 0) {
        tu_sh("cat %s.start.log >&2", s->dir);
        ck_abort_msg("stack start failed (%d)", rc);
    }
    char env[300];
    snprintf(env, sizeof env, "%s/env", s->dir);
    ck_assert_int_eq(env_line(env, "LLMOPS_URL", s->url, sizeof s->url), 0);
    ck_assert_int_eq(env_line(env, "LLMOPS_ADMIN_TOKEN", s->admin, sizeof s->admin), 0);
    ck_assert_int_eq(env_line(env, "LLMOPS_OPERATOR_TOKEN", s->operator_, sizeof s->operator_), 0);
    ck_assert_int_eq(env_line(env, "LLMOPS_READER_TOKEN", s->reader, sizeof s->reader), 0);
    ck_assert_int_eq(env_line(env, "LLMOPS_CONFIG", s->conf, sizeof s->conf), 0);
}

void stack_stop(struct stack *s)
{
    if (!s->dir[0])
        return;
    const char *keep = getenv("LLMOPS_KEEP_STATE");
    tu_sh("%s/tests/harness/stack stop %s %s >/dev/null 2>&1", LLMOPS_SOURCE_DIR, s->dir,
          keep && *keep == '1' ? "" : "--clean");
    if (!(keep && *keep == '1'))
        tu_sh("rm -f %s.start.log", s->dir);
    s->dir[0] = '\0';
}

struct buf {
    char *p;
    size_t n;
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    char *p = realloc(b->p, b->n + size * n + 1);
    if (!p)
        return 0;
    memcpy(p + b->n, data, size * n);
    b->p = p;
    b->n += size * n;
    b->p[b->n] = '\0';
    return size * n;
}

char *http_text(const char *method, const char *url, const char *token, const char *header,
                const char *body, int *status, char *ctype, size_t ctsize)
{
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    char auth[300];
    struct curl_slist *h = NULL;
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    if (body)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (header)
        h = curl_slist_append(h, header);
    h = curl_slist_append(h, "Expect:");
    struct buf b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
        /* Content-Length: 0 (lighttpd answers 411 to a POST without one) */
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ctype)
        snprintf(ctype, ctsize, "%s", ct ? ct : "");
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        ck_abort_msg("%s %s: %s", method, url, curl_easy_strerror(rc));
    *status = (int)code;
    return b.p ? b.p : strdup("");
}

static json_t *call(const struct stack *s, int *status, const char *token, const char *method,
                    const char *path, const char *body)
{
    char url[4096];
    snprintf(url, sizeof url, "%s%s", s->url, path);
    char *text = http_text(method, url, token, NULL, body, status, NULL, 0);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    return j ? j : json_object();
}

json_t *api(const struct stack *s, int *status, const char *token, const char *method,
            const char *path, const char *body_fmt, ...)
{
    char *body = NULL;
    if (body_fmt) {
        va_list ap;
        va_start(ap, body_fmt);
        ck_assert_int_ge(vasprintf(&body, body_fmt, ap), 0);
        va_end(ap);
    }
    json_t *j = call(s, status, token, method, path, body);
    free(body);
    return j;
}

json_t *api_json(const struct stack *s, int *status, const char *token, const char *method,
                 const char *path, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    ck_assert_ptr_nonnull(text);
    json_t *j = call(s, status, token, method, path, text);
    free(text);
    return j;
}

json_t *jpath(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save)) {
        if (json_is_array(j))
            j = json_array_get(j, (size_t)atoi(k));
        else
            j = json_object_get(j, k);
    }
    return j;
}

const char *jstr(json_t *j, const char *path)
{
    return json_string_value(jpath(j, path));
}

int ready_port(const char *path, const char *what)
{
    double end = now_s() + 20;
    for (;;) {
        FILE *f = fopen(path, "r");
        if (f) {
            int port, ok = fscanf(f, "%d", &port) == 1;
            fclose(f);
            if (ok)
                return port;
        }
        ck_assert_msg(now_s() < end, "%s did not start", what);
        sleep_ms(50);
    }
}
