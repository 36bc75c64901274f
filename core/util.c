#include "util.h"

#include "llmops-plugin.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

int util_parse_int(const char *s, long long min, long long max, long long *out, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (!s || !*s) {
        *why = "is empty";
        return -1;
    }
    /* strtoll accepts leading blanks and a '+': we do not. */
    if (!(*s == '-' || (*s >= '0' && *s <= '9'))) {
        *why = "is not an integer";
        return -1;
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || (*s == '-' && end == s + 1)) {
        *why = "is not an integer";
        return -1;
    }
    if (errno == ERANGE || v < min || v > max) {
        *why = "is out of range";
        return -1;
    }
    *out = v;
    return 0;
}

size_t util_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

int util_parse_double(const char *s, double *out, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (!s || !*s) {
        *why = "is empty";
        return -1;
    }
    for (const char *p = s; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.' || *p == 'e' ||
              *p == 'E')) {
            *why = "is not a number";
            return -1;
        }
    }
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v)) {
        *why = "is not a number";
        return -1;
    }
    if (errno == ERANGE && (v > 1 || v < -1)) {
        *why = "is out of range";
        return -1;
    }
    *out = v;
    return 0;
}

int64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_wall_s(void)
{
    return (int64_t)time(NULL);
}

static int parse_net(const char *s, unsigned char addr[16], int *bits, int *family)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    if (hl == 0 || hl >= sizeof host)
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (inet_pton(AF_INET, host, addr) == 1)
        *family = AF_INET;
    else if (inet_pton(AF_INET6, host, addr) == 1)
        *family = AF_INET6;
    else
        return -1;
    int max = *family == AF_INET ? 32 : 128;
    *bits = max;
    if (slash) {
        long long b;
        const char *why;
        if (util_parse_int(slash + 1, 0, max, &b, &why) < 0)
            return -1;
        *bits = (int)b;
    }
    return 0;
}

static int prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)bytes) != 0)
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

int util_cidr_match(const char *list, const char *addr, char *why, size_t whysize)
{
    unsigned char a[16] = {0};
    int af = 0;
    if (addr) {
        if (inet_pton(AF_INET, addr, a) == 1)
            af = AF_INET;
        else if (inet_pton(AF_INET6, addr, a) == 1)
            af = AF_INET6;
        /* IPv4-mapped IPv6 (::ffff:10.1.2.3) counts as IPv4 */
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (af == AF_INET6 && memcmp(a, mapped, 12) == 0) {
            memmove(a, a + 12, 4);
            af = AF_INET;
        }
    }
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", list ? list : "");
    int match = 0, n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
        n++;
        if (strcmp(tok, "all") == 0) {
            match = 1;
            continue;
        }
        unsigned char net[16];
        int bits, family;
        if (parse_net(tok, net, &bits, &family) < 0) {
            snprintf(why, whysize,
                     "'%s' is not a network (CIDR such as 10.0.0.0/8, an address, or all)", tok);
            return -1;
        }
        if (af && af == family && prefix_equal(a, net, bits))
            match = 1;
    }
    if (n == 0) {
        snprintf(why, whysize, "the list is empty (use all for any network)");
        return -1;
    }
    return match;
}

static void line_bytes(struct util_line *l, const char *s, size_t k)
{
    if (k > l->cap - l->n) {
        k = l->cap - l->n;
        l->cut = 1;
    }
    memcpy(l->p + l->n, s, k);
    l->n += k;
}

void util_line_str(struct util_line *l, const char *s)
{
    if (s)
        line_bytes(l, s, strlen(s));
}

void util_line_uint(struct util_line *l, unsigned long long v, int width)
{
    char d[24];
    int i = (int)sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v || (int)sizeof d - i < width);
    line_bytes(l, d + i, sizeof d - (size_t)i);
}

int util_version_cmp(const char *a, const char *b)
{
    /* a leading "v" (Kubernetes-style "v0.11.2") or other prefix is not a part 0 */
    while (*a && !(*a >= '0' && *a <= '9'))
        a++;
    while (*b && !(*b >= '0' && *b <= '9'))
        b++;
    while (*a || *b) {
        long long x = 0, y = 0;
        /* saturate: a version part of 19 digits must not overflow */
        for (; *a >= '0' && *a <= '9'; a++)
            if (x < LLONG_MAX / 10 - 10)
                x = x * 10 + (*a - '0');
        for (; *b >= '0' && *b <= '9'; b++)
            if (y < LLONG_MAX / 10 - 10)
                y = y * 10 + (*b - '0');
        if (x != y)
            return x < y ? -1 : 1;
        while (*a && !(*a >= '0' && *a <= '9'))
            a++;
        while (*b && !(*b >= '0' && *b <= '9'))
            b++;
    }
    return 0;
}

int util_version_in_range(const char *v, const char *min, const char *max)
{
    return (!min || util_version_cmp(v, min) >= 0) && (!max || util_version_cmp(v, max) <= 0);
}

int64_t util_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int util_random_hex(char *out, size_t nbytes)
{
    unsigned char buf[64];
    static const char hex[] = "0123456789abcdef";
    if (nbytes > sizeof buf)
        return -1;
    size_t got = 0;
    while (got < nbytes) {
        ssize_t n = getrandom(buf + got, nbytes - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[buf[i] >> 4];
        out[2 * i + 1] = hex[buf[i] & 15];
    }
    out[2 * nbytes] = '\0';
    return 0;
}

void util_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    /* OpenSSL 3 looks EVP_sha256() up (under a lock) on every call; fetch it once. */
    static EVP_MD *sha256;
    if (!sha256)
        sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_Digest(data, len, md, &mdlen, sha256 ? sha256 : EVP_sha256(), NULL);
    for (unsigned int i = 0; i < mdlen && i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

static char id_prefix[17];
static unsigned long long id_counter;

void util_request_id(char out[33])
{
    /* Unique, not secret: a random prefix per process and a counter (a getrandom(2) per
     * request cost more than the rest of the id). */
    if (!id_prefix[0]) {
        if (util_random_hex(id_prefix, 8) < 0)
            snprintf(id_prefix, sizeof id_prefix, "%016llx", (unsigned long long)util_now_us());
        id_counter = 0;
    }
    /* by hand: snprintf showed in profiles of the hot path */
    static const char hex[] = "0123456789abcdef";
    memcpy(out, id_prefix, 16);
    uint64_t v = ++id_counter;
    for (int i = 31; i >= 16; i--, v >>= 4)
        out[i] = hex[v & 15];
    out[32] = '\0';
}

void util_forked(void)
{
    id_prefix[0] = '\0'; /* a child must not repeat its parent's ids */
}

char *util_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                int e = errno;
                free(buf);
                fclose(f);
                errno = e;
                return NULL;
            }
            break;
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int util_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        return -1;
    return n;
}

const char *util_quote(char *buf, size_t size, const char *text, size_t max_chars)
{
    return llmops_quote(buf, size, text, max_chars);
}

size_t util_utf8_count(const char *s, size_t n)
{
    return llmops_utf8_count(s, n);
}
