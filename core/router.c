#include "router.h"

#include <stdio.h>
#include <string.h>

/* Does pattern match the request's segments? Fills params when it does. */
static int pattern_match(const char *pattern, struct req *r, const char **params)
{
    int seg = 0, np = 0;
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
        }
        seg++;
        p += len;
    }
    return seg == r->n_segments;
}

enum route_match_result route_match(struct req *r, const char *method, char *allow,
                                    size_t allow_size)
{
    size_t n;
    const struct route *t = route_table(&n);
    const char *params[HTTP_MAX_PATH_PARAMS] = {0};
    int path_seen = 0;
    size_t used = 0;
    if (allow_size)
        allow[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        memset(params, 0, sizeof params); /* a shorter pattern leaves no stale values */
        if (!pattern_match(t[i].pattern, r, params))
            continue;
        if (strcmp(t[i].method, method) == 0) {
            r->route = &t[i];
            memcpy(r->path_params, params, sizeof params);
            return ROUTE_FOUND;
        }
        path_seen = 1;
        int w = snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "", t[i].method);
        if (w > 0 && (size_t)w < allow_size - used)
            used += (size_t)w;
    }
    return path_seen ? ROUTE_NO_METHOD : ROUTE_NO_PATH;
}
