/* digest — MD5, SHA-1 and SHA-256 of buffers and files on libcrypto, as hex
 * (host->digest and host->digest_file). */
#ifndef LLMOPS_DIGEST_H
#define LLMOPS_DIGEST_H

#include "llmops-plugin.h"

#include <stddef.h>
#include <stdint.h>

/* Lower-case hex of the digest of data[0..len) into hex (NUL-terminated). Returns 0, or -1
 * with err filled: an unknown algorithm, hexsize too small. */
int digest_buffer(enum llmops_digest algo, const void *data, size_t len, char *hex, size_t hexsize,
                  struct llmops_error *err);

/* The same of a file, read in 1 MiB pieces (never all of it in memory); *bytes, when not
 * NULL, receives the file's length. */
int digest_file(enum llmops_digest algo, const char *path, char *hex, size_t hexsize,
                int64_t *bytes, struct llmops_error *err);

#endif
