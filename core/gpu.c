#include "gpu.h"

#include "app.h"
#include "handlers.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- validation (declared table, kcgi's kvalid idea) ---- */

enum member_kind { M_NAME, M_ENUM_VENDOR, M_TEXT, M_INT, M_RESOURCE, M_SELECTOR, M_MIG, M_BOOL };

struct member_def {
    const char *name;
    enum member_kind kind;
    int required;
    long long min, max; /* ints: value range; strings: length range */
};

static const struct member_def members[] = {
    {"name", M_NAME, 1, 1, 63},
    {"vendor", M_ENUM_VENDOR, 1, 0, 0},
    {"model", M_TEXT, 1, 1, 128},
    {"memory_gib", M_INT, 1, 1, 4096},
    {"resource_name", M_RESOURCE, 1, 1, 253},
    {"node_selector", M_SELECTOR, 1, 0, 0},
    {"mig_profile", M_MIG, 0, 1, 32},
    {"capacity", M_INT, 1, 0, 100000},
    {"enabled", M_BOOL, 0, 0, 0},
};
static const char *const readonly_members[] = {"environment", "created_at", "updated_at"};
static const char *const vendors[] = {"nvidia", "amd", "intel"};

static int all_chars(const char *s, const char *extra, int allow_upper)
{
    for (; *s; s++) {
        char c = *s;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            (allow_upper && c >= 'A' && c <= 'Z') || (c && strchr(extra, c)))
            continue;
        return 0;
    }
    return 1;
}

static int check_name(const char *s)
{
    size_t n = strlen(s);
    if (!all_chars(s, ".-", 0))
        return 0;
    return n > 0 && s[0] != '.' && s[0] != '-' && s[n - 1] != '.' && s[n - 1] != '-';
}

static int check_member(const struct member_def *d, json_t *v, char *msg, size_t msgsize)
{
    switch (d->kind) {
    case M_INT: {
        if (!json_is_integer(v)) {
            snprintf(msg, msgsize, "%s must be an integer %lld-%lld", d->name, d->min, d->max);
            return -1;
        }
        json_int_t i = json_integer_value(v);
        if (i < d->min || i > d->max) {
            snprintf(msg, msgsize, "%s must be an integer %lld-%lld (got %lld)", d->name, d->min,
                     d->max, (long long)i);
            return -1;
        }
        return 0;
    }
    case M_BOOL:
        if (!json_is_boolean(v)) {
            snprintf(msg, msgsize, "%s must be true or false", d->name);
            return -1;
        }
        return 0;
    case M_SELECTOR: {
        json_t *k = json_object_get(v, "key"), *val = json_object_get(v, "value");
        if (!json_is_object(v) || json_object_size(v) != 2 || !json_is_string(k) ||
            !json_is_string(val)) {
            snprintf(msg, msgsize,
                     "node_selector must be an object {\"key\": \"...\", \"value\": \"...\"}");
            return -1;
        }
        const char *ks = json_string_value(k), *vs = json_string_value(val);
        if (strlen(ks) < 1 || strlen(ks) > 253 || !all_chars(ks, "./_-", 1)) {
            snprintf(msg, msgsize,
                     "node_selector.key must be a Kubernetes label key (1-253 of A-Z a-z 0-9 . / _ "
                     "-)");
            return -1;
        }
        if (strlen(vs) > 63 || !all_chars(vs, "._-", 1)) {
            snprintf(
                msg, msgsize,
                "node_selector.value must be a Kubernetes label value (0-63 of A-Z a-z 0-9 . _ "
                "-)");
            return -1;
        }
        return 0;
    }
    case M_MIG:
        if (json_is_null(v))
            return 0;
        /* fall through: a string */
    default:
        break;
    }
    if (!json_is_string(v)) {
        snprintf(msg, msgsize, "%s must be a string%s", d->name,
                 d->kind == M_MIG ? " or null" : "");
        return -1;
    }
    const char *s = json_string_value(v);
    size_t n = util_utf8_len(s); /* the limits are in characters, as the message says */
    if (d->kind == M_ENUM_VENDOR) {
        for (size_t i = 0; i < UTIL_ARRAY_LEN(vendors); i++)
            if (strcmp(s, vendors[i]) == 0)
                return 0;
        char q[UTIL_QUOTE_SIZE(40)];
        snprintf(msg, msgsize, "vendor '%s' is not known; valid: nvidia, amd, intel",
                 util_quote(q, sizeof q, s, 40));
        return -1;
    }
    if ((long long)n < d->min || (long long)n > d->max) {
        snprintf(msg, msgsize, "%s must be %lld-%lld characters long (got %zu)", d->name, d->min,
                 d->max, n);
        return -1;
    }
    if (d->kind == M_NAME && !check_name(s)) {
        snprintf(msg, msgsize,
                 "name must be lowercase letters, digits, '.' and '-', starting and ending with a "
                 "letter or digit");
        return -1;
    }
    if (d->kind == M_RESOURCE && !all_chars(s, "./_-", 1)) {
        snprintf(msg, msgsize,
                 "resource_name must be a Kubernetes resource name such as "
                 "nvidia.com/gpu");
        return -1;
    }
    if (d->kind == M_MIG && !all_chars(s, ".", 0)) {
        snprintf(msg, msgsize, "mig_profile must look like 1g.10gb");
        return -1;
    }
    if (d->kind == M_TEXT) {
        for (const char *p = s; *p; p++) {
            if ((unsigned char)*p < 0x20) {
                snprintf(msg, msgsize, "%s must not contain control characters", d->name);
                return -1;
            }
        }
    }
    return 0;
}

