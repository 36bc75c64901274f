/* Helpers shared by the test programs: shell commands and a private PostgreSQL cluster. */
#ifndef LLMOPS_TESTUTIL_H
#define LLMOPS_TESTUTIL_H

/* Runs a shell command; returns its exit status (-1 if it did not exit normally). */
int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs a command and returns its stdout (first 4 KiB, static buffer). */
char *tu_capture(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A free TCP port on 127.0.0.1, chosen by the kernel (bind to port 0), outside the range
 * other connections' ephemeral ports could collide with by guesswork. */
int tu_free_port(void);

/* A private cluster (tests/db/pg-private) in a fresh temp dir; aborts the test on failure. */
struct tu_pg {
    char dir[64];
    int port;
};
void tu_pg_start(struct tu_pg *pg, const char *tag);
void tu_pg_stop(struct tu_pg *pg); /* stops it and removes the dir */
void tu_pg_createdb(const struct tu_pg *pg, const char *name);
/* "host=DIR/sock port=N user=postgres dbname=NAME" */
void tu_pg_conninfo(const struct tu_pg *pg, const char *db, char *out, int size);

/* What a failed helper does: ck_abort_msg by default; a program outside Check (a benchmark)
 * sets its own. */
void tu_on_failure(void (*fn)(const char *message));

#endif
