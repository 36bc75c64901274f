#include "page.h"

#include "util.h"

#include <stdio.h>

#include <string.h>

static const char *cursor_shape(enum page_cursor c)
{
    return c == PAGE_CURSOR_ROW_ID   ? "an outbox id, an integer of 0 or more"
           : c == PAGE_CURSOR_DEP_ID ? "a deployment id, dep_ and 24 hex digits"
                                     : "a training job id, job_ and 24 hex digits";
}

/* PREFIX_ and 24 lowercase hex digits (prefix "job" or "dep") */
static int valid_job_id(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0 || s[n] != '_' || strlen(s) != n + 25)
        return 0;
    for (const char *p = s + n + 1; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static void bad_cursor(struct req *r, enum page_cursor c, const char *after, const char *why)
{
    char q[UTIL_QUOTE_SIZE(40)];
    resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "after"),
               "after '%s' %s: pass the next_cursor of the previous page (%s)",
               util_quote(q, sizeof q, after, 40), why, cursor_shape(c));
}

int page_args(struct req *r, enum page_cursor cursor, long long def_limit, long long max_limit,
              struct page *out)
{
    const char *limit_s = http_query(r, "limit"), *why;
    out->limit = def_limit;
    out->after = http_query(r, "after");
    out->after_id = 0;
    if (limit_s && util_parse_int(limit_s, 1, max_limit, &out->limit, &why) < 0) {
        char q[UTIL_QUOTE_SIZE(32)];
        resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s}", "field", "limit"),
                   "limit '%s' %s (1-%lld)", util_quote(q, sizeof q, limit_s, 32), why, max_limit);
        return -1;
    }
    if (!out->after)
        return 0;
    if (cursor == PAGE_CURSOR_ROW_ID) {
        if (util_parse_int(out->after, 0, INT64_MAX, &out->after_id, &why) < 0) {
            bad_cursor(r, cursor, out->after, why);
            return -1;
        }
        return 0;
    }
    if (!valid_job_id(out->after, cursor == PAGE_CURSOR_DEP_ID ? "dep" : "job")) {
        bad_cursor(r, cursor, out->after, "is not a cursor of this list");
        return -1;
    }
    return 0;
}

void page_unknown_cursor(struct req *r, enum page_cursor cursor, const char *after)
{
    bad_cursor(r, cursor, after, "names nothing in this list");
}

int page_state_arg(struct req *r, const char *const *states, size_t n, const char **state)
{
    *state = http_query(r, "state");
    for (size_t i = 0; *state && i < n; i++)
        if (strcmp(*state, states[i]) == 0)
            return 0;
    if (!*state)
        return 0;
    json_t *valid = json_array();
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(valid, json_string(states[i]));
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", states[i]);
        if (w > 0 && (size_t)w < sizeof list - used)
            used += (size_t)w;
    }
    char q[UTIL_QUOTE_SIZE(32)];
    resp_error(r, API_VALIDATION_FAILED, json_pack("{s:s,s:o}", "field", "state", "valid", valid),
               "unknown state '%s'; valid: %s", util_quote(q, sizeof q, *state, 32), list);
    return -1;
}

int page_rows(const PGresult *res, const struct page *pg,
              json_t *(*row)(const PGresult *res, int i, int *bad), json_t **list, json_t **next)
{
    int n = PQntuples(res), more = n > pg->limit, bad = 0;
    *list = json_array();
    for (int i = 0; i < n && i < pg->limit; i++)
        json_array_append_new(*list, row(res, i, &bad));
    *next = more ? json_integer(db_int(res, (int)pg->limit - 1, 0, &bad)) : json_null();
    return bad;
}