int gpu_validate(json_t *obj, enum gpu_mode mode, char *msg, size_t msgsize, char *field,
                 size_t fieldsize)
{
    if (!json_is_object(obj)) {
        snprintf(msg, msgsize, "a GPU type must be a JSON object");
        snprintf(field, fieldsize, "body");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const struct member_def *d = NULL;
        for (size_t i = 0; i < UTIL_ARRAY_LEN(members); i++)
            if (strcmp(members[i].name, key) == 0)
                d = &members[i];
        if (!d) {
            int ro = 0;
            for (size_t i = 0; i < UTIL_ARRAY_LEN(readonly_members); i++)
                if (strcmp(readonly_members[i], key) == 0)
                    ro = 1;
            if (ro)
                continue; /* read-only members of a GET answer: compared with the object's by
                             gpu_check_read_only, where there is an object */
            char q[UTIL_QUOTE_SIZE(64)];
            snprintf(msg, msgsize,
                     "unknown member '%s'; valid: name, vendor, model, memory_gib, "
                     "resource_name, node_selector, mig_profile, capacity, enabled",
                     util_quote(q, sizeof q, key, 64));
            snprintf(field, fieldsize, "%s", key);
            return -1;
        }
        if (mode == GPU_PARTIAL && d->kind == M_NAME) {
            snprintf(msg, msgsize, "name cannot be changed; create a new GPU type instead");
            snprintf(field, fieldsize, "%s", d->name);
            return -1;
        }
        if (check_member(d, v, msg, msgsize) < 0) {
            snprintf(field, fieldsize, "%s", d->name);
            return -1;
        }
    }
    if (mode == GPU_FULL) {
        for (size_t i = 0; i < UTIL_ARRAY_LEN(members); i++) {
            if (members[i].required && !json_object_get(obj, members[i].name)) {
                snprintf(msg, msgsize, "member '%s' is required", members[i].name);
                snprintf(field, fieldsize, "%s", members[i].name);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- storage ---- */

/* gpu_type_json(row) is defined by migration 0001. */
#define GPU_COLUMNS_PARAMS                                                                         \
    "vendor = $3, model = $4, memory_gib = $5::int, resource_name = $6, node_selector_key = $7, "  \
    "node_selector_value = $8, mig_profile = $9, capacity = $10::int, enabled = $11::boolean"

struct gpu_params {
    char mem[24], cap[24];
    const char *v[11];
};

/* Turns a validated full object into the 11 text parameters ($1 env, $2 name, ...). */
static void to_params(json_t *o, const char *env, const char *name, struct gpu_params *p)
{
    json_t *ns = json_object_get(o, "node_selector");
    json_t *mig = json_object_get(o, "mig_profile");
    json_t *en = json_object_get(o, "enabled");
    snprintf(p->mem, sizeof p->mem, "%lld",
             (long long)json_integer_value(json_object_get(o, "memory_gib")));
    snprintf(p->cap, sizeof p->cap, "%lld",
             (long long)json_integer_value(json_object_get(o, "capacity")));
    p->v[0] = env;
    p->v[1] = name;
    p->v[2] = json_string_value(json_object_get(o, "vendor"));
    p->v[3] = json_string_value(json_object_get(o, "model"));
    p->v[4] = p->mem;
    p->v[5] = json_string_value(json_object_get(o, "resource_name"));
    p->v[6] = json_string_value(json_object_get(ns, "key"));
    p->v[7] = json_string_value(json_object_get(ns, "value"));
    p->v[8] = (mig && json_is_string(mig)) ? json_string_value(mig) : NULL;
    p->v[9] = p->cap;
    p->v[10] = (en && json_is_false(en)) ? "false" : "true";
}

static const char sql_insert[] =
    "INSERT INTO gpu_types AS g (environment, name, vendor, model, memory_gib, resource_name, "
    "node_selector_key, node_selector_value, mig_profile, capacity, enabled) "
    "VALUES ($1, $2, $3, $4, $5::int, $6, $7, $8, $9, $10::int, $11::boolean) ";

/* Sends a database failure to the client. */
static void db_failed(struct req *r, const struct db_error *err)
{
    if (err->status == DB_UNAVAILABLE) {
        resp_error(r, API_DATABASE_UNAVAILABLE, NULL, "the database is unavailable");
    } else {
        log_error("request %s: SQL error %s: %s", r->request_id, err->sqlstate, err->message);
        resp_error(r, API_INTERNAL, NULL, "internal error (request %s)", r->request_id);
    }
}

/* Parses the one-row, one-column JSON text of a result. */
static json_t *row_json(PGresult *res, int row)
{
    return json_loads(PQgetvalue(res, row, 0), 0, NULL);
}

/* ---- cache of the list, per environment ---- */

void gpu_cache_flush(struct app *app)
{
    for (int i = 0; i < CONF_MAX_ENVS; i++) {
        free(app->gpu[i].body);
        memset(&app->gpu[i], 0, sizeof app->gpu[i]);
    }
}

static int fill_cache(struct req *r, struct gpu_cache_entry *c)
{
    struct db_error err;
    const char *params[] = {r->env};
    PGresult *res = db_exec(&r->app->db,
                            "SELECT gpu_type_json(g) FROM gpu_types g WHERE environment = $1 "
                            "ORDER BY name",
                            1, params, &err);
    if (!res) {
        db_failed(r, &err);
        return -1;
    }
    json_t *list = json_array();
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        json_t *t = row_json(res, i);
        if (t)
            json_array_append_new(list, t);
    }
    PQclear(res);
    char msg[96];
    snprintf(msg, sizeof msg, "%d GPU type%s in %s", n, n == 1 ? "" : "s", r->env);
    c->body = envelope_dump(msg, json_pack("{s:s,s:o}", "environment", r->env, "gpu_types", list),
                            &c->len);
    if (!c->body) {
        resp_error(r, API_INTERNAL, NULL, "out of memory");
        return -1;
    }
    char hash[65];
    util_sha256_hex(c->body, c->len, hash);
    snprintf(c->etag, sizeof c->etag, "\"%.32s\"", hash);
    c->valid = 1;
    return 0;
}

int gpu_etag_matches(const char *header, const char *etag, int weak_ok)
{
    size_t elen = strlen(etag);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        int weak = 0;
        if (p[0] == 'W' && p[1] == '/') {
            p += 2;
            weak = 1;
        }
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if ((weak_ok || !weak) && len == elen && memcmp(p, etag, len) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

void gpu_list(struct req *r)
{
    struct gpu_cache_entry *c = &r->app->gpu[r->env_index];
    if (!c->valid && fill_cache(r, c) < 0)
        return;
    resp_header(r, "ETag: %s", c->etag);
    resp_header(r, "Cache-Control: no-cache");
    if (r->in->if_none_match && gpu_etag_matches(r->in->if_none_match, c->etag, 1)) {
        resp_bytes(r, 304, NULL, 0);
        return;
    }
    resp_bytes(r, 200, c->body, c->len);
}

/* ---- single objects ---- */

/* The representation and the entity tag of one row g: the tag is the row's id and the
 * transaction that wrote this version of it (xmin), so every write gives a new tag, and a
 * type deleted and made again has another one. Columns 2 and 3: id and xmin, for the
 * conditional UPDATE. */
#define GPU_ROW_OUT "gpu_type_json(g), '\"' || g.id || '.' || g.xmin || '\"', g.id, g.xmin"

static void not_found(struct req *r, const char *name)
{
    resp_error(r, API_NOT_FOUND, json_pack("{s:s}", "field", "name"), "no GPU type '%s' in %s",
               name, r->env);
}

static void answer_row(struct req *r, PGresult *res, int status, const char *verb)
{
    json_t *t = row_json(res, 0);
    resp_header(r, "ETag: %s", PQgetvalue(res, 0, 1));
    PQclear(res);
    const char *name = json_string_value(json_object_get(t, "name"));
    char msg[160];
    snprintf(msg, sizeof msg, "GPU type '%s' %s in %s", name ? name : "?", verb, r->env);
    resp_success(r, status, msg, t);
}

static int validate_body(struct req *r, json_t *obj, enum gpu_mode mode)
{
    char msg[256], field[72];
    if (gpu_validate(obj, mode, msg, sizeof msg, field, sizeof field) < 0) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", field), "%s", msg);
        return -1;
    }
    return 0;
}

static const char *const compared_readonly[] = {"environment", "created_at"};

int gpu_check_read_only(json_t *body, json_t *current, char *msg, size_t msgsize, char *field,
                        size_t fieldsize)
{
    for (size_t i = 0; i < UTIL_ARRAY_LEN(compared_readonly); i++) {
        const char *k = compared_readonly[i];
        json_t *bv = json_object_get(body, k), *cv = json_object_get(current, k);
        if (!bv || !cv || json_equal(bv, cv))
            continue;
        char *said = json_dumps(bv, JSON_COMPACT | JSON_ENCODE_ANY);
        char *is = json_dumps(cv, JSON_COMPACT | JSON_ENCODE_ANY);
        char qis[UTIL_QUOTE_SIZE(80)], qsaid[UTIL_QUOTE_SIZE(80)];
        snprintf(msg, msgsize,
                 "%s is read-only: it is %s, the body says %s (leave it out, or send "
                 "what GET answered)",
                 k, util_quote(qis, sizeof qis, is ? is : "?", 80),
                 util_quote(qsaid, sizeof qsaid, said ? said : "?", 80));
        free(said);
        free(is);
        snprintf(field, fieldsize, "%s", k);
        return -1;
    }
    return 0;
}

static int check_read_only(struct req *r, json_t *current)
{
    char msg[256], field[72];
    if (gpu_check_read_only(r->body, current, msg, sizeof msg, field, sizeof field) < 0) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", field), "%s", msg);
        return -1;
    }
    return 0;
}

/* The GPU type named by the path as a one-row result (GPU_ROW_OUT); NULL after writing 404
 * (or, for a write with If-Match, 412: there is nothing to match) or 503. */
static PGresult *fetch_named(struct req *r, int for_write)
{
    struct db_error err;
    const char *params[] = {r->env, r->path_params[0]};
    PGresult *res = db_exec(&r->app->db,
                            "SELECT " GPU_ROW_OUT " FROM gpu_types g "
                            "WHERE environment = $1 AND name = $2",
                            2, params, &err);
    if (!res) {
        db_failed(r, &err);
        return NULL;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        if (for_write && r->in->if_match)
            resp_error(r, API_PRECONDITION_FAILED, json_pack("{s:s}", "field", "If-Match"),
                       "no GPU type '%s' in %s: If-Match has nothing to match", r->path_params[0],
                       r->env);
        else
            not_found(r, r->path_params[0]);
        return NULL;
    }
    return res;
}

/* If-Match against the row fetched: 0 when it holds (or there is none), else -1 after 412. */
static int check_if_match(struct req *r, PGresult *row)
{
    const char *im = r->in->if_match;
    const char *etag = PQgetvalue(row, 0, 1);
    if (!im || gpu_etag_matches(im, etag, 0))
        return 0;
    resp_header(r, "ETag: %s", etag);
    char qim[UTIL_QUOTE_SIZE(100)];
    resp_error(r, API_PRECONDITION_FAILED,
               json_pack("{s:s,s:s}", "field", "If-Match", "etag", etag),
               "GPU type '%s' in %s has changed: its ETag is %s, If-Match names %s; read it "
               "again",
               r->path_params[0], r->env, etag, util_quote(qim, sizeof qim, im, 100));
    return -1;
}

static void changed_meanwhile(struct req *r)
{
    resp_error(r, API_PRECONDITION_FAILED, json_pack("{s:s}", "field", "If-Match"),
               "GPU type '%s' in %s changed while this request was written: If-Match no longer "
               "holds; read it again",
               r->path_params[0], r->env);
}

void gpu_get(struct req *r)
{
    PGresult *res = fetch_named(r, 0);
    if (!res)
        return;
    const char *etag = PQgetvalue(res, 0, 1);
    if (r->in->if_none_match && gpu_etag_matches(r->in->if_none_match, etag, 1)) {
        resp_header(r, "ETag: %s", etag);
        resp_header(r, "Cache-Control: no-cache");
        PQclear(res);
        resp_bytes(r, 304, NULL, 0);
        return;
    }
    resp_header(r, "Cache-Control: no-cache");
    answer_row(r, res, 200, "found");
}

void gpu_create(struct req *r)
{
    if (validate_body(r, r->body, GPU_FULL) < 0)
        return;
    json_t *here = json_pack("{s:s}", "environment", r->env);
    int bad = check_read_only(r, here);
    json_decref(here);
    if (bad)
        return;
    const char *name = json_string_value(json_object_get(r->body, "name"));
    struct gpu_params p;
    to_params(r->body, r->env, name, &p);
    char sql[1024];
    snprintf(sql, sizeof sql, "%s RETURNING " GPU_ROW_OUT, sql_insert);
    struct db_error err;
    PGresult *res = db_exec(&r->app->db, sql, 11, p.v, &err);
    if (!res) {
        if (err.status == DB_QUERY_ERROR && strcmp(err.sqlstate, DB_SQLSTATE_UNIQUE_VIOLATION) == 0)
            resp_error(r, API_CONFLICT, json_pack("{s:s}", "field", "name"),
                       "GPU type '%s' exists already in %s", name, r->env);
        else
            db_failed(r, &err);
        return;
    }
    app_changed(r->app, METRICS_CHANGE_GPU_TYPES);
    resp_header(r, "Location: /llm-ops/v1/gpu-types/%s?env=%s", name, r->env);
    answer_row(r, res, 201, "created");
}

/* How often a PATCH or PUT without If-Match reads and writes again when another write came
 * between its read and its write, before it answers 409. */
#define GPU_WRITE_TRIES 10

/* PUT and PATCH: read the row, check If-Match and the read-only members, write the new
 * version only if the row is still the version read (its id and xmin), else read again —
 * or, under If-Match, answer 412. No lock is held across the round trips, and no change of
 * a concurrent writer is lost: the later write is computed from the earlier one. */
static void write_version(struct req *r, enum gpu_mode mode, const char *verb)
{
    for (int attempt = 0;; attempt++) {
        PGresult *cur = fetch_named(r, 1);
        if (!cur)
            return;
        if (check_if_match(r, cur) < 0) {
            PQclear(cur);
            return;
        }
        json_t *obj = row_json(cur, 0);
        char id[24], xmin[24];
        snprintf(id, sizeof id, "%s", PQgetvalue(cur, 0, 2));
        snprintf(xmin, sizeof xmin, "%s", PQgetvalue(cur, 0, 3));
        PQclear(cur);
        if (!obj) {
            resp_error(r, API_INTERNAL, NULL, "internal error (request %s)", r->request_id);
            return;
        }
        if (check_read_only(r, obj) < 0) {
            json_decref(obj);
            return;
        }
        if (mode == GPU_PARTIAL)
            json_object_update(obj, r->body);
        struct gpu_params p;
        to_params(mode == GPU_PARTIAL ? obj : r->body, r->env, r->path_params[0], &p);
        const char *params[13];
        memcpy(params, p.v, sizeof p.v);
        params[11] = id;
        params[12] = xmin;
        struct db_error err;
        PGresult *res = db_exec(&r->app->db,
                                "UPDATE gpu_types g SET " GPU_COLUMNS_PARAMS ", updated_at = now() "
                                "WHERE environment = $1 AND name = $2 AND id = $12::bigint "
                                "AND xmin = $13::xid RETURNING " GPU_ROW_OUT,
                                13, params, &err);
        json_decref(obj);
        if (!res) {
            db_failed(r, &err);
            return;
        }
        if (PQntuples(res) == 1) {
            app_changed(r->app, METRICS_CHANGE_GPU_TYPES);
            answer_row(r, res, 200, verb);
            return;
        }
        PQclear(res);
        if (r->in->if_match) {
            changed_meanwhile(r);
            return;
        }
        if (attempt + 1 >= GPU_WRITE_TRIES) {
            resp_error(r, API_CONFLICT, NULL,
                       "GPU type '%s' in %s was changed by others %d times while this request "
                       "was written; send it again",
                       r->path_params[0], r->env, GPU_WRITE_TRIES);
            return;
        }
    }
}

void gpu_replace(struct req *r)
{
    json_t *name = json_object_get(r->body, "name");
    if (!name) {
        json_object_set_new(r->body, "name", json_string(r->path_params[0]));
    } else if (!json_is_string(name) || strcmp(json_string_value(name), r->path_params[0]) != 0) {
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "name"),
                   "name in the body must match the path ('%s'); a GPU type cannot be renamed",
                   r->path_params[0]);
        return;
    }
    if (validate_body(r, r->body, GPU_FULL) < 0)
        return;
    write_version(r, GPU_FULL, "replaced");
}

void gpu_update(struct req *r)
{
    if (validate_body(r, r->body, GPU_PARTIAL) < 0)
        return;
    write_version(r, GPU_PARTIAL, "updated");
}

void gpu_delete(struct req *r)
{
    struct db_error err;
    char id[24] = "", xmin[24] = "";
    if (r->in->if_match) {
        PGresult *cur = fetch_named(r, 1);
        if (!cur)
            return;
        if (check_if_match(r, cur) < 0) {
            PQclear(cur);
            return;
        }
        snprintf(id, sizeof id, "%s", PQgetvalue(cur, 0, 2));
        snprintf(xmin, sizeof xmin, "%s", PQgetvalue(cur, 0, 3));
        PQclear(cur);
    }
    const char *params[] = {r->env, r->path_params[0], id[0] ? id : NULL, id[0] ? xmin : NULL};
    PGresult *res = db_exec(&r->app->db,
                            "DELETE FROM gpu_types WHERE environment = $1 AND name = $2 "
                            "AND ($3::bigint IS NULL OR (id = $3::bigint AND xmin = $4::xid)) "
                            "RETURNING name",
                            4, params, &err);
    if (!res) {
        db_failed(r, &err);
        return;
    }
    int n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        if (id[0])
            changed_meanwhile(r);
        else
            not_found(r, r->path_params[0]);
        return;
    }
    app_changed(r->app, METRICS_CHANGE_GPU_TYPES);
    char msg[160];
    snprintf(msg, sizeof msg, "GPU type '%s' deleted from %s", r->path_params[0], r->env);
    resp_success(r, 200, msg, NULL);
}

