/* The request line: first byte picks the method, the rest is the URI (path and query); the
 * query's limit and after go through the list cursor check (page.c) as both lists read them. */
#include "http.h"
#include "page.h"
#include "router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    if (size < 1 || size > 16384)
        return 0;
    char *uri = malloc(size);
    memcpy(uri, data + 1, size - 1);
    uri[size - 1] = '\0';
    struct http_input in = {.method = methods[data[0] % 6], .uri = uri};
    struct req r;
    memset(&r, 0, sizeof r);
    r.in = &in;
    if (http_parse_uri(&r) == 0) {
        char allow[128];
        route_match(&r, in.method, allow, sizeof allow);
        for (int i = 0; i < r.n_query; i++)
            (void)http_query(&r, r.query[i].name);
        struct page pg;
        if (page_args(&r, data[0] & 8 ? PAGE_CURSOR_ROW_ID : PAGE_CURSOR_JOB_ID, 100, 1000, &pg) ==
                0 &&
            (pg.limit < 1 || pg.limit > 1000 || (pg.after && !*pg.after) || pg.after_id < 0))
            abort();
    }
    http_req_free(&r);
    free(uri);
    return 0;
}
