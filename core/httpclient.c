/* httpclient — see httpclient.h. */
#define _GNU_SOURCE /* memmem */
#include "httpclient.h"

#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The sizes of the ABI 1.0 structs: a plugin built later may pass bigger ones (we use the
 * part we know), never smaller ones. */
#define REQ_V1_SIZE (offsetof(struct llmops_http_request, timeout_ms) + sizeof(long))
#define RESP_V1_SIZE (offsetof(struct llmops_http_response, attempts) + sizeof(int))

#define REQ_V11_SIZE (offsetof(struct llmops_http_request, progress_ctx) + sizeof(void *))
#define RESP_V11_SIZE (offsetof(struct llmops_http_response, file_bytes) + sizeof(int64_t))

#define MAX_SECRETS 16
#define MAX_ENDPOINTS 8
#define MAX_ALLOWED 32
#define MAX_REDIRECTS 20
#define MAX_KEPT_HEADERS ((size_t)64 << 10) /* the kept response headers, all together */
#define MIN_SECRET_LEN 3 /* shorter strings are not scrubbed: they would mangle messages */

struct httpc {
    CURL *curl;
    CURL *inherited; /* the parent's handle after fork(): kept, never used, never cleaned up */
    pid_t pid;       /* the process that created curl: a forked child must not share its sockets */
    char *base;      /* base URL, trailing '/' removed */
    char *display;   /* scheme://host[:port][/prefix]: no userinfo; safe to show */
    char *auth;      /* the whole auth header line, or NULL */
    size_t auth_name_len;
    char *secrets[MAX_SECRETS];
    int nsecrets;
    /* 1.1: named endpoints (eps[0] is "url": base/display above), allowed hosts, auth file */
    struct endpoint {
        char *name, *base, *display, *origin, *host;
    } eps[MAX_ENDPOINTS];
    int neps;
    char *allowed[MAX_ALLOWED];
    int nallowed;
    char *auth_file, *auth_scheme;
    struct stat auth_st;
    int auth_warned;       /* the auth file's last problem was logged: not again each call */
    int auth_secrets_from; /* secrets[auth_secrets_from..] come from the auth header */
    char *ca_file;
    char *user_agent;
    long connect_ms, total_ms, base_ms, max_ms;
    int retries;
    int verify_tls;
    size_t max_body;
    double (*jitter)(void);
    uint64_t rng;

    /* per call */
    char *buf;
    size_t len, cap;
    int too_large;
    const char *rd_body;            /* the body of an unsafe request, fed through on_read */
    const char *const *req_headers; /* this call's headers: credentials in them are scrubbed */
    size_t rd_len, rd_off;
    char ctype[128];
    char retry_after[64];
    char errbuf[CURL_ERROR_SIZE];
    /* per call, 1.1 */
    int rd_fd;     /* body_file, or -1 */
    int rd_rewind; /* the body may be sent again (safe request): on_seek allows it */
    int wr_fd;     /* response_file, or -1 */
    int to_file;   /* this answer's body goes to wr_fd (decided at its first byte) */
    int decided;
    int wr_errno; /* writing wr_fd failed */
    int64_t file_bytes;
    const char *const *want; /* response headers to keep besides the default ones */
    char *hdrs;              /* kept headers: "name\0value\0" pairs */
    size_t hlen, hcap;
    int (*progress)(void *, int64_t, int64_t, int64_t, int64_t);
    void *progress_ctx;
    int aborted;
};

/* ------------------------------------------------------------------ small helpers */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int has_line_break(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

static void add_secret(struct httpc *c, const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n < MIN_SECRET_LEN || c->nsecrets >= MAX_SECRETS)
        return;
    char *d = strndup(s, n);
    if (d)
        c->secrets[c->nsecrets++] = d;
}

/* Replaces every occurrence of each secret in msg by "***" (never longer than a secret). */
static void scrub_n(char *msg, const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n < MIN_SECRET_LEN)
        return;
    char *p = msg;
    while ((p = memmem(p, strlen(p), s, n)) != NULL) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + n, strlen(p + n) + 1);
        p += 3;
    }
}

/* A request header whose value is a credential: Authorization, Proxy-Authorization, Cookie,
 * or a name holding "token", "key", "secret" or "password" (X-Api-Key, X-Auth-Token, ...). */
static int credential_header(const char *h, size_t name_len)
{
    static const char *const exact[] = {"authorization", "proxy-authorization", "cookie"};
    static const char *const parts[] = {"token", "key", "secret", "password", "auth"};
    char name[64];
    if (name_len >= sizeof name)
        return 1; /* odd and long: treat as secret */
    for (size_t i = 0; i < name_len; i++)
        name[i] = (char)tolower((unsigned char)h[i]);
    name[name_len] = '\0';
    for (size_t i = 0; i < UTIL_ARRAY_LEN(exact); i++)
        if (strcmp(name, exact[i]) == 0)
            return 1;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(parts); i++)
        if (strstr(name, parts[i]))
            return 1;
    return 0;
}

/* Replaces every secret in msg by "***": the auth header and URL password this client was
 * made with, and the credentials among this call's own headers. */
static void scrub(const struct httpc *c, char *msg)
{
    for (int i = 0; i < c->nsecrets; i++)
        scrub_n(msg, c->secrets[i], strlen(c->secrets[i]));
    for (const char *const *hp = c->req_headers; hp && *hp; hp++) {
        const char *colon = strchr(*hp, ':');
        if (!colon || !credential_header(*hp, (size_t)(colon - *hp)))
            continue;
        const char *v = colon + 1;
        scrub_n(msg, v, strlen(v));
        while (*v == ' ' || *v == '\t')
            v++;
        const char *sp = strchr(v, ' '); /* "Bearer TOKEN": the token alone too */
        if (sp)
            scrub_n(msg, sp + 1, strlen(sp + 1));
    }
}

