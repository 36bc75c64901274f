#include "check_suites.h"
#include "http.h"
#include "router.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static enum route_match_result match(const char *method, const char *uri, struct req *r,
                                     char *allow, size_t n)
{
    static struct http_input in;
    memset(r, 0, sizeof *r);
    memset(&in, 0, sizeof in);
    in.uri = uri;
    r->in = &in;
    ck_assert_int_eq(http_parse_uri(r), 0);
    return route_match(r, method, allow, n);
}

START_TEST(test_match)
{
    struct req r;
    char allow[64];
    ck_assert_int_eq(match("GET", "/llm-ops/v1/health", &r, allow, sizeof allow), ROUTE_FOUND);
    ck_assert_str_eq(r.route->pattern, "/llm-ops/v1/health");
    http_req_free(&r);
    /* a route without parameters leaves none behind (ASan found a stale one once) */
    ck_assert_int_eq(match("POST", "/llm-ops/v1/gpu-types", &r, allow, sizeof allow), ROUTE_FOUND);
    for (int i = 0; i < HTTP_MAX_PATH_PARAMS; i++)
        ck_assert_ptr_null(r.path_params[i]);
    http_req_free(&r);
    ck_assert_int_eq(
        match("GET", "/llm-ops/v1/gpu-types/nvidia-t4?env=dev", &r, allow, sizeof allow),
        ROUTE_FOUND);
    ck_assert_str_eq(r.route->pattern, "/llm-ops/v1/gpu-types/{name}");
    ck_assert_str_eq(r.path_params[0], "nvidia-t4");
    ck_assert_str_eq(http_query(&r, "env"), "dev");
    http_req_free(&r);
    /* a doubled or trailing slash does not change the route */
    ck_assert_int_eq(match("GET", "/llm-ops//v1/health/", &r, allow, sizeof allow), ROUTE_FOUND);
    http_req_free(&r);
    /* percent-escapes are decoded per segment: %2F stays inside the parameter */
    ck_assert_int_eq(match("DELETE", "/llm-ops/v1/gpu-types/a%2Fb", &r, allow, sizeof allow),
                     ROUTE_FOUND);
    ck_assert_str_eq(r.path_params[0], "a/b");
    http_req_free(&r);
}
END_TEST

START_TEST(test_no_match)
{
    struct req r;
    char allow[64];
    ck_assert_int_eq(match("GET", "/llm-ops/v1/nothing", &r, allow, sizeof allow), ROUTE_NO_PATH);
    http_req_free(&r);
    ck_assert_int_eq(match("GET", "/llm-ops/v1/health/extra", &r, allow, sizeof allow),
                     ROUTE_NO_PATH);
    http_req_free(&r);
    ck_assert_int_eq(match("GET", "/llm-ops/v1", &r, allow, sizeof allow), ROUTE_NO_PATH);
    http_req_free(&r);
    ck_assert_int_eq(match("DELETE", "/llm-ops/v1/gpu-types", &r, allow, sizeof allow),
                     ROUTE_NO_METHOD);
    ck_assert_str_eq(allow, "GET, POST");
    http_req_free(&r);
    ck_assert_int_eq(match("POST", "/llm-ops/v1/gpu-types/x", &r, allow, sizeof allow),
                     ROUTE_NO_METHOD);
    ck_assert_str_eq(allow, "GET, PUT, PATCH, DELETE");
    http_req_free(&r);
}
END_TEST

START_TEST(test_roles)
{
    size_t n;
    const struct route *t = route_table(&n);
    for (size_t i = 0; i < n; i++) {
        /* only health is public; every write needs at least operator (a POST .../search
         * carries its query in a body and writes nothing) */
        if (strcmp(t[i].pattern, "/llm-ops/v1/health") == 0)
            ck_assert_int_eq(t[i].min_role, ROLE_PUBLIC);
        else
            ck_assert_int_ge(t[i].min_role, ROLE_READER);
        size_t pl = strlen(t[i].pattern);
        int search = pl > 7 && strcmp(t[i].pattern + pl - 7, "/search") == 0;
        if (strcmp(t[i].method, "GET") != 0 && !search)
            ck_assert_int_ge(t[i].min_role, ROLE_OPERATOR);
    }
}
END_TEST

/* doc/openapi.json lists exactly the routes of the table, with the same minimum role. */
START_TEST(test_openapi_matches_table)
{
    json_error_t err;
    json_t *doc = json_load_file(LLMOPS_SOURCE_DIR "/doc/openapi.json", 0, &err);
    if (!doc)
        ck_abort_msg("doc/openapi.json: line %d: %s", err.line, err.text);
    json_t *paths = json_object_get(doc, "paths");
    ck_assert(json_is_object(paths));
    size_t n;
    const struct route *t = route_table(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_object_get(paths, t[i].pattern);
        if (!item)
            ck_abort_msg("route %s %s is not in doc/openapi.json", t[i].method, t[i].pattern);
        char lower[16];
        size_t k = 0;
        for (; t[i].method[k] && k < sizeof lower - 1; k++)
            lower[k] = (char)(t[i].method[k] | 0x20);
        lower[k] = '\0';
        json_t *op = json_object_get(item, lower);
        if (!op)
            ck_abort_msg("route %s %s is not in doc/openapi.json", t[i].method, t[i].pattern);
        const char *role = json_string_value(json_object_get(op, "x-min-role"));
        if (!role || strcmp(role, role_name(t[i].min_role)) != 0)
            ck_abort_msg("%s %s: x-min-role is %s, the table says %s", t[i].method, t[i].pattern,
                         role ? role : "(none)", role_name(t[i].min_role));
    }
    static const char *const methods[] = {"get",   "put",  "post",    "delete",
                                          "patch", "head", "options", "trace"};
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item)
    {
        for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
            if (!json_object_get(item, methods[m]))
                continue;
            int found = 0;
            for (size_t i = 0; i < n; i++)
                if (strcmp(t[i].pattern, path) == 0 && strcasecmp(t[i].method, methods[m]) == 0)
                    found = 1;
            if (!found)
                ck_abort_msg("doc/openapi.json has %s %s, the route table does not", methods[m],
                             path);
        }
    }
    json_decref(doc);
}
END_TEST

Suite *make_router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *core = tcase_create("Core");
    tcase_add_test(core, test_match);
    tcase_add_test(core, test_no_match);
    tcase_add_test(core, test_roles);
    tcase_add_test(core, test_openapi_matches_table);
    suite_add_tcase(s, core);
    return s;
}
