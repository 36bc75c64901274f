/*
 * llmops-mock-host.h — a host for a module's unit tests, without llm-opsd (collectd's
 * plugin_mock.c). Part of the plugin developer kit (libllmops-plugin-dev): link
 * libllmops-mockhost.a (pkg-config llmops-mockhost) and give a module a complete
 * `struct llmops_host` of ABI 1.1, whose services a test controls and inspects:
 *
 *   configuration  a key=value table or a section of an INI file, checked against the
 *                  module's config_keys the way the server checks it;
 *   log            every line captured (level and text) for assertions;
 *   secrets        read from the files the configuration names (token_file, ...);
 *   HTTP           canned answers the test registers (method + path → status, headers,
 *                  body), or real requests with libcurl to a test server; every request is
 *                  recorded either way;
 *   clocks         frozen, advanced by the test (or the real clocks);
 *   counters       host->metric_add totals, read back by name;
 *   digests        MD5, SHA-1 and SHA-256 on libcrypto; version comparison as the core does;
 *   database       db_exec answers UNAVAILABLE unless the test gives a conninfo (libpq).
 *
 * It is a small re-implementation against llmops-plugin.h, not the core: a test of a module
 * links no part of llm-opsd. What the server adds around a module (capability checks,
 * breakers, the outbox, retries of HTTP calls) is for the conformance runner,
 * llmops-conformance(1). See doc/plugins/kit.md and llmops-plugin(7).
 *
 * Not thread-safe; one mock per instance under test. Strings passed in are copied.
 */
#ifndef LLMOPS_MOCK_HOST_H
#define LLMOPS_MOCK_HOST_H

#include "llmops-plugin.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct llmops_mock;

/* A mock for instance `instance` of module `module` (both copied). NULL on out of memory. */
struct llmops_mock *llmops_mock_new(const char *instance, const char *module);
void llmops_mock_free(struct llmops_mock *m);
/* The host table to pass to the module's init; lives as long as the mock. */
const struct llmops_host *llmops_mock_host(struct llmops_mock *m);

/* ---- configuration */

/* Sets one key (replacing an earlier value); config_where answers "mock:KEY". 0 or -1. */
int llmops_mock_config_set(struct llmops_mock *m, const char *key, const char *value);
/* Sets keys from "key=value" strings (blanks around '=' ignored), ended by NULL; where is
 * "table:N" (N from 1). Returns 0, or -1 naming the malformed entry in msg. */
int llmops_mock_config_table(struct llmops_mock *m, const char *const *pairs, char *msg,
                             size_t msgsize);
/* Sets the keys of section `section` of INI file `path` (`plugin "NAME"` or any other section
 * name, as written between the brackets); where is "PATH:LINE". Returns 0, or -1 with msg
 * saying what (unreadable file, syntax error at a line, no such section). */
int llmops_mock_config_ini(struct llmops_mock *m, const char *path, const char *section, char *msg,
                           size_t msgsize);
/* Checks the configuration against a module's key table as the server does: unknown key,
 * wrong type (INT with min..max, BOOL, URL, FILE readable), required key missing. The core's
 * own instance keys (url, timeout_ms, token_file, ...) are accepted too. Returns the number
 * of problems; the first is in msg ("WHERE: message"). */
int llmops_mock_config_check(struct llmops_mock *m, const struct llmops_config_key *keys, char *msg,
                             size_t msgsize);

/* ---- running a module */

/* dlopens a module file (RTLD_NOW | RTLD_LOCAL), calls llmops_plugin_entry and checks the
 * magic block, ABI and sizes as the server does. Returns the descriptor, or NULL with msg.
 * The file stays open until llmops_mock_free. */
const struct llmops_plugin *llmops_mock_open(struct llmops_mock *m, const char *path, char *msg,
                                             size_t msgsize);
/* llmops_mock_config_check against desc->config_keys, then desc->init with this host.
 * Returns 0 with *state set, or -1 with err filled (INVALID for a configuration problem). */
int llmops_mock_init(struct llmops_mock *m, const struct llmops_plugin *desc, void **state,
                     struct llmops_error *err);

/* ---- log */

/* Lines logged through host->log since the last clear (the mock keeps the last 1024). */
size_t llmops_mock_log_count(const struct llmops_mock *m);
/* Line i (0 first) and its level, or NULL when out of range. */
const char *llmops_mock_log_line(const struct llmops_mock *m, size_t i,
                                 enum llmops_log_level *level);