static uint64_t rng_next(struct httpc *c)
{
    /* xorshift64*: enough for jitter, which only has to be spread, not secret */
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static long backoff_ms(struct httpc *c, int retry)
{
    long cap = c->base_ms;
    for (int i = 0; i < retry && cap < c->max_ms; i++)
        cap *= 2;
    if (cap > c->max_ms)
        cap = c->max_ms;
    double f = c->jitter ? c->jitter() : (double)(rng_next(c) >> 11) / (double)(1ULL << 53);
    if (!(f >= 0.0))
        f = 0.0;
    if (f > 1.0)
        f = 1.0;
    return (long)(f * (double)cap + 0.5);
}

static void sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------ create / free */

/* The parts of an http(s) URL that are safe to show and compare: shown =
 * scheme://host[:port][/path] (no userinfo, query or fragment; trailing '/' removed when
 * trim), origin = scheme://host:port (default port filled in), host (lower case). A password
 * in the URL becomes a secret of c when c is not NULL. Refuses a query or fragment when
 * no_query. Returns 0 or -1 (not http(s), unparsable, out of memory). */
struct url_parts {
    char shown[512], origin[300], host[256];
    int https;
};

static int url_split(struct httpc *c, const char *url, int trim, int no_query,
                     struct url_parts *out)
{
    CURLU *u = curl_url();
    if (!u)
        return -1;
    int rc = -1;
    char *scheme = NULL, *host = NULL, *port = NULL, *dport = NULL, *path = NULL, *query = NULL,
         *frag = NULL;
    char *user = NULL, *password = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        goto out;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || strlen(host) >= 256)
        goto out;
    /* A query or fragment in a base would end up in the middle of every URL. */
    if (no_query && (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
                     curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK))
        goto out;
    (void)curl_url_get(u, CURLUPART_PORT, &port, CURLU_NO_DEFAULT_PORT);
    if (curl_url_get(u, CURLUPART_PORT, &dport, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    (void)curl_url_get(u, CURLUPART_PATH, &path, 0);
    if (c && curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
        add_secret(c, password, strlen(password));
        if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
            char up[512];
            if (snprintf(up, sizeof up, "%s:%s", user, password) < (int)sizeof up)
                add_secret(c, up, strlen(up));
        }
    }
    size_t plen = path ? strlen(path) : 0;
    while (trim && plen > 0 && path[plen - 1] == '/')
        plen--;
    for (char *h = host; *h; h++)
        *h = (char)tolower((unsigned char)*h);
    out->https = strcmp(scheme, "https") == 0;
    snprintf(out->host, sizeof out->host, "%s", host);
    snprintf(out->origin, sizeof out->origin, "%s://%s:%s", scheme, host, dport);
    snprintf(out->shown, sizeof out->shown, "%s://%s%s%s%.*s", scheme, host, port ? ":" : "",
             port ? port : "", (int)plen, path ? path : "");
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(dport);
    curl_free(path);
    curl_free(query);
    curl_free(frag);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    return rc;
}

/* One named base URL: eps[c->neps]. */
static int add_endpoint(struct httpc *c, const char *name, const char *url)
{
    struct url_parts up;
    if (c->neps >= MAX_ENDPOINTS ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        url_split(c, url, 1, 1, &up) != 0)
        return -1;
    struct endpoint *e = &c->eps[c->neps];
    e->name = strdup(name);
    e->base = strdup(url);
    e->display = strdup(up.shown);
    e->origin = strdup(up.origin);
    e->host = strdup(up.host);
    c->neps++; /* freed by httpc_free even when a strdup failed */
    if (!e->name || !e->base || !e->display || !e->origin || !e->host)
        return -1;
    size_t bl = strlen(e->base);
    while (bl > 0 && e->base[bl - 1] == '/')
        e->base[--bl] = '\0';
    return 0;
}

/* "a.example.com, *.cdn.example.net 10.0.0.7" → allowed[] */
static int add_allowed(struct httpc *c, const char *list)
{
    const char *p = list;
    while (*p) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        if (n == 0)
            break;
        if (c->nallowed >= MAX_ALLOWED || n > 255)
            return -1;
        char *h = strndup(p, n);
        if (!h)
            return -1;
        for (char *q = h; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        c->allowed[c->nallowed++] = h;
        p += n;
    }
    return 0;
}

/* May absolute URLs and redirects go to host? The endpoints' hosts and allowed_hosts. */
static int host_allowed(const struct httpc *c, const char *host)
{
    for (int i = 0; i < c->neps; i++)
        if (strcmp(c->eps[i].host, host) == 0)
            return 1;
    size_t hl = strlen(host);
    for (int i = 0; i < c->nallowed; i++) {
        const char *a = c->allowed[i];
        if (strcmp(a, host) == 0)
            return 1;
        size_t al = strlen(a);
        /* "*.example.com" matches "x.example.com", not "example.com" or "xexample.com" */
        if (al > 2 && a[0] == '*' && a[1] == '.' && hl > al - 1 &&
            strcmp(host + hl - (al - 1), a + 1) == 0)
            return 1;
    }
    return 0;
}

/* Does origin belong to an endpoint (the auth header may go there)? */
static int origin_trusted(const struct httpc *c, const char *origin)
{
    for (int i = 0; i < c->neps; i++)
        if (strcmp(c->eps[i].origin, origin) == 0)
            return 1;
    return 0;
}

/* Sets c->auth (and its secrets) from a header line; replaces an earlier one. */
static int set_auth(struct httpc *c, const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon || colon == line || has_line_break(line))
        return -1;
    char *a = strdup(line);
    if (!a)
        return -1;
    if (c->auth) {
        explicit_bzero(c->auth, strlen(c->auth));
        free(c->auth);
    }
    for (int i = c->auth_secrets_from; i < c->nsecrets; i++) {
        explicit_bzero(c->secrets[i], strlen(c->secrets[i]));
        free(c->secrets[i]);
    }
    c->nsecrets = c->auth_secrets_from;
    c->auth = a;
    c->auth_name_len = (size_t)(colon - line);
    const char *v = colon + 1;
    add_secret(c, line, strlen(line));
    add_secret(c, v, strlen(v));
    while (*v == ' ' || *v == '\t')
        v++;
    const char *sp = strchr(v, ' '); /* "Bearer TOKEN": the token alone too */
    if (sp)
        add_secret(c, sp + 1, strlen(sp + 1));
    return 0;
}

/* Reads the auth file again when it changed since the last read (a rotated Kubernetes
 * service-account token: kubelet swaps a symlink, so the inode changes; an editor or a
 * plain rewrite changes size or mtime). On a read error the previous header stays.
 * Returns 0, or -1 when no header could ever be read. */
