/* A request body: Content-Length and JSON parsing, then GPU-type validation both ways. */
#include "gpu.h"
#include "http.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
    const uint8_t *p;
    size_t left;
};

static long rd(void *ud, char *buf, size_t n)
{
    struct mem *m = ud;
    if (n > m->left)
        n = m->left;
    memcpy(buf, m->p, n);
    m->p += n;
    m->left -= n;
    return (long)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mem m = {data, size};
    char len[32];
    snprintf(len, sizeof len, "%zu", size);
    struct http_input in = {.method = "POST",
                            .uri = "/",
                            .content_type = "application/json",
                            .content_length = len,
                            .read_body = rd,
                            .body_ud = &m};
    struct req r;
    memset(&r, 0, sizeof r);
    r.in = &in;
    if (http_read_json_body(&r, 65536) == 0) {
        char msg[256], field[72];
        gpu_validate(r.body, GPU_FULL, msg, sizeof msg, field, sizeof field);
        gpu_validate(r.body, GPU_PARTIAL, msg, sizeof msg, field, sizeof field);
    }
    http_req_free(&r);
    return 0;
}
