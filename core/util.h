/* Small helpers shared by the core: number parsing, time, random ids, hashing. */
#ifndef LLMOPS_UTIL_H
#define LLMOPS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* strtonum-style: the whole string must be a base-10 integer in [min, max].
 * Returns 0 and sets *out, or -1 with *why set to a static reason. */
int util_parse_int(const char *s, long long min, long long max, long long *out, const char **why);

/* The whole string must be a finite decimal number (as PostgreSQL writes float8 and numeric:
 * no blanks, no hex, no inf/nan). Returns 0 and sets *out, or -1 with *why set. */
int util_parse_double(const char *s, double *out, const char **why);

/* The characters (code points) of a UTF-8 string: its bytes less the continuation bytes. */
size_t util_utf8_len(const char *s);

/* Monotonic milliseconds. */
int64_t util_now_ms(void);
/* Monotonic microseconds. */
int64_t util_now_us(void);
/* Wall-clock seconds since the epoch. */
int64_t util_wall_s(void);
/* Wall-clock milliseconds since the epoch (times sent to tools). */
int64_t util_wall_ms(void);

/* n random bytes from the OS, written as 2n lowercase hex digits plus NUL into out. */
int util_random_hex(char *out, size_t nbytes);
/* A request id: 32 lowercase hex digits, unique per process and request. */
void util_request_id(char out[33]);
/* Call in a child after fork(). */
void util_forked(void);
/* SHA-256 of data as 64 lowercase hex digits plus NUL. */
void util_sha256_hex(const void *data, size_t len, char out[65]);

/* Read a whole file; returns malloc'd NUL-terminated bytes or NULL (errno set). */
char *util_read_file(const char *path, size_t *len);

/* snprintf that reports truncation as -1. */
int util_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Whether addr (an IPv4 or IPv6 address) lies in one of the space-separated networks of list
 * (CIDR "10.0.0.0/8", a bare address, or "all"): 1 yes, 0 no, -1 the list is invalid (with
 * *why naming the bad entry in buf). addr NULL only checks the list. */
int util_cidr_match(const char *list, const char *addr, char *why, size_t whysize);

/* Text put together piece by piece in a fixed buffer, without printf (the request hot path:
 * response head, access line). What does not fit is cut, and `cut` says so. */
struct util_line {
    char *p;
    size_t n, cap;
    int cut;
};
void util_line_str(struct util_line *l, const char *s);
/* v in decimal, zero-padded to at least `width` digits */
void util_line_uint(struct util_line *l, unsigned long long v, int width);

/* Client text quoted in a message: at most max_chars characters and size - 1 bytes, cut
 * between UTF-8 characters (never inside one, as "%.64s" can), a byte that begins no valid
 * character shown as U+FFFD. Returns buf: util_quote(q, sizeof q, name, 64) as a %s argument.
 * (The plugin API's llmops_quote, for the core.) */
const char *util_quote(char *buf, size_t size, const char *text, size_t max_chars);
/* Characters (not bytes) in the first n bytes of s: the "character N" of a message. */
size_t util_utf8_count(const char *s, size_t n);
/* The size of a buffer for util_quote of n characters. */
#define UTIL_QUOTE_SIZE(n) (4 * (n) + 1)

/* Dotted version comparison: "2.9" < "2.14", "v0.11.2" > "0.10" (characters before the first
 * digit are skipped, other non-digits separate parts, missing parts are 0); -1, 0 or 1. */
int util_version_cmp(const char *a, const char *b);
/* min <= v <= max by util_version_cmp; a NULL bound is open. The one range check of the core
 * (integrations, doctor) and of host->version_in_range. */
int util_version_in_range(const char *v, const char *min, const char *max);

#define UTIL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