static int auth_refresh(struct httpc *c)
{
    if (!c->auth_file)
        return 0;
    struct stat st;
    if (stat(c->auth_file, &st) != 0) {
        if (!c->auth_warned) /* once, not on every call while it lasts */
            log_warning("http client for %s: cannot stat the auth file %s: %s%s", c->display,
                        c->auth_file, strerror(errno),
                        c->auth ? " (keeping the previous one)" : "");
        c->auth_warned = 1;
        return c->auth ? 0 : -1;
    }
    c->auth_warned = 0;
    if (c->auth && st.st_ino == c->auth_st.st_ino && st.st_dev == c->auth_st.st_dev &&
        st.st_size == c->auth_st.st_size && st.st_mtim.tv_sec == c->auth_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == c->auth_st.st_mtim.tv_nsec &&
        st.st_ctim.tv_sec == c->auth_st.st_ctim.tv_sec &&
        st.st_ctim.tv_nsec == c->auth_st.st_ctim.tv_nsec)
        return 0;
    size_t len;
    char *content = util_read_file(c->auth_file, &len);
    if (!content || len > 8192) {
        log_warning("http client for %s: cannot read the auth file %s%s", c->display, c->auth_file,
                    c->auth ? " (keeping the previous one)" : "");
        free(content);
        if (c->auth)
            c->auth_st = st; /* not read again until it changes again */
        return c->auth ? 0 : -1;
    }
    while (len > 0 && (content[len - 1] == '\n' || content[len - 1] == '\r'))
        content[--len] = '\0';
    int basic = strcasecmp(c->auth_scheme, "Basic") == 0;
    size_t hsize = strlen(c->auth_scheme) + 4 * (len / 3 + 1) + 32;
    char *line = malloc(hsize);
    int rc = -1;
    if (line && !memchr(content, '\n', len) && !memchr(content, '\r', len) &&
        strlen(content) == len) {
        int n = snprintf(line, hsize, "Authorization: %s ", c->auth_scheme);
        if (basic)
            EVP_EncodeBlock((unsigned char *)line + n, (const unsigned char *)content, (int)len);
        else
            memcpy(line + n, content, len + 1);
        rc = set_auth(c, line);
        explicit_bzero(line, hsize);
    }
    if (rc == 0 || c->auth)
        c->auth_st = st; /* a bad file is not read again until it changes again */
    if (rc != 0)
        log_warning("http client for %s: the auth file %s does not hold one line%s", c->display,
                    c->auth_file, c->auth ? " (keeping the previous one)" : "");
    free(line);
    explicit_bzero(content, len);
    free(content);
    return c->auth ? 0 : -1;
}

struct httpc *httpc_new(const struct httpc_config *cfg)
{
    if (!cfg || !cfg->base_url) {
        log_error("http client: no base URL");
        return NULL;
    }
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) {
        log_error("http client: curl_global_init failed: %s", curl_easy_strerror(global_rc));
        return NULL;
    }
    if (has_line_break(cfg->auth_header) || has_line_break(cfg->user_agent)) {
        log_error("http client: the auth header or user agent holds a line break");
        return NULL;
    }
    if (cfg->max_retries < 0 || cfg->max_retries > 20 || cfg->connect_timeout_ms < 0 ||
        cfg->total_timeout_ms < 0 || cfg->backoff_base_ms < 0 || cfg->backoff_max_ms < 0) {
        log_error("http client: negative timeout or retries out of 0..20");
        return NULL;
    }
    struct httpc *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base = strdup(cfg->base_url);
    if (!c->base)
        goto fail;
    size_t bl = strlen(c->base);
    while (bl > 0 && c->base[bl - 1] == '/')
        c->base[--bl] = '\0';
    struct url_parts up;
    if ((strncmp(c->base, "http://", 7) != 0 && strncmp(c->base, "https://", 8) != 0) ||
        url_split(c, c->base, 1, 1, &up) != 0 || !(c->display = strdup(up.shown)) ||
        add_endpoint(c, "url", c->base) != 0) {
        /* Not echoed: the string may hold a password. */
        log_error("http client: the base URL is not a valid http:// or https:// URL without "
                  "query or fragment");
        goto fail;
    }
    for (int i = 0; i < cfg->nendpoints; i++) {
        const struct httpc_endpoint *e = &cfg->endpoints[i];
        int before = c->neps;
        if (e->name && e->url && add_endpoint(c, e->name, e->url) == 0)
            continue;
        if (c->neps > before)
            goto fail; /* it parsed: out of memory */
        /* Not fatal: the module may use the key for links only (a UI URL with a fragment);
         * it just cannot be an endpoint. */
        log_warning("http client for %s: %s is not an endpoint (not an http(s) URL without "
                    "query or fragment, or more than %d endpoints)",
                    c->display, e->name ? e->name : "(null)", MAX_ENDPOINTS - 1);
    }
    if (cfg->allowed_hosts && add_allowed(c, cfg->allowed_hosts) != 0) {
        log_error("http client for %s: allowed_hosts holds more than %d hosts or one over 255 "
                  "characters",
                  c->display, MAX_ALLOWED);
        goto fail;
    }
    c->auth_secrets_from = c->nsecrets;
    if (cfg->auth_file && *cfg->auth_file) {
        const char *scheme = cfg->auth_scheme && *cfg->auth_scheme ? cfg->auth_scheme : "Bearer";
        if (strspn(scheme, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") !=
            strlen(scheme)) {
            log_error("http client for %s: the auth scheme is not a token", c->display);
            goto fail;
        }
        c->auth_file = strdup(cfg->auth_file);
        c->auth_scheme = strdup(scheme);
        if (!c->auth_file || !c->auth_scheme)
            goto fail;
        if (auth_refresh(c) != 0) {
            log_error("http client for %s: cannot read the auth file %s", c->display,
                      cfg->auth_file);
            goto fail;
        }
    } else if (cfg->auth_header && *cfg->auth_header) {
        if (set_auth(c, cfg->auth_header) != 0) {
            log_error("http client for %s: the auth header is not 'Name: value'", c->display);
            goto fail;
        }
    }
    c->ca_file = dup_or_null(cfg->ca_file && *cfg->ca_file ? cfg->ca_file : NULL);
    c->user_agent = strdup(cfg->user_agent && *cfg->user_agent ? cfg->user_agent : "llm-ops");
    if ((cfg->ca_file && *cfg->ca_file && !c->ca_file) || !c->user_agent)
        goto fail;
    c->connect_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 2000;
    c->total_ms = cfg->total_timeout_ms > 0 ? cfg->total_timeout_ms : 10000;
    c->base_ms = cfg->backoff_base_ms > 0 ? cfg->backoff_base_ms : 100;
    c->max_ms = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : 2000;
    if (c->max_ms < c->base_ms)
        c->max_ms = c->base_ms;
    c->retries = cfg->max_retries;
    c->verify_tls = cfg->verify_tls ? 1 : 0;
    c->max_body = cfg->max_body_bytes ? cfg->max_body_bytes : HTTPC_MAX_BODY_DEFAULT;
    c->jitter = cfg->jitter;
    if (getrandom(&c->rng, sizeof c->rng, GRND_NONBLOCK) != (ssize_t)sizeof c->rng)
        c->rng = (uint64_t)util_now_us() ^ ((uint64_t)getpid() << 32);
    if (c->rng == 0)
        c->rng = 0x9E3779B97F4A7C15ULL;
    c->curl = curl_easy_init();
    if (!c->curl)
        goto fail;
    c->pid = getpid();
    if (!c->verify_tls)
        log_warning("http client for %s: TLS verification is OFF", c->display);
    return c;
fail:
    httpc_free(c);
    return NULL;
}