/* How many captured lines at `min_level` or above contain `needle`. */
size_t llmops_mock_log_find(const struct llmops_mock *m, enum llmops_log_level min_level,
                            const char *needle);
void llmops_mock_log_clear(struct llmops_mock *m);
/* Also print lines to stderr ("mock[INSTANCE] LEVEL: text"): on when LLMOPS_MOCK_VERBOSE is
 * set in the environment, or by this call. */
void llmops_mock_log_echo(struct llmops_mock *m, int on);

/* ---- HTTP */

/* Registers a canned answer to `method` `path`. `path` is matched against the request's
 * path with its query (for a request to an endpoint key other than url: "ui_url:/p"), or
 * against its absolute URL; a path ending in '*' matches every path with that prefix.
 * `headers` are "Name: value" lines separated by '\n' (or NULL); `body` is copied (NULL:
 * empty). Answers registered for the same method and path are given in turn, the last one
 * again and again. Status 0 registers a failure to connect: http() returns -1 UNAVAILABLE.
 * Returns 0 or -1. */
int llmops_mock_http_add(struct llmops_mock *m, const char *method, const char *path, int status,
                         const char *headers, const char *body);
/* Real HTTP with libcurl instead of canned answers: requests go to the instance's URL keys
 * (url, or the endpoint named) with the configured timeout_ms, token_file and
 * basic_auth_file, following at most max_redirects redirects. Canned answers registered
 * still win over the network. */
void llmops_mock_http_real(struct llmops_mock *m, int on);

/* A request the module made. Strings are owned by the mock. */
struct llmops_mock_request {
    const char *method;
    const char *endpoint; /* "url", "ui_url", ...; NULL for an absolute URL */
    const char *path;     /* as the module gave it (or the absolute URL) */
    const char *headers;  /* the module's extra header lines, each ended by '\n' */
    const char *body;     /* NUL-terminated; from body_file too */
    size_t body_len;
    const char *content_type;
    int retry_unsafe;
    long timeout_ms;
    int status; /* the answer given: its status, or 0 when the call failed */
};
size_t llmops_mock_http_count(const struct llmops_mock *m);
/* Request i (0 first), or NULL when out of range. */
const struct llmops_mock_request *llmops_mock_http_request(const struct llmops_mock *m, size_t i);
/* How many requests were made to `method` `path` (matched as for llmops_mock_http_add). */
size_t llmops_mock_http_calls(const struct llmops_mock *m, const char *method, const char *path);
void llmops_mock_http_clear(struct llmops_mock *m);
/* Responses the module took with http() and has not yet released with http_free. */
int llmops_mock_http_unreleased(const struct llmops_mock *m);

/* ---- clocks (process-wide: host->now_ms and wall_ms take no host) */

/* Frozen by default: monotonic 1000000 ms, wall 1700000000000 ms (2023-11-14). */
void llmops_mock_clock_set(int64_t mono_ms, int64_t wall_ms);
void llmops_mock_clock_advance(int64_t ms);
/* 1: now_ms and wall_ms follow the real clocks (CLOCK_MONOTONIC, CLOCK_REALTIME). */
void llmops_mock_clock_real(int on);
/* Advance the frozen clocks by `ms` on every call of now_ms (0: off), so a module's loop
 * that waits for a deadline ends without a real wait. */
void llmops_mock_clock_autostep(int64_t ms);

/* ---- counters */

/* The total added to counter `name`, 0 when never added. */
double llmops_mock_metric(const struct llmops_mock *m, const char *name);
/* Calls of metric_add the server would refuse (a name that is not snake_case or is 48 bytes
 * or longer, a negative value, more than 32 counters); each is also logged at ERROR. */
int llmops_mock_metric_refused(const struct llmops_mock *m);

/* ---- database */

/* A libpq conninfo for host->db_exec (NULL: db_exec answers UNAVAILABLE, as the server does
 * without a [database] section). Connects at the first db_exec. Returns 0 or -1. */
int llmops_mock_db_conninfo(struct llmops_mock *m, const char *conninfo);
/* Results the module took with db_exec and has not released with db_clear. */
int llmops_mock_db_unreleased(const struct llmops_mock *m);

#ifdef __cplusplus
}
#endif

#endif /* LLMOPS_MOCK_HOST_H */
