/* The configuration file parser (through libinih and our line reader). */
#include "conf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct llmops_conf c;
    struct conf_errors e = {0};
    conf_load_buffer("fuzz.conf", text, &c, &e);
    conf_free(&c);
    conf_errors_free(&e);
    free(text);
    return 0;
}