void httpc_free(struct httpc *c)
{
    if (!c)
        return;
    /* A handle inherited across fork() is left alone: closing it could shut down TLS
     * sessions that belong to the parent. */
    if (c->curl && c->pid == getpid())
        curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->display);
    if (c->auth) {
        memset(c->auth, 0, strlen(c->auth));
        free(c->auth);
    }
    for (int i = 0; i < c->nsecrets; i++) {
        memset(c->secrets[i], 0, strlen(c->secrets[i]));
        free(c->secrets[i]);
    }
    for (int i = 0; i < c->neps; i++) {
        free(c->eps[i].name);
        free(c->eps[i].base);
        free(c->eps[i].display);
        free(c->eps[i].origin);
        free(c->eps[i].host);
    }
    for (int i = 0; i < c->nallowed; i++)
        free(c->allowed[i]);
    free(c->auth_file);
    free(c->auth_scheme);
    free(c->ca_file);
    free(c->user_agent);
    free(c->buf);
    free(c->hdrs);
    free(c);
}

void httpc_response_free(struct llmops_http_response *resp)
{
    if (!resp)
        return;
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    if (resp->size >= RESP_V11_SIZE) {
        free(resp->headers);
        free(resp->url);
        resp->headers = NULL;
        resp->url = NULL;
    }
}

const char *httpc_response_header(const struct llmops_http_response *resp, const char *name)
{
    if (!resp || !name || resp->size < RESP_V11_SIZE || !resp->headers)
        return NULL;
    for (const char *p = resp->headers; *p;) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

/* ------------------------------------------------------------------ libcurl callbacks */

/* A 2xx answer's body goes to response_file, with no cap; other bodies to memory. */
static size_t to_file(struct httpc *c, const char *data, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(c->wr_fd, data + done, n - done, (off_t)(c->file_bytes + (int64_t)done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            c->wr_errno = w < 0 ? errno : ENOSPC;
            return 0;
        }
        done += (size_t)w;
    }
    c->file_bytes += (int64_t)n;
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct httpc *c = ud;
    size_t n = size * nmemb;
    if (!c->decided) {
        long st = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &st);
        c->to_file = c->wr_fd >= 0 && st >= 200 && st < 300;
        c->decided = 1;
    }
    if (c->to_file)
        return to_file(c, data, n);
    if (n > c->max_body - c->len) {
        c->too_large = 1;
        return 0; /* != n: libcurl stops with CURLE_WRITE_ERROR */
    }
    if (c->len + n + 1 > c->cap) {
        size_t want = c->cap ? c->cap * 2 : 16384;
        if (want < c->len + n + 1)
            want = c->len + n + 1;
        if (want > c->max_body + 1)
            want = c->max_body + 1;
        char *p = realloc(c->buf, want);
        if (!p)
            return 0;
        c->buf = p;
        c->cap = want;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    return n;
}

/* An unsafe request's body goes through a read callback instead of CURLOPT_POSTFIELDS for one
 * reason: libcurl 7.88 silently sends a request again on a fresh connection when a reused one
 * died before any answer byte came back (Curl_retry_request; CURLOPT_FORBID_RETRY_ON_REUSE
 * only arrived in 8.16). To do that it must rewind the body, and on_seek refuses once bytes
 * were handed out, so the transfer fails (CURLE_SEND_FAIL_REWIND) instead of repeating a POST
 * the tool may already have processed. */
static size_t on_read(char *dst, size_t size, size_t nitems, void *ud)
{
    struct httpc *c = ud;
    size_t n = size * nitems, left = c->rd_len - c->rd_off;
    if (n > left)
        n = left;
    if (c->rd_fd >= 0) { /* body_file: read in libcurl's pieces, never all of it */
        ssize_t r;
        do
            r = pread(c->rd_fd, dst, n, (off_t)c->rd_off);
        while (r < 0 && errno == EINTR);
        if (r < 0 || (r == 0 && n > 0))
            return CURL_READFUNC_ABORT; /* the file shrank or failed under us */
        n = (size_t)r;
    } else {
        memcpy(dst, c->rd_body + c->rd_off, n);
    }
    c->rd_off += n;
    return n;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
    struct httpc *c = ud;
    if (origin == SEEK_SET && offset == 0 && c->rd_off == 0)
        return CURL_SEEKFUNC_OK;
    if (c->rd_rewind && origin == SEEK_SET && offset >= 0 && (size_t)offset <= c->rd_len) {
        c->rd_off = (size_t)offset; /* a safe request may be sent again */
        return CURL_SEEKFUNC_OK;
    }
    return CURL_SEEKFUNC_FAIL;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct httpc *c = ud;
    if (c->progress && c->progress(c->progress_ctx, (int64_t)dlnow, (int64_t)dltotal,
                                   (int64_t)ulnow, (int64_t)ultotal) != 0) {
        c->aborted = 1;
        return 1;
    }
    return 0;
}

static int header_value(const char *line, size_t n, const char *name, char *out, size_t outsize)
{
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
        return 0;
    const char *v = line + k + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= outsize)
        len = outsize - 1;
    memcpy(out, v, len);
    out[len] = '\0';
    return 1;
}

static int keep_header(const struct httpc *c, const char *name, size_t n)
{
    static const char *const always[] = {
        "location", "link", "etag", "retry-after", "warning", "content-length", "last-modified"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(always); i++)
        if (strlen(always[i]) == n && strncasecmp(name, always[i], n) == 0)
            return 1;
    for (const char *const *w = c->want; w && *w; w++)
        if (strlen(*w) == n && strncasecmp(name, *w, n) == 0)
            return 1;
    return 0;
}