/* ---- seed ---- */

int gpu_seed(struct db *db, const struct llmops_conf *conf, json_t *seed, int *inserted, int *kept,
             char *msg, size_t msgsize)
{
    *inserted = *kept = 0;
    json_t *envs = json_object_get(seed, "environments");
    if (!json_is_object(seed) || !json_is_object(envs)) {
        snprintf(msg, msgsize, "the seed must be {\"environments\": {\"ENV\": [GPU types]}}");
        return -1;
    }
    /* Validate everything first: a bad seed inserts nothing. */
    const char *env;
    json_t *list;
    json_object_foreach(envs, env, list)
    {
        if (!json_is_array(list)) {
            snprintf(msg, msgsize, "environments.%s must be an array", env);
            return -1;
        }
        size_t i;
        json_t *t;
        json_array_foreach(list, i, t)
        {
            char vmsg[256], field[72];
            if (gpu_validate(t, GPU_FULL, vmsg, sizeof vmsg, field, sizeof field) < 0) {
                snprintf(msg, msgsize, "environments.%s[%zu].%s: %s", env, i, field, vmsg);
                return -1;
            }
        }
    }
    json_object_foreach(envs, env, list)
    {
        if (conf_env_index(conf, env) < 0) {
            log_warning("seed: environment '%s' is not configured; its GPU types are skipped", env);
            continue;
        }
        size_t i;
        json_t *t;
        json_array_foreach(list, i, t)
        {
            struct gpu_params p;
            to_params(t, env, json_string_value(json_object_get(t, "name")), &p);
            char sql[1024];
            snprintf(sql, sizeof sql, "%s ON CONFLICT (environment, name) DO NOTHING", sql_insert);
            struct db_error err;
            PGresult *res = db_exec(db, sql, 11, p.v, &err);
            if (!res) {
                snprintf(msg, msgsize, "environments.%s[%zu]: %s", env, i, err.message);
                return -1;
            }
            if (strcmp(PQcmdTuples(res), "1") == 0)
                (*inserted)++;
            else
                (*kept)++;
            PQclear(res);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ use by deployments and jobs */

int gpu_resolve(struct db *db, const char *env, const char *name, struct gpu_pick *out,
                json_t **valid, int *disabled, struct db_error *err)
{
    const char *p[] = {env, name};
    PGresult *res = db_exec(db,
                            "SELECT name, resource_name, node_selector_key, node_selector_value,"
                            " coalesce(mig_profile, ''), capacity, enabled, name = $2"
                            " FROM gpu_types WHERE environment = $1 ORDER BY name",
                            2, p, err);
    if (!res)
        return -1;
    int found = 0, bad = 0;
    *disabled = 0;
    *valid = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        int enabled = strcmp(PQgetvalue(res, i, 6), "t") == 0;
        if (enabled)
            json_array_append_new(*valid, json_string(PQgetvalue(res, i, 0)));
        if (strcmp(PQgetvalue(res, i, 7), "t") != 0)
            continue;
        if (!enabled) {
            *disabled = 1;
            continue;
        }
        found = 1;
        memset(out, 0, sizeof *out);
        snprintf(out->name, sizeof out->name, "%s", PQgetvalue(res, i, 0));
        snprintf(out->resource_name, sizeof out->resource_name, "%s", PQgetvalue(res, i, 1));
        snprintf(out->node_key, sizeof out->node_key, "%s", PQgetvalue(res, i, 2));
        snprintf(out->node_value, sizeof out->node_value, "%s", PQgetvalue(res, i, 3));
        snprintf(out->mig_profile, sizeof out->mig_profile, "%s", PQgetvalue(res, i, 4));
        out->capacity = db_int(res, i, 5, &bad);
    }
    PQclear(res);
    if (bad) {
        json_decref(*valid);
        *valid = NULL;
        err->status = DB_QUERY_ERROR;
        snprintf(err->message, sizeof err->message, "a GPU type's capacity is not a number");
        return -1;
    }
    if (found) {
        json_decref(*valid);
        *valid = NULL;
    }
    return found;
}

int gpu_lock_usage(struct db *db, const char *env, const char *type, const char *exclude,
                   long long *used, long long *capacity, struct db_error *err)
{
    const char *p[] = {env, type, exclude};
    /* The lock first, in a statement of its own: in READ COMMITTED the next statement's
     * snapshot then sees every create that held the lock before us. */
    PGresult *res =
        db_exec(db, "SELECT pg_advisory_xact_lock(8008, hashtext($1 || '/' || $2))", 2, p, err);
    if (!res)
        return -1;
    PQclear(res);
    res = db_exec(db,
                  "SELECT coalesce((SELECT sum(d.gpu_count * d.replicas_max"
                  "   * CASE WHEN d.canary IS NULL THEN 1 ELSE 2 END) FROM deployments d"
                  "   WHERE d.environment = $1 AND d.gpu_type = $2 AND d.state <> 'deleted'"
                  "   AND ($3::text IS NULL OR d.id <> $3)), 0)"
                  " + coalesce((SELECT sum(j.gpu_count) FROM training_jobs j"
                  "   WHERE j.environment = $1 AND j.gpu_type = $2"
                  "   AND j.status = 'RUNNING'), 0),"
                  " coalesce((SELECT capacity FROM gpu_types WHERE environment = $1 AND name = $2),"
                  "   0)",
                  3, p, err);
    if (!res)
        return -1;
    int bad = 0;
    *used = db_int(res, 0, 0, &bad);
    *capacity = db_int(res, 0, 1, &bad);
    PQclear(res);
    if (bad) {
        err->status = DB_QUERY_ERROR;
        snprintf(err->message, sizeof err->message, "the GPUs in use could not be counted");
        return -1;
    }
    return 0;
}

void gpu_refuse_capacity(struct req *r, const char *env, const char *type, long long requested,
                         long long used, long long capacity)
{
    long long free_ = capacity > used ? capacity - used : 0;
    resp_error(r, API_CONFLICT,
               json_pack("{s:s,s:s,s:I,s:I,s:I}", "field", "gpu_count", "gpu_type", type,
                         "requested", (json_int_t)requested, "free", (json_int_t)free_, "capacity",
                         (json_int_t)capacity),
               "not enough GPUs of type '%s' in %s: %lld requested, %lld free of %lld", type, env,
               requested, free_, capacity);
}

void gpu_refuse_type(struct req *r, const char *env, const char *name, int disabled, json_t *valid)
{
    char list[600] = "", q[UTIL_QUOTE_SIZE(64)];
    size_t i, used = 0;
    json_t *v;
    json_array_foreach(valid, i, v)
    {
        int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "",
                         json_string_value(v));
        if (w < 0 || (size_t)w >= sizeof list - used)
            break;
        used += (size_t)w;
    }
    resp_error(r, API_VALIDATION_FAILED,
               json_pack("{s:s,s:o}", "field", "gpu_type", "valid", valid),
               "gpu_type '%s' is %s in %s; valid: %s", util_quote(q, sizeof q, name, 64),
               disabled ? "disabled" : "not a GPU type", env,
               used ? list
                    : "none (see GET "
                      "/llm-ops/v1/gpu-types)");
}
