/* The kit's mock host keeps the header lines of a canned answer, or of a test server's real
 * answer, with the parser in kit/mock-host.c (add_header_line), and reads key=value tables.
 * Whatever comes in: http() answers, the kept list is well-formed "name\0value\0" pairs ended
 * by an empty name, names are lower case and hold no ':' or line break, http_header finds
 * only what the list holds, and a table either loads or is refused. Input: the header lines,
 * then a NUL and a key=value table line. */
#include "llmops-mock-host.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 2);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = text[size + 1] = '\0';
    const char *table_line = text + strlen(text) + 1; /* after the first NUL, or "" */
    if (table_line > text + size)
        table_line = "";
    struct llmops_mock *m = llmops_mock_new("fuzz", "fuzz");
    CHECK(m != NULL);
    const struct llmops_host *h = llmops_mock_host(m);
    CHECK(llmops_mock_http_add(m, "GET", "/x", 200, text, "body") == 0);
    const char *const want[] = {"X-Repo-Commit", "x-fuzz", NULL};
    struct llmops_http_request req = {
        .size = sizeof req, .method = "GET", .path = "/x", .want_headers = want};
    struct llmops_http_response r = {.size = sizeof r};
    struct llmops_error err = {.size = sizeof err};
    CHECK(h->http(h, &req, &r, &err) == 0);
    CHECK(r.headers != NULL);
    for (const char *p = r.headers; *p;) {
        for (const char *q = p; *q; q++)
            CHECK(!(*q >= 'A' && *q <= 'Z') && *q != ':' && *q != '\n' && *q != '\r');
        const char *v = p + strlen(p) + 1;
        CHECK(h->http_header(&r, p) != NULL);
        p = v + strlen(v) + 1;
    }
    const char *e = h->http_header(&r, "etag");
    CHECK(!e || (e > r.headers && strchr(e, '\n') == NULL));
    CHECK(h->http_header(&r, "x-not-kept") == NULL);
    h->http_free(&r);
    CHECK(llmops_mock_http_unreleased(m) == 0);
    const char *const table[] = {table_line, NULL};
    char msg[300];
    if (llmops_mock_config_table(m, table, msg, sizeof msg) == 0 && strchr(table_line, '=')) {
        CHECK(llmops_mock_config_check(m, NULL, msg, sizeof msg) >= 0);
    }
    llmops_mock_free(m);
    free(text);
    return 0;
}
