/* The Kubernetes client's parsing of what an API server sends back
 * (plugins/lib/k8s/k8s_parse.c, compiled in): the first byte picks the HTTP status, the rest
 * is the response body, classified as a Status (422 causes' fields, reasons), read as a list,
 * and taken as a Warning header value (the pruned field). The serving checks' RFC 3339 reader
 * (plugins/lib/serving/sv.c) gets the bytes as a creationTimestamp. */
#include "k8s.h"
#include "sv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int statuses[] = {200, 400, 401, 403, 404, 409, 415, 422, 429, 500, 503, 504};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct k8s_fault f;
    k8s_status_parse(status, body, len, &f);
    if (strlen(f.what) >= sizeof f.what || strlen(f.fields) >= sizeof f.fields)
        abort();
    char *text = malloc(len + 1);
    if (!text)
        return 0;
    memcpy(text, body, len);
    text[len] = '\0';
    char field[64];
    if (k8s_warning_unknown_field(text, field, sizeof field) && strlen(field) >= sizeof field)
        abort();
    (void)sv_rfc3339_ms(text);
    json_t *o = k8s_parse_object(body, len);
    if (o) {
        json_t *items;
        const char *cont;
        if (k8s_list_parse(o, &items, &cont) == 0 && cont && !*cont)
            abort();
        json_decref(o);
    }
    char *q = k8s_query_escape(text);
    free(q);
    free(text);
    return 0;
}
