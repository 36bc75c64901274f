#include "auth.h"

#include "app.h"
#include "log.h"
#include "router.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

int auth_new_token(char out[72], char hash[65])
{
    char hex[65];
    if (util_random_hex(hex, 32) < 0)
        return -1;
    snprintf(out, 72, "%s%s", AUTH_TOKEN_PREFIX, hex);
    util_sha256_hex(out, strlen(out), hash);
    return 0;
}

void auth_cache_flush(struct app *app)
{
    explicit_bzero(app->auth, sizeof app->auth); /* the slots hold tokens */
}

static void unauthenticated(struct req *r, const char *err, const char *msg)
{
    if (err)
        resp_header(r, "WWW-Authenticate: Bearer realm=\"llm-ops\", error=\"%s\"", err);
    else
        resp_header(r, "WWW-Authenticate: Bearer realm=\"llm-ops\"");
    resp_error(r, API_UNAUTHENTICATED, NULL, "%s", msg);
}

/* Looks the token up in the cache, then (by its SHA-256) in the database. A slot keeps the
 * token itself, so a hit is confirmed by a constant-time comparison without hashing again.
 * Returns 0, or -1 after a 503. */
static int lookup(struct req *r, const char *tok, size_t len, struct auth_entry **out)
{
    struct app *app = r->app;
    uint64_t f = 14695981039346656037ULL; /* FNV-1a picks the slot */
    for (size_t i = 0; i < len; i++) {
        f ^= (unsigned char)tok[i];
        f *= 1099511628211ULL;
    }
    struct auth_entry *e = &app->auth[(f ^ (f >> 32)) % AUTH_CACHE_SLOTS];
    int64_t now = util_now_ms();
    int64_t ttl = app->conf->token_cache_seconds * 1000;
    if (e->hash[0] && strlen(e->token) == len && CRYPTO_memcmp(e->token, tok, len) == 0 &&
        now - e->fetched_ms < ttl) {
        *out = e;
        return 0;
    }
    char hash[65];
    util_sha256_hex(tok, len, hash);
    struct db_error err;
    const char *params[] = {hash};
    PGresult *res = db_exec(&app->db,
                            "SELECT name, role, coalesce(extract(epoch FROM expires_at)::bigint, 0)"
                            " FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL",
                            1, params, &err);
    if (!res) {
        log_warning("token lookup failed: %s", db_error_detail(&err));
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL,
                   "cannot check the token: the database is unavailable");
        return -1;
    }
    memset(e, 0, sizeof *e);
    strcpy(e->hash, hash);
    memcpy(e->token, tok, len); /* len <= 256: checked by the caller */
    e->fetched_ms = now;
    if (PQntuples(res) == 1) {
        long long exp = 0;
        e->found = 1;
        snprintf(e->who.name, sizeof e->who.name, "%s", PQgetvalue(res, 0, 0));
        if (role_from_string(PQgetvalue(res, 0, 1), &e->who.role) < 0)
            e->found = 0;
        util_parse_int(PQgetvalue(res, 0, 2), 0, (long long)1 << 62, &exp, NULL);
        e->expires_at = exp;
    }
    PQclear(res);
    if (ttl <= 0)
        e->fetched_ms = now - 1 - ttl; /* never reused */
    *out = e;
    return 0;
}

int auth_check(struct req *r)
{
    const char *h = r->in->authorization;
    if (!h || !*h) {
        unauthenticated(r, NULL, "this route needs a token: send Authorization: Bearer <token>");
        return -1;
    }
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        unauthenticated(r, "invalid_request",
                        "the Authorization header must use the Bearer scheme");
        return -1;
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    size_t len = strlen(tok);
    while (len > 0 && tok[len - 1] == ' ')
        len--;
    if (len == 0 || len > 256) {
        unauthenticated(r, "invalid_token", "the bearer token is empty or too long");
        return -1;
    }
    struct auth_entry *e;
    if (lookup(r, tok, len, &e) < 0)
        return -1;
    if (!e->found) {
        unauthenticated(r, "invalid_token", "the token is unknown or revoked");
        return -1;
    }
    if (e->expires_at && util_wall_s() >= e->expires_at) {
        unauthenticated(r, "invalid_token", "the token has expired");
        return -1;
    }
    r->who = e->who;
    if (r->who.role == ROLE_ALERTS) {
        if (r->route->flags & ROUTE_ALERTS)
            return 0;
        resp_error(r, API_FORBIDDEN,
                   json_pack("{s:s,s:s}", "required_role", role_name(r->route->min_role), "role",
                             role_name(r->who.role)),
                   "%s %s needs the %s role; token '%s' has the alerts role, which may only post"
                   " alerts (POST /llm-ops/v1/alerts)",
                   r->route->method, r->route->pattern, role_name(r->route->min_role), r->who.name);
        return -1;
    }
    if (r->who.role < r->route->min_role) {
        resp_error(r, API_FORBIDDEN,
                   json_pack("{s:s,s:s}", "required_role", role_name(r->route->min_role), "role",
                             role_name(r->who.role)),
                   "%s %s needs the %s role; token '%s' has %s", r->route->method,
                   r->route->pattern, role_name(r->route->min_role), r->who.name,
                   role_name(r->who.role));
        return -1;
    }
    return 0;
}
