/* The run filter language and order_by entries (core/tracking.c): untrusted text from API
 * clients. Whatever parses must have the clause shape the plugin interface promises. */
#include "tracking.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not CHECK(): the fuzz build may define NDEBUG. */
#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char msg[300];
    json_t *c = track_parse_filter(s, msg, sizeof msg);
    if (c) {
        CHECK(json_array_size(c) <= LLMOPS_TRACKING_MAX_CLAUSES);
        size_t i;
        json_t *x;
        json_array_foreach(c, i, x)
        {
            CHECK(json_is_string(json_object_get(x, "field")));
            const char *key = json_string_value(json_object_get(x, "key"));
            CHECK(key && strlen(key) >= 1 && strlen(key) <= LLMOPS_TRACKING_KEY_MAX);
            CHECK(json_is_string(json_object_get(x, "op")));
            CHECK(json_object_get(x, "value"));
        }
        json_decref(c);
    } else {
        CHECK(strlen(msg) > 0);
        /* the message quotes the input: always UTF-8, whatever the input's bytes */
        json_t *m = json_string(msg);
        CHECK(m);
        json_decref(m);
    }
    json_t *list = json_pack("[s]", s);
    if (list) {
        json_t *o = track_parse_order_by(list, msg, sizeof msg);
        if (!o) {
            json_t *m = json_string(msg);
            CHECK(m);
            json_decref(m);
        }
        json_decref(o);
        json_decref(list);
    }
    free(s);
    return 0;
}
