/* The state one worker process keeps: configuration, its database connection, caches.
 * One per process, handed to every request through struct req. */
#ifndef LLMOPS_APP_H
#define LLMOPS_APP_H

#include "conf.h"
#include "db.h"
#include "flags.h"
#include "plugin.h"
#include "http.h"
#include "metrics.h"

#include <stdint.h>

#define AUTH_CACHE_SLOTS 256

struct auth_entry {
    char hash[65];   /* "" = empty slot */
    char token[257]; /* the token itself: a hit is confirmed without hashing again */
    int found;
    struct principal who;
    int64_t expires_at; /* wall seconds, 0 = never */
    int64_t fetched_ms;
};

struct gpu_cache_entry {
    int valid;
    char *body; /* the whole envelope */
    size_t len;
    char etag[40];
};

struct app {
    struct llmops_conf *conf;
    struct db db;
    int64_t started_wall;
    int64_t started_ms;
    struct auth_entry auth[AUTH_CACHE_SLOTS];
    struct gpu_cache_entry gpu[CONF_MAX_ENVS];
    struct plugin_registry plugins;
    struct flag_cache flags;
    uint64_t seen_changes[METRICS_CHANGE_KINDS]; /* the change counters at the last request */
    uint64_t seen_total;
};

/* The effective flags, loaded on first use after a change; NULL with err filled when the
 * database is unavailable. */
const struct flag_cache *app_load_flags(struct app *app, struct db_error *err);
/* The same for a request: NULL after writing a 503. */
const struct flag_cache *app_flags(struct app *app, struct req *r);

/* Binds the app to a configuration (not copied) and sets up the database handle. */
void app_init(struct app *app, struct llmops_conf *conf);
void app_fini(struct app *app);
/* Drops every cache (after a reconnect or a configuration reload). */
void app_flush_caches(struct app *app);
/* Counts one answered request in the shared metrics (route pattern, method, status class). */
void app_count_request(const struct req *r, long long duration_us);
/* After this process changed cached data (committed): every worker of the host drops that
 * cache before its next request, this one included. */
void app_changed(struct app *app, enum metrics_change what);
/* Handles one request: r->resp holds the answer afterwards. The worker sends it, then calls
 * app_after, which does what the request deferred (a breaker trip's flag writes). */
void app_serve(struct app *app, const struct http_input *in, struct req *r);
void app_after(struct app *app);
/* app_serve then app_after, for in-process callers (tests, benchmarks). */
void app_handle(struct app *app, const struct http_input *in, struct req *r);

/* The channel every worker LISTENs on; payload names what changed. */
#define APP_NOTIFY_CHANNEL "llmops_invalidate"

/* caches */
void auth_cache_flush(struct app *app);
void gpu_cache_flush(struct app *app);

#endif
