#include "router.h"

#include <stdio.h>
#include <string.h>

/* The route table's patterns split into segments once per process: matching a request
 * then compares lengths and bytes only, with no parsing of the patterns per request
 * (parsing every pattern twice per request showed in profiles). */
struct cseg {
    const char *s;
    size_t len;
    int param; /* {name} */
};
struct croute {
    int nseg;
    int ok; /* a pattern with more segments or params than a request can have never matches */
    struct cseg seg[HTTP_MAX_SEGMENTS];
};

static const struct route *table;
static size_t table_n;
static struct croute *compiled;

static void compile(void)
{
    static struct croute store[512];
    table = route_table(&table_n);
    if (table_n > sizeof store / sizeof store[0])
        table_n = sizeof store / sizeof store[0];
    for (size_t i = 0; i < table_n; i++) {
        struct croute *c = &store[i];
        int np = 0;
        c->ok = 1;
        c->nseg = 0;
        for (const char *p = table[i].pattern; *p;) {
            while (*p == '/')
                p++;
            if (!*p)
                break;
            const char *end = strchr(p, '/');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (c->nseg >= HTTP_MAX_SEGMENTS) {
                c->ok = 0;
                break;
            }
            struct cseg *s = &c->seg[c->nseg++];
            s->s = p;
            s->len = len;
            s->param = p[0] == '{';
            if (s->param && ++np > HTTP_MAX_PATH_PARAMS)
                c->ok = 0;
            p += len;
        }
    }
    compiled = store;
}

/* Does route c match the request's segments (lengths in lens)? Fills params when it does and
 * returns 1 plus the number of literal segments (a literal beats a {param} in the same
 * place), else 0. */
static int croute_match(const struct croute *c, const struct req *r, const size_t *lens,
                        const char **params)
{
    if (!c->ok || c->nseg != r->n_segments)
        return 0;
    int np = 0, literal = 0;
    for (int i = 0; i < c->nseg; i++) {
        const struct cseg *s = &c->seg[i];
        if (s->param) {
            if (!lens[i])
                return 0;
            params[np++] = r->segments[i];
        } else if (lens[i] != s->len || memcmp(r->segments[i], s->s, s->len) != 0) {
            return 0;
        } else {
            literal++;
        }
    }
    return 1 + literal;
}

enum route_match_result route_match(struct req *r, const char *method, char *allow,
                                    size_t allow_size)
{
    if (!compiled)
        compile();
    size_t lens[HTTP_MAX_SEGMENTS];
    for (int i = 0; i < r->n_segments && i < HTTP_MAX_SEGMENTS; i++)
        lens[i] = strlen(r->segments[i]);
    if (allow_size)
        allow[0] = '\0';
    /* The most literal patterns that match the path: /runs/search is not /runs/{id}. Among
     * them, the one of this method. */
    int best = 0;
    long found = -1;
    const char *params[HTTP_MAX_PATH_PARAMS];
    const char *found_params[HTTP_MAX_PATH_PARAMS] = {0};
    for (size_t i = 0; i < table_n; i++) {
        memset(params, 0, sizeof params); /* a shorter pattern leaves no stale values */
        int m = croute_match(&compiled[i], r, lens, params);
        if (m == 0 || m < best)
            continue;
        if (m > best) {
            best = m;
            found = -1;
        }
        if (found < 0 && strcmp(table[i].method, method) == 0) {
            found = (long)i;
            memcpy(found_params, params, sizeof params);
        }
    }
    if (!best)
        return ROUTE_NO_PATH;
    if (found >= 0) {
        r->route = &table[found];
        memcpy(r->path_params, found_params, sizeof found_params);
        return ROUTE_FOUND;
    }
    size_t used = 0;
    for (size_t i = 0; i < table_n; i++) {
        if (croute_match(&compiled[i], r, lens, params) != best)
            continue;
        int w =
            snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "", table[i].method);
        if (w > 0 && (size_t)w < allow_size - used)
            used += (size_t)w;
    }
    return ROUTE_NO_METHOD;
}
