/* An If-Match / If-None-Match header: the bytes up to the first NUL are the header, the rest
 * the entity tag it is compared with (both comparisons). */
#include "gpu.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *buf = malloc(size + 2);
    memcpy(buf, data, size);
    buf[size] = '\0';
    buf[size + 1] = '\0';
    const char *header = buf;
    const char *etag = buf + strlen(buf) + 1;
    int strong = gpu_etag_matches(header, etag, 0);
    int weak = gpu_etag_matches(header, etag, 1);
    if (strong && !weak)
        abort(); /* a strong match is a weak one too */
    free(buf);
    return 0;
}
