#include "router.h"

#include <stdio.h>
#include <string.h>

/* Does pattern match the request's segments? Fills params when it does and returns 1 plus
 * the number of literal segments (a literal beats a {param} in the same place). */
static int pattern_match(const char *pattern, struct req *r, const char **params)
{
    int seg = 0, np = 0, literal = 0;
    const char *p = pattern;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (seg >= r->n_segments)
            return 0;
        const char *s = r->segments[seg];
        if (p[0] == '{') {
            if (!*s || np >= HTTP_MAX_PATH_PARAMS)
                return 0;
            params[np++] = s;
        } else if (strlen(s) != len || memcmp(s, p, len) != 0) {
            return 0;
        } else {
            literal++;
        }
        seg++;
        p += len;
    }
    return seg == r->n_segments ? 1 + literal : 0;
}

enum route_match_result route_match(struct req *r, const char *method, char *allow,
                                    size_t allow_size)
{
    size_t n;
    const struct route *t = route_table(&n);
    const char *params[HTTP_MAX_PATH_PARAMS] = {0};
    size_t used = 0;
    if (allow_size)
        allow[0] = '\0';
    /* The most literal patterns that match the path: /runs/search is not /runs/{id}. */
    int best = 0;
    for (size_t i = 0; i < n; i++) {
        int m = pattern_match(t[i].pattern, r, params);
        if (m > best)
            best = m;
    }
    if (!best)
        return ROUTE_NO_PATH;
    for (size_t i = 0; i < n; i++) {
        memset(params, 0, sizeof params); /* a shorter pattern leaves no stale values */
        if (pattern_match(t[i].pattern, r, params) != best)
            continue;
        if (strcmp(t[i].method, method) == 0) {
            r->route = &t[i];
            memcpy(r->path_params, params, sizeof params);
            return ROUTE_FOUND;
        }
        int w = snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "", t[i].method);
        if (w > 0 && (size_t)w < allow_size - used)
            used += (size_t)w;
    }
    return ROUTE_NO_METHOD;
}