/* Appends "name\0value\0" (name lower case, value trimmed) to c->hdrs, within the cap. */
static void store_header(struct httpc *c, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    if (!colon || colon == line || !keep_header(c, line, (size_t)(colon - line)))
        return;
    size_t nl = (size_t)(colon - line);
    const char *v = colon + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v), need = c->hlen + nl + vl + 3; /* two NULs and the end's */
    /* A NUL in the value would end it early and make its rest a pair of its own: a forged
     * "location" after a harmless header (found by fuzz_http_headers). Such a line is
     * dropped. */
    if (need > MAX_KEPT_HEADERS || memchr(v, '\0', vl))
        return;
    if (need > c->hcap) {
        size_t cap = c->hcap ? c->hcap : 1024;
        while (cap < need)
            cap *= 2;
        char *p = realloc(c->hdrs, cap);
        if (!p)
            return;
        c->hdrs = p;
        c->hcap = cap;
    }
    for (size_t i = 0; i < nl; i++)
        c->hdrs[c->hlen++] = (char)tolower((unsigned char)line[i]);
    c->hdrs[c->hlen++] = '\0';
    memcpy(c->hdrs + c->hlen, v, vl);
    c->hlen += vl;
    c->hdrs[c->hlen++] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    struct httpc *c = ud;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* a new response (after a 1xx, say): forget the previous one's headers */
        c->ctype[0] = '\0';
        c->retry_after[0] = '\0';
        c->hlen = 0;
        c->decided = 0;
        return n;
    }
    store_header(c, line, n);
    if (!header_value(line, n, "Content-Type", c->ctype, sizeof c->ctype)) {
        header_value(line, n, "Retry-After", c->retry_after, sizeof c->retry_after);
    }
    return n;
}

int httpc_parse_headers(struct httpc *c, const char *data, size_t n, const char *const *want,
                        char **out, size_t *len)
{
    c->hlen = 0;
    c->want = want;
    size_t off = 0;
    while (off < n) {
        const char *nl = memchr(data + off, '\n', n - off);
        size_t l = nl ? (size_t)(nl - (data + off)) + 1 : n - off;
        (void)on_header((char *)(uintptr_t)(data + off), 1, l, c);
        off += l;
    }
    c->want = NULL;
    *out = malloc(c->hlen + 1);
    if (!*out)
        return -1;
    if (c->hlen)
        memcpy(*out, c->hdrs, c->hlen);
    (*out)[c->hlen] = '\0';
    *len = c->hlen;
    c->hlen = 0;
    return 0;
}

/* ------------------------------------------------------------------ one call */

static int method_idempotent(const char *m)
{
    static const char *const safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(safe); i++)
        if (strcmp(m, safe[i]) == 0)
            return 1;
    return 0;
}

static int valid_method(const char *m)
{
    if (!m || !*m || strlen(m) > 16)
        return 0;
    for (const char *p = m; *p; p++)
        if (!(*p >= 'A' && *p <= 'Z'))
            return 0;
    return 1;
}

