/* The response header lines a tool (or anything on the way: a proxy, a CDN) sends, through
 * the parser the core's HTTP client keeps them with (core/httpclient.c, ABI 1.1
 * llmops_http_response.headers). Whatever comes in, the kept list is well-formed
 * "name\0value\0" pairs ending at its length, names are the ones asked for, in lower case,
 * no value holds a line break, and http_header's lookup stays inside the list. */
#include "httpclient.h"
#include "log.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static const char *const kept[] = {"location",      "link",          "etag",
                                   "retry-after",   "warning",       "content-length",
                                   "last-modified", "x-repo-commit", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct httpc *c;
    if (!c) {
        log_set_level(LOG_LVL_SILENT);
        struct httpc_config cfg = {.base_url = "http://127.0.0.1:9", .verify_tls = 1};
        c = httpc_new(&cfg);
        CHECK(c != NULL);
    }
    const char *const want[] = {"X-Repo-Commit", NULL};
    char *list = NULL;
    size_t len = 0;
    if (httpc_parse_headers(c, (const char *)data, size, want, &list, &len) != 0)
        return 0;
    size_t off = 0;
    while (off < len) {
        const char *name = list + off;
        size_t nl = strnlen(name, len - off);
        CHECK(nl > 0 && off + nl < len);
        int known = 0;
        for (size_t i = 0; kept[i]; i++)
            if (strcmp(name, kept[i]) == 0)
                known = 1;
        CHECK(known);
        const char *value = name + nl + 1;
        size_t vl = strnlen(value, len - off - nl - 1);
        CHECK(off + nl + 1 + vl < len);
        CHECK(!memchr(value, '\n', vl));
        off += nl + 1 + vl + 1;
    }
    CHECK(off == len && list[len] == '\0');
    struct llmops_http_response resp = {.size = sizeof resp, .headers = list};
    for (size_t i = 0; kept[i]; i++) {
        const char *v = httpc_response_header(&resp, kept[i]);
        CHECK(!v || (v > list && v <= list + len));
    }
    free(list);
    return 0;
}
