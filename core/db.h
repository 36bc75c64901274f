/* PostgreSQL access: one connection per process that reconnects by itself, every wait
 * bounded by a deadline, only parameterised SQL. */
#ifndef LLMOPS_DB_H
#define LLMOPS_DB_H

#include <libpq-fe.h>
#include <stdint.h>

enum db_status {
    DB_OK = 0,
    DB_UNAVAILABLE, /* cannot connect, connection lost, or timed out */
    DB_QUERY_ERROR, /* the server refused the statement: see sqlstate */
};

/* message may be shown to API clients: for DB_UNAVAILABLE it is our own sentence, never
 * libpq's text (that names the socket path, host, port and user). detail is libpq's text, for
 * logs and the operator's tools only (empty when there is none). */
struct db_error {
    enum db_status status;
    char sqlstate[6];
    char message[256];
    char detail[256];
};

/* The most precise text for an operator (llm-opsctl, logs): detail, else message. */
const char *db_error_detail(const struct db_error *err);

typedef void (*db_notify_fn)(const char *channel, const char *payload, void *ud);
typedef void (*db_connected_fn)(void *ud);

struct db {
    PGconn *conn;
    char *conninfo;
    const char *application_name;
    int connect_timeout_ms;
    int query_timeout_ms;
    const char *listen_channel;  /* LISTENed to after every (re)connect, or NULL */
    const char *listen_channel2; /* a second one (the jobs process: llmops_outbox), or NULL */
    db_notify_fn on_notify;
    db_connected_fn on_connected; /* after every (re)connect: caches must be dropped */
    void *ud;
    int schema_version;       /* seen at connect; -1 unknown */
    int64_t schema_check_ms;  /* when schema_version was last read */
    unsigned long reconnects; /* connections made after the first one */
    int connected_once;       /* a connection was made: the next ones are reconnects */
    unsigned long statements; /* sent by db_exec: tests prove the hot path sends none */
    int closing;              /* the server sent FATAL outside a query: it closes the connection */
    int log_unavailable;      /* log the detail of DB_UNAVAILABLE (a server; not llm-opsctl) */
    char logged[256];         /* the detail logged last, and when: repeated at most every 10 s */
    int64_t logged_ms;
};

void db_init(struct db *db, const char *conninfo, int connect_timeout_ms, int query_timeout_ms,
             const char *application_name);
void db_close(struct db *db);
/* Makes sure a connection is up (connecting with the deadline if not). */
enum db_status db_ensure(struct db *db, struct db_error *err);
/* Reads pending notifications without blocking; notices a dead connection. */
void db_poll(struct db *db);
/* Runs one statement. Returns a PGresult (PGRES_TUPLES_OK or PGRES_COMMAND_OK) to PQclear,
 * or NULL with err filled. */
PGresult *db_exec(struct db *db, const char *sql, int nparams, const char *const *params,
                  struct db_error *err);
/* Re-reads the schema version when it did not match `want` and at least a second passed. */
int db_schema_version(struct db *db, int want);

/* Column values the schema types as numbers (integer, bigint, count(*), numeric), parsed
 * strictly (STYLE.md: never atoi). A NULL or a value that is not a number — a wrong column
 * index, or a query changed without its reader — answers 0, is logged with the column, and
 * sets *bad, so the caller answers an error instead of a made-up number. */
long long db_int(const PGresult *res, int row, int col, int *bad);
double db_real(const PGresult *res, int row, int col, int *bad);

#define DB_SQLSTATE_UNIQUE_VIOLATION "23505"

#endif
