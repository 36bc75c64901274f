/* digest — see digest.h. */
#include "digest.h"

#include <openssl/evp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const EVP_MD *md_of(enum llmops_digest algo)
{
    switch (algo) {
    case LLMOPS_DIGEST_MD5:
        return EVP_md5();
    case LLMOPS_DIGEST_SHA1:
        return EVP_sha1();
    case LLMOPS_DIGEST_SHA256:
        return EVP_sha256();
    default:
        return NULL;
    }
}

static int start(enum llmops_digest algo, size_t hexsize, EVP_MD_CTX **ctx,
                 struct llmops_error *err)
{
    const EVP_MD *md = md_of(algo);
    if (!md) {
        char m[96];
        snprintf(m, sizeof m, "digest algorithm %d is not MD5 (1), SHA-1 (2) or SHA-256 (3)",
                 (int)algo);
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    if (hexsize < 2 * (size_t)EVP_MD_get_size(md) + 1)
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0,
                           "the hex buffer is too small for the digest (LLMOPS_DIGEST_HEX_MAX)");
    *ctx = EVP_MD_CTX_new();
    if (!*ctx || EVP_DigestInit_ex(*ctx, md, NULL) != 1) {
        EVP_MD_CTX_free(*ctx);
        *ctx = NULL;
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "libcrypto cannot start the digest");
    }
    return 0;
}

static int finish(EVP_MD_CTX *ctx, char *hex, struct llmops_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex(ctx, md, &n) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "libcrypto cannot finish the digest");
    static const char digits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * n] = '\0';
    return 0;
}

int digest_buffer(enum llmops_digest algo, const void *data, size_t len, char *hex, size_t hexsize,
                  struct llmops_error *err)
{
    EVP_MD_CTX *ctx;
    if (!hex || (!data && len > 0))
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "digest: NULL buffer");
    if (start(algo, hexsize, &ctx, err) != 0)
        return -1;
    if (len > 0 && EVP_DigestUpdate(ctx, data, len) != 1) {
        EVP_MD_CTX_free(ctx);
        return llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0, "libcrypto cannot update the digest");
    }
    return finish(ctx, hex, err);
}

int digest_file(enum llmops_digest algo, const char *path, char *hex, size_t hexsize,
                int64_t *bytes, struct llmops_error *err)
{
    EVP_MD_CTX *ctx;
    if (!hex || !path)
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, "digest_file: NULL path or buffer");
    if (start(algo, hexsize, &ctx, err) != 0)
        return -1;
    char m[300];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        EVP_MD_CTX_free(ctx);
        snprintf(m, sizeof m, "digest_file %.200s: %s", path, strerror(errno));
        return llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m);
    }
    enum { PIECE = 1 << 20 };
    unsigned char *buf = malloc(PIECE);
    int64_t total = 0;
    int rc = buf ? 0 : -1;
    while (rc == 0) {
        ssize_t r = read(fd, buf, PIECE);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(m, sizeof m, "digest_file %.200s: %s", path, strerror(errno));
            rc = -2;
            break;
        }
        if (r == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)r) != 1)
            rc = -1;
        total += r;
    }
    free(buf);
    close(fd);
    if (rc != 0) {
        EVP_MD_CTX_free(ctx);
        return rc == -2 ? llmops_fail(err, LLMOPS_ERR_INVALID, 0, 0, m)
                        : llmops_fail(err, LLMOPS_ERR_INTERNAL, 0, 0,
                                      "out of memory or libcrypto failed in digest_file");
    }
    if (bytes)
        *bytes = total;
    return finish(ctx, hex, err);
}