static int valid_path(const char *p)
{
    if (!p || (*p && *p != '/' && *p != '?'))
        return 0;
    for (; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* Retry-After as milliseconds from now, or -1 when absent or unreadable. */
static long retry_after_ms(const char *v)
{
    if (!*v)
        return -1;
    long long secs;
    if (isdigit((unsigned char)*v)) {
        if (util_parse_int(v, 0, 365LL * 86400, &secs, NULL) != 0)
            return -1;
        return (long)(secs * 1000);
    }
    time_t when = curl_getdate(v, NULL);
    if (when == (time_t)-1)
        return -1;
    long long d = ((long long)when - (long long)time(NULL)) * 1000;
    if (d < 0)
        d = 0;
    if (d > 365LL * 86400 * 1000)
        d = 365LL * 86400 * 1000;
    return (long)d;
}

static int header_named(const char *line, const char *name, size_t n)
{
    return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static int fail_msg(const struct httpc *c, struct llmops_error *err, enum llmops_status code,
                    int tool_status, int retryable, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int fail_msg(const struct httpc *c, struct llmops_error *err, enum llmops_status code,
                    int tool_status, int retryable, const char *fmt, ...)
{
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c)
        scrub(c, msg);
    return llmops_fail(err, code, tool_status, retryable, msg);
}

/* Why a transfer failed, in words: the OS error for a refused connection ("Connection
 * refused" — libcurl 7.88 itself only says "Couldn't connect to server"), else libcurl's
 * error buffer, else its generic text. */
static void reason_of(struct httpc *c, CURLcode rc, char *out, size_t size)
{
    long os = 0;
    if (rc == CURLE_COULDNT_CONNECT &&
        curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os) == CURLE_OK && os > 0)
        snprintf(out, size, "%s", strerror((int)os));
    else if (c->errbuf[0])
        snprintf(out, size, "%s", c->errbuf);
    else
        snprintf(out, size, "%s", curl_easy_strerror(rc));
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
}

enum failure { F_NOT_SENT, F_LOST, F_TIMEOUT, F_TLS, F_TLS_HANDSHAKE, F_TOO_LARGE, F_OTHER };

static enum failure classify(struct httpc *c, CURLcode rc)
{
    if (c->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return F_TOO_LARGE;
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return F_NOT_SENT;
    case CURLE_OPERATION_TIMEDOUT: {
        long sent = 0;
        curl_easy_getinfo(c->curl, CURLINFO_REQUEST_SIZE, &sent);
        return sent == 0 ? F_NOT_SENT : F_TIMEOUT;
    }
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_SEND_FAIL_REWIND: /* on_seek refused libcurl's own re-send */
        return F_LOST;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return F_TLS;
    case CURLE_SSL_CONNECT_ERROR:
        return F_TLS_HANDSHAKE;
    default:
        return F_OTHER;
    }
}

/* body_len is the request's body size (the file's for body_file); drop_auth leaves out the
 * instance's auth header and the request's own credential headers (another origin). */
static int setup_request(struct httpc *c, const struct llmops_http_request *req, int unsafe,
                         size_t body_len, int drop_auth, const char *url,
                         struct curl_slist **headers, struct llmops_error *err)
{
    CURL *h = c->curl;
    curl_easy_reset(h); /* keeps live connections, DNS and TLS session caches */
    c->errbuf[0] = '\0';
    if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK)
        return fail_msg(c, err, LLMOPS_ERR_INTERNAL, 0, 0,
                        "libcurl refused the URL or protocol options for %s", c->display);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->verify_tls ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->verify_tls ? 2L : 0L);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    /* Refuse a too large body from its Content-Length before reading it — not for HEAD, whose
     * Content-Length describes a body that never comes (the size of a 5 GB model file). */
    if (strcmp(req->method, "HEAD") != 0 && c->wr_fd < 0)
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body);
    if (c->progress) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    }
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* decoded bytes count against the cap */
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);

    const char *m = req->method;
    int has_body = req->body != NULL || c->rd_fd >= 0;
    int send_fields = has_body || !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH");
    if (!strcmp(m, "HEAD")) {
        if (has_body)
            return fail_msg(c, err, LLMOPS_ERR_INVALID, 0, 0, "a HEAD request cannot have a body");
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (send_fields) {
        size_t len = has_body ? body_len : 0;
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        if (c->rd_fd >= 0 || (unsafe && len > 0)) { /* see on_read */
            c->rd_body = req->body;
            c->rd_len = len;
            c->rd_rewind = !unsafe;
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(h, CURLOPT_READDATA, c);
            curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
            curl_easy_setopt(h, CURLOPT_SEEKDATA, c);
        } else {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, has_body ? req->body : "");
        }
        if (strcmp(m, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    } else if (strcmp(m, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    }
    /* No body to refuse a rewind of: an unsafe request then gets a connection of its own, so
     * libcurl has no reused connection to retry on. */
    if (unsafe && !(send_fields && has_body && body_len > 0))
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);

    struct curl_slist *l = NULL, *t;
    int have_ctype = 0, have_auth = 0;
#define APPEND(s)                                                                                  \
    do {                                                                                           \
        if (!(t = curl_slist_append(l, (s))))                                                      \
            goto oom;                                                                              \
        l = t;                                                                                     \
    } while (0)
    for (const char *const *hp = req->headers; hp && *hp; hp++) {
        if (!**hp || has_line_break(*hp) || !strchr(*hp, ':')) {
            curl_slist_free_all(l);
            return fail_msg(c, err, LLMOPS_ERR_INVALID, 0, 0,
                            "request header %d is not one 'Name: value' line",
                            (int)(hp - req->headers) + 1);
        }
        const char *colon = strchr(*hp, ':');
        if (drop_auth && credential_header(*hp, (size_t)(colon - *hp)))
            continue; /* another origin: the request's own credentials stay behind too */
        if (header_named(*hp, "Content-Type", 12))
            have_ctype = 1;
        if (c->auth && header_named(*hp, c->auth, c->auth_name_len))
            have_auth = 1; /* the plugin's own credentials for this call win */
        APPEND(*hp);
    }
    if (!have_ctype && has_body) {
        const char *ct =
            req->content_type && *req->content_type ? req->content_type : "application/json";
        if (has_line_break(ct)) {
            curl_slist_free_all(l);
            return fail_msg(c, err, LLMOPS_ERR_INVALID, 0, 0, "content_type has a line break");
        }
        char line[256];
        if (util_fmt(line, sizeof line, "Content-Type: %s", ct) < 0) {
            curl_slist_free_all(l);
            return fail_msg(c, err, LLMOPS_ERR_INVALID, 0, 0, "content_type is too long");
        }
        APPEND(line);
    } else if (!have_ctype && send_fields) {
        APPEND("Content-Type:"); /* no body: drop libcurl's form content type */
    }
    APPEND("Expect:"); /* no 100-continue round trip (and its 1 s wait) for bodies > 1 KiB */
    if (c->auth && !have_auth && !drop_auth)
        APPEND(c->auth);
#undef APPEND
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    *headers = l;
    return 0;
oom:
    curl_slist_free_all(l);
    return fail_msg(c, err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
}

static int retry_status(int status, int idempotent)
{
    return status == 429 || status == 502 || status == 503 || status == 504 ||
           (status == 500 && idempotent);
}

static int redirect_status(long status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Resolves the request to a URL: an endpoint + path, or an absolute url on an allowed host.
 * Fills *url (malloc'd), parts (shown, origin, host) and *trusted (the auth header may go). */
static int resolve_url(struct httpc *c, const struct llmops_http_request *req, char **url,
                       struct url_parts *parts, int *trusted, struct llmops_error *err)
{
    if (req->url) {
        if ((strncmp(req->url, "http://", 7) != 0 && strncmp(req->url, "https://", 8) != 0) ||
            !valid_path(req->url + strcspn(req->url, "/")) ||
            url_split(NULL, req->url, 0, 0, parts) != 0)
            return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0,
                               "url is not an absolute http:// or https:// URL without blanks "
                               "or control characters");
        if (!host_allowed(c, parts->host))
            return fail_msg(c, err, LLMOPS_ERR_INVALID, 0, 0,
                            "url: host %s is not allowed for this instance (its URL keys' "
                            "hosts are; add it to allowed_hosts)",
                            parts->host);
        *url = strdup(req->url);
        *trusted = origin_trusted(c, parts->origin);
        return *url ? 0 : llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    }
    const char *name = req->endpoint ? req->endpoint : "url";
    const struct endpoint *e = NULL;
    for (int i = 0; i < c->neps && !e; i++)
        if (strcmp(c->eps[i].name, name) == 0)
            e = &c->eps[i];
    if (!e) {
        char m[200];
        snprintf(m, sizeof m,
                 "endpoint '%.60s' is not configured for this instance (set %.60s = "
                 "URL in its section)",
                 name, name);
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    if (!valid_path(req->path))
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0,
                           "the request path must start with '/' or '?' and hold no blanks or "
                           "control characters");
    size_t ul = strlen(e->base) + strlen(req->path) + 1;
    *url = malloc(ul);
    if (!*url)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
    snprintf(*url, ul, "%s%s", e->base, req->path);
    /* What messages show: no userinfo (display), no query or fragment (may hold tokens). */
    snprintf(parts->shown, sizeof parts->shown, "%s%.*s", e->display, (int)strcspn(req->path, "?#"),
             req->path);
    snprintf(parts->origin, sizeof parts->origin, "%s", e->origin);
    snprintf(parts->host, sizeof parts->host, "%s", e->host);
    parts->https = strncmp(e->base, "https:", 6) == 0;
    *trusted = 1;
    return 0;
}

int httpc_request(struct httpc *c, const struct llmops_http_request *req_in,
                  struct llmops_http_response *resp_out, struct llmops_error *err)
{
    if (!c || !req_in || !resp_out)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "httpc_request: NULL argument");
    if (req_in->size < REQ_V1_SIZE || resp_out->size < RESP_V1_SIZE)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0,
                           "llmops_http_request/llmops_http_response: size not set to sizeof");
    struct llmops_http_request req = {0};
    memcpy(&req, req_in, req_in->size < sizeof req ? req_in->size : sizeof req);
    if (req_in->size < REQ_V11_SIZE) /* a 1.0 module: none of the 1.1 members */
        memset((char *)&req + REQ_V1_SIZE, 0, sizeof req - REQ_V1_SIZE);
    struct llmops_http_response resp = {.size = resp_out->size};
    size_t resp_copy = resp_out->size < sizeof resp ? resp_out->size : sizeof resp;
    const int resp11 = resp_out->size >= RESP_V11_SIZE;
    resp_out->body = NULL;
    resp_out->body_len = 0;
    resp_out->attempts = 0;
    if (resp11) {
        resp_out->headers = NULL;
        resp_out->url = NULL;
        resp_out->redirects = 0;
        resp_out->file_bytes = 0;
    }

    if (!valid_method(req.method))
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0,
                           "the HTTP method must be an upper-case token such as GET");
    if (req.timeout_ms < 0)
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "timeout_ms is negative");
    if (req.body && req.body_len > (size_t)1 << 30)
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "the request body is over 1 GiB");
    if (req.max_redirects < 0 || req.max_redirects > MAX_REDIRECTS)
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "max_redirects is not 0..20");
    if (req.body && req.body_file)
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "body and body_file are both set");
    if ((req.body_file || req.response_file) && !resp11)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0,
                           "response_file/body_file need an ABI 1.1 llmops_http_response");
    if (req.body_file && strcmp(req.method, "HEAD") == 0)
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "a HEAD request cannot have a body");

    if (c->pid != getpid()) {
        /* Inherited across fork(): the parent's connections are not ours to use or close. */
        CURL *fresh = curl_easy_init();
        if (!fresh)
            return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "curl_easy_init failed");
        c->inherited = c->curl; /* cleaning it up could end the parent's TLS sessions */
        c->curl = fresh;
        c->pid = getpid();
    }

    char *url = NULL;
    struct url_parts cur;
    int trusted = 0;
    if (resolve_url(c, &req, &url, &cur, &trusted, err) != 0)
        return -1;
    char *shown = cur.shown;

    c->rd_fd = c->wr_fd = -1;
    c->file_bytes = 0;
    c->wr_errno = 0;
    size_t body_len = req.body ? req.body_len : 0;
    if (req.body_file) {
        struct stat st;
        c->rd_fd = open(req.body_file, O_RDONLY | O_CLOEXEC);
        if (c->rd_fd < 0 || fstat(c->rd_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            int e = c->rd_fd < 0 ? errno : EINVAL;
            close_fd(&c->rd_fd);
            free(url);
            char m[300];
            snprintf(m, sizeof m, "body_file %.200s: %s", req.body_file,
                     e == EINVAL ? "not a regular file" : strerror(e));
            return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
        }
        body_len = (size_t)st.st_size;
    }
    if (req.response_file) {
        c->wr_fd = open(req.response_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (c->wr_fd < 0) {
            char m[300];
            snprintf(m, sizeof m, "response_file %.200s: %s", req.response_file, strerror(errno));
            close_fd(&c->rd_fd);
            free(url);
            return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
        }
    }
    (void)auth_refresh(c); /* a rotated token file: the new token from this call on */
    c->want = req.want_headers;
    c->progress = req.progress;
    c->progress_ctx = req.progress_ctx;
    c->aborted = 0;

    int idempotent = method_idempotent(req.method);
    int may_retry = idempotent || req.retry_unsafe;
    int drop_auth = !trusted;
    struct curl_slist *headers = NULL;
    c->rd_body = NULL;
    c->rd_len = c->rd_off = 0;
    c->req_headers = req.headers;
    if (setup_request(c, &req, !may_retry, body_len, drop_auth, url, &headers, err) != 0) {
        close_fd(&c->rd_fd);
        close_fd(&c->wr_fd);
        free(url);
        return -1;
    }

    const long total = req.timeout_ms > 0 ? req.timeout_ms : c->total_ms;
    const int64_t start = util_now_ms();
    const int64_t deadline = start + total;
    int attempts = 0, hop_attempts = 0, redirects = 0, rv = -1;
    int last_status = 0;
    char reason[CURL_ERROR_SIZE + 64];

    for (;;) {
        int64_t remaining = deadline - util_now_ms();
        if (remaining <= 0) {
            fail_msg(c, err, LLMOPS_ERR_UNAVAILABLE, last_status, 1,
                     "%s: timed out after %ld ms (%d attempt%s)", shown, total, attempts,
                     attempts == 1 ? "" : "s");
            break;
        }
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)remaining);
        curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
                         c->connect_ms < remaining ? c->connect_ms : (long)remaining);
        c->len = 0;
        c->too_large = 0;
        c->rd_off = 0;
        c->ctype[0] = c->retry_after[0] = '\0';
        c->errbuf[0] = '\0';
        c->hlen = 0;
        c->decided = c->to_file = 0;
        if (c->wr_fd >= 0 && c->file_bytes > 0) { /* a retry starts the file again */
            if (ftruncate(c->wr_fd, 0) != 0)
                c->wr_errno = errno;
            c->file_bytes = 0;
        }
        CURLcode rc = curl_easy_perform(c->curl);
        attempts++;
        hop_attempts++;

        if (rc == CURLE_OK) {
            long status = 0;
            curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
            last_status = (int)status;
            if (hop_attempts <= c->retries && may_retry && retry_status((int)status, idempotent)) {
                long wait = backoff_ms(c, hop_attempts - 1);
                long ra = (status == 429 || status == 503) ? retry_after_ms(c->retry_after) : -1;
                if (ra >= 0)
                    wait = ra;
                if (wait < deadline - util_now_ms()) {
                    log_debug("http %s %s: %ld, retry %d of %d in %ld ms", req.method, shown,
                              status, hop_attempts, c->retries, wait);
                    sleep_ms(wait);
                    continue;
                }
                /* No time left to wait: the answer goes back as it is. */
            }
            char *next = NULL;
            if (redirect_status(status) && redirects < req.max_redirects &&
                curl_easy_getinfo(c->curl, CURLINFO_REDIRECT_URL, &next) == CURLE_OK && next) {
                struct url_parts np;
                if (url_split(NULL, next, 0, 0, &np) != 0) {
                    fail_msg(c, err, LLMOPS_ERR_TOOL, (int)status, 0,
                             "%s: answered %ld with a Location that is not an http(s) URL", shown,
                             status);
                    break;
                }
                if (cur.https && !np.https) {
                    fail_msg(c, err, LLMOPS_ERR_TOOL, (int)status, 0,
                             "%s: redirect from https to http (%s) refused", shown, np.shown);
                    break;
                }
                if (!host_allowed(c, np.host)) {
                    fail_msg(c, err, LLMOPS_ERR_TOOL, (int)status, 0,
                             "%s: redirect to host %s refused: not allowed for this instance "
                             "(add it to allowed_hosts)",
                             shown, np.host);
                    break;
                }
                char *nurl = strdup(next);
                if (!nurl) {
                    fail_msg(c, err, LLMOPS_ERR_INTERNAL, 0, 0, "out of memory");
                    break;
                }
                if (strcmp(np.origin, cur.origin) != 0)
                    drop_auth = 1; /* and it stays dropped for the rest of the chain */
                log_debug("http %s %s: %ld, redirect to %s%s", req.method, shown, status, np.shown,
                          drop_auth ? " (without credentials)" : "");
                if (status == 303 ||
                    ((status == 301 || status == 302) && strcmp(req.method, "POST") == 0)) {
                    req.method = "GET"; /* and no body any more */
                    req.body = NULL;
                    req.body_len = body_len = 0;
                    close_fd(&c->rd_fd);
                    idempotent = 1;
                    may_retry = 1;
                }
                free(url);
                url = nurl;
                cur = np;
                curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
                curl_slist_free_all(headers);
                headers = NULL;
                c->rd_body = NULL;
                c->rd_len = c->rd_off = 0;
                if (setup_request(c, &req, !may_retry, body_len, drop_auth, url, &headers, err) !=
                    0)
                    break;
                redirects++;
                hop_attempts = 0;
                continue;
            }
            if (c->wr_errno) {
                fail_msg(c, err, LLMOPS_ERR_INTERNAL, (int)status, 0, "response_file: %s",
                         strerror(c->wr_errno));
                break;
            }
            if (!c->buf || c->cap < c->len + 1) {
                char *p = realloc(c->buf, c->len + 1);
                if (!p) {
                    fail_msg(c, err, LLMOPS_ERR_INTERNAL, (int)status, 0, "out of memory");
                    break;
                }
                c->buf = p;
            }
            c->buf[c->len] = '\0';
            if (resp11) {
                char *h = malloc(c->hlen + 1);
                char *u = strdup(shown);
                if (!h || !u) {
                    free(h);
                    free(u);
                    fail_msg(c, err, LLMOPS_ERR_INTERNAL, (int)status, 0, "out of memory");
                    break;
                }
                if (c->hlen)
                    memcpy(h, c->hdrs, c->hlen);
                h[c->hlen] = '\0';
                resp.headers = h;
                resp.url = u;
                resp.redirects = redirects;
                resp.file_bytes = c->to_file ? c->file_bytes : 0;
            }
            resp.status = (int)status;
            resp.body = c->buf;
            resp.body_len = c->len;
            snprintf(resp.content_type, sizeof resp.content_type, "%s", c->ctype);
            resp.attempts = attempts;
            c->buf = NULL; /* the caller owns it now */
            c->cap = c->len = 0;
            rv = 0;
            break;
        }

        enum failure f = classify(c, rc);
        long status = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        reason_of(c, rc, reason, sizeof reason);
        if (rc == CURLE_SEND_FAIL_REWIND)
            snprintf(reason, sizeof reason, "the reused connection closed without an answer");
        scrub(c, reason); /* it is logged below, before fail_msg would scrub it */
        if (c->aborted) {
            fail_msg(c, err, LLMOPS_ERR_UNAVAILABLE, 0, 0,
                     "%s: aborted by the module (its progress callback)", shown);
            break;
        }
        if (c->wr_errno) {
            fail_msg(c, err, LLMOPS_ERR_INTERNAL, (int)status, 0, "response_file: %s",
                     strerror(c->wr_errno));
            break;
        }
        if (f == F_TOO_LARGE) {
            char cap[32];
            if (c->max_body % (1 << 20) == 0)
                snprintf(cap, sizeof cap, "%zu MiB", c->max_body >> 20);
            else
                snprintf(cap, sizeof cap, "%zu bytes", c->max_body);
            fail_msg(c, err, LLMOPS_ERR_TOOL, (int)status, 0, "response too large from %s: over %s",
                     shown, cap);
            break;
        }
        if (f == F_TLS) {
            fail_msg(c, err, LLMOPS_ERR_UNAVAILABLE, 0, 0,
                     "TLS certificate verification failed for %s: %s", shown, reason);
            break;
        }
        if (f == F_TLS_HANDSHAKE) {
            fail_msg(c, err, LLMOPS_ERR_UNAVAILABLE, 0, 0, "TLS handshake with %s failed: %s",
                     shown, reason);
            break;
        }
        if (f == F_OTHER) {
            fail_msg(c, err,
                     rc == CURLE_URL_MALFORMAT ? LLMOPS_ERR_INVALID : LLMOPS_ERR_UNAVAILABLE, 0, 0,
                     "%s: %s", shown, reason);
            break;
        }
        int out_of_time = util_now_ms() >= deadline - 1;
        if (rc == CURLE_OPERATION_TIMEDOUT && out_of_time) {
            fail_msg(c, err, LLMOPS_ERR_UNAVAILABLE, 0, 1,
                     "%s: timed out after %ld ms (%d attempt%s)", shown, total, attempts,
                     attempts == 1 ? "" : "s");
            break;
        }
        /* Nothing was sent (refused, DNS, connect timeout): safe to retry for any method.
         * A lost answer: only where repeating the request is harmless. */
        if (hop_attempts <= c->retries && (f == F_NOT_SENT || may_retry)) {
            long wait = backoff_ms(c, hop_attempts - 1);
            if (wait < deadline - util_now_ms()) {
                log_debug("http %s %s: %s, retry %d of %d in %ld ms", req.method, shown, reason,
                          hop_attempts, c->retries, wait);
                sleep_ms(wait);
                continue;
            }
        }
        if (f == F_NOT_SENT)
            fail_msg(c, err, LLMOPS_ERR_UNAVAILABLE, 0, 1, "cannot reach %s: %s (%d attempt%s)",
                     shown, reason, attempts, attempts == 1 ? "" : "s");
        else
            fail_msg(c, err, LLMOPS_ERR_UNAVAILABLE, 0, 1, "no answer from %s: %s (%d attempt%s)%s",
                     shown, reason, attempts, attempts == 1 ? "" : "s",
                     may_retry ? "" : "; the request may have been processed");
        break;
    }

    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    c->rd_body = NULL; /* the caller's memory */
    c->req_headers = NULL;
    c->want = NULL;
    c->progress = NULL;
    c->progress_ctx = NULL;
    close_fd(&c->rd_fd);
    if (c->wr_fd >= 0 && (rv != 0 || !c->to_file)) {
        if (ftruncate(c->wr_fd, 0) != 0)
            log_warning("http client: cannot empty the response file: %s", strerror(errno));
    }
    close_fd(&c->wr_fd);
    free(url);
    if (c->cap > 1 << 20) { /* do not keep a big buffer between calls */
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    if (c->hcap > 1 << 16) {
        free(c->hdrs);
        c->hdrs = NULL;
        c->hcap = 0;
    }
    c->len = 0;
    c->hlen = 0;
    resp.attempts = attempts;
    if (rv != 0)
        resp.body = NULL;
    memcpy(resp_out, &resp, resp_copy);
    return rv;
}
