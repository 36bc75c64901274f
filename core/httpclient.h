/* httpclient — the HTTP client the core hands to plugins (struct llmops_host.http).
 *
 * One libcurl easy handle per client, reused for every call so connections to the tool stay
 * alive. A call gets the base URL, timeouts, retries with exponential backoff and full jitter
 * (connection errors, 429, 502, 503, 504, and 500 for idempotent methods; POST/PATCH only
 * when the request says retry_unsafe), Retry-After, TLS verification and the auth header.
 * The whole call, retries and waits included, never takes longer than the total timeout.
 *
 * A client is not thread-safe: one per instance per worker process (the workers are
 * single-threaded). Create it after fork(); a client carried across fork() notices and opens
 * fresh connections instead of sharing the parent's sockets.
 *
 * Secrets: the auth header and any password in the base URL are never logged and never
 * appear in an error message (messages are scrubbed of them before they are returned).
 */
#ifndef LLMOPS_HTTPCLIENT_H
#define LLMOPS_HTTPCLIENT_H

#include "llmops-plugin.h"

#include <stddef.h>

#define HTTPC_MAX_BODY_DEFAULT ((size_t)64 << 20) /* 64 MiB */

struct httpc_config {
    const char *base_url;    /* http(s)://host[:port][/prefix]; trailing '/' ignored */
    long connect_timeout_ms; /* per attempt; 0 → 2000 */
    long total_timeout_ms;   /* the whole call, retries and waits included; 0 → 10000 */
    int max_retries;         /* extra attempts after the first (0..20) */
    long backoff_base_ms;    /* wait before retry n (0-based): a random value in */
    long backoff_max_ms;     /* [0, min(max, base * 2^n)]; 0 → 100 and 2000 */
    const char *auth_header; /* "Authorization: Bearer x", ...; may be NULL; never logged */
    int verify_tls;          /* 1 verifies the peer and host name; 0 turns that OFF
                                (the configuration default is 1: set it explicitly) */
    const char *ca_file;     /* optional CA bundle (PEM) */
    const char *user_agent;  /* NULL → "llm-ops" */
    /* Additions beyond the original brief, both optional (zero = default): */
    size_t max_body_bytes;  /* a bigger response fails; 0 → HTTPC_MAX_BODY_DEFAULT */
    double (*jitter)(void); /* returns [0, 1]: the fraction of the backoff cap to wait;
                               NULL → random (full jitter). Tests pin it. */
    /* ABI 1.1 services, all optional: */
    const struct httpc_endpoint *endpoints; /* further named base URLs ("ui_url", ...); the
                                               base_url is the endpoint "url" */
    int nendpoints;
    const char *allowed_hosts; /* more hosts for absolute URLs and redirects: names or
                                *.suffix, separated by commas or blanks */
    const char *auth_file;     /* instead of auth_header: a secret file read again whenever */
    const char *auth_scheme;   /* it changes (inode, size, mtime), sent as "Authorization:
                                  <scheme> <content>"; scheme "Basic" base64-encodes it */
};

struct httpc_endpoint {
    const char *name; /* the configuration key */
    const char *url;  /* http(s)://host[:port][/prefix] */
};

struct httpc;

/* Copies everything it needs from cfg. Returns NULL (and logs why, without secrets) when the
 * base URL is not http(s), a header has a line break, or memory runs out. */
struct httpc *httpc_new(const struct httpc_config *cfg);
void httpc_free(struct httpc *c);

/* One call. Returns 0 when an HTTP answer came back, whatever its status: resp->status,
 * resp->body (NUL-terminated, never NULL; release with httpc_response_free), content_type,
 * attempts. Returns -1 with err filled otherwise:
 *   LLMOPS_ERR_UNAVAILABLE  refused / reset / DNS / lost answer (retryable 1),
 *                           "timed out after N ms" (retryable 1),
 *                           TLS certificate verification failed (retryable 0)
 *   LLMOPS_ERR_TOOL         the answer is larger than max_body_bytes ("response too large")
 *   LLMOPS_ERR_INVALID      a bad request: path not starting with '/' or '?', a header with
 *                           a line break, an unknown method
 *   LLMOPS_ERR_INVALID      (1.1) an unknown endpoint, a url on a host not allowed, an
 *                           unreadable body_file or unwritable response_file
 *   LLMOPS_ERR_TOOL         (1.1) a redirect to a host not allowed, or from https to http
 *                           (once max_redirects are used up, the 3xx itself is the answer)
 *   LLMOPS_ERR_UNAVAILABLE  (1.1) "aborted by the module" when progress returned nonzero
 *   LLMOPS_ERR_INTERNAL     req/resp size fields too small, out of memory
 * On -1, resp->body is NULL and resp->attempts says how many attempts were made. */
int httpc_request(struct httpc *c, const struct llmops_http_request *req,
                  struct llmops_http_response *resp, struct llmops_error *err);
void httpc_response_free(struct llmops_http_response *resp);

/* The header lines of one answer (the bytes after its status line, lines ending in "\n")
 * through the same parser a call uses, into a kept-headers list like resp->headers (a new
 * malloc'd "name\0value\0...\0" list in *out, its length without the final NUL in *len).
 * want: further names to keep, as in want_headers. For the fuzz target; 0 or -1 (memory). */
int httpc_parse_headers(struct httpc *c, const char *data, size_t n, const char *const *want,
                        char **out, size_t *len);

/* The first value of header `name` (any case) in resp->headers, or NULL. */
const char *httpc_response_header(const struct llmops_http_response *resp, const char *name);

#endif
