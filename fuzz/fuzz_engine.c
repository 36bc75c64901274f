/* The category engine's input checks (core/engine.c) and the search cursor (core/tracking.c):
 * JSON from API clients and the jobs' stored payloads, and page tokens clients send back.
 * Whatever the bytes, a refusal names a path and says why in UTF-8; a cursor that decodes is
 * an object that encodes again to a cursor that decodes to the same object. */
#include "engine.h"
#include "tracking.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): the fuzz build may define NDEBUG. */
#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *in = json_loadb((const char *)data, size, 0, NULL);
    if (in) {
        size_t n;
        const struct llmops_op_desc *t = engine_ops(LLMOPS_CATEGORY_EXPERIMENT_TRACKING, &n);
        for (size_t i = 0; i < n; i++) {
            char path[256], msg[512];
            if (engine_validate(t[i].in, in, path, sizeof path, msg, sizeof msg) < 0) {
                CHECK(msg[0]);
                json_t *m = json_string(msg), *p = json_string(path);
                CHECK(m && p);
                json_decref(m);
                json_decref(p);
            }
        }
        json_decref(in);
    }
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    json_t *c = track_cursor_decode(s);
    if (c) {
        CHECK(json_is_object(c));
        char *again = track_cursor_encode(c);
        CHECK(again);
        json_t *back = track_cursor_decode(again);
        CHECK(back && json_equal(back, c));
        json_decref(back);
        free(again);
        json_decref(c);
    }
    free(s);
    return 0;
}
