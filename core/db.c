#include "db.h"

#include "metrics.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void db_init(struct db *db, const char *conninfo, int connect_timeout_ms, int query_timeout_ms,
             const char *application_name)
{
    memset(db, 0, sizeof *db);
    db->conninfo = strdup(conninfo);
    db->connect_timeout_ms = connect_timeout_ms;
    db->query_timeout_ms = query_timeout_ms;
    db->application_name = application_name;
    db->schema_version = -1;
}

void db_close(struct db *db)
{
    if (db->conn)
        PQfinish(db->conn);
    db->conn = NULL;
    free(db->conninfo);
    db->conninfo = NULL;
}

const char *db_error_detail(const struct db_error *err)
{
    return err->detail[0] ? err->detail : err->message;
}

/* The first line of libpq's text (they end with a newline; a log line stays whole), cut
 * between characters. */
static void one_line(char *buf, size_t size, const char *text)
{
    char line[1024];
    snprintf(line, sizeof line, "%s", text ? text : "");
    line[strcspn(line, "\n")] = '\0';
    util_quote(buf, size, line, SIZE_MAX);
}

static void set_err(struct db_error *err, enum db_status st, const char *sqlstate, const char *msg)
{
    if (!err)
        return;
    err->status = st;
    snprintf(err->sqlstate, sizeof err->sqlstate, "%s", sqlstate ? sqlstate : "");
    one_line(err->message, sizeof err->message, msg);
    err->detail[0] = '\0';
}

/* The database is unavailable: clients get `public` (our words), the log and the operator's
 * tools libpq's `detail`, which names the socket path or host, port and user. */
static void set_unavailable(struct db *db, struct db_error *err, const char *public,
                            const char *detail)
{
    char line[256];
    one_line(line, sizeof line, detail && *detail ? detail : public);
    if (db->log_unavailable &&
        (strcmp(line, db->logged) != 0 || util_now_ms() - db->logged_ms >= 10000)) {
        log_warning("PostgreSQL is unavailable: %s", line);
        snprintf(db->logged, sizeof db->logged, "%s", line);
        db->logged_ms = util_now_ms();
    }
    if (!err)
        return;
    err->status = DB_UNAVAILABLE;
    err->sqlstate[0] = '\0';
    snprintf(err->message, sizeof err->message, "%s", public);
    snprintf(err->detail, sizeof err->detail, "%s", line);
}

/* Server notices (e.g. "already exists, skipping") are not errors: debug level only. A
 * FATAL or PANIC outside a query is the server saying why it closes the connection (a
 * shutdown: 57P01): libpq passes it here and keeps the connection "OK" until it reads the
 * end of the stream, so the next request would still be served as if the database were up. */
static void on_notice(void *arg, const PGresult *res)
{
    struct db *db = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        db->closing = 1;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
    msg[strcspn(msg, "\n")] = '\0';
    log_debug("PostgreSQL: %s", msg);
}

static void drop(struct db *db)
{
    if (db->conn)
        PQfinish(db->conn);
    db->conn = NULL;
    db->closing = 0;
}

/* Waits for the socket until the deadline. Returns 1 ready, 0 timeout, -1 error. */
static int wait_socket(PGconn *conn, int for_write, int64_t deadline)
{
    int fd = PQsocket(conn);
    if (fd < 0)
        return -1;
    for (;;) {
        int64_t left = deadline - util_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = for_write ? POLLOUT : POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? -1 : (r == 0 ? 0 : 1);
    }
}

static void read_schema_version(struct db *db)
{
    struct db_error e;
    db->schema_check_ms = util_now_ms();
    /* A database never migrated has no schema_migrations table: version 0. */
    PGresult *r = db_exec(db, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, &e);
    if (!r)
        return;
    int exists = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!exists) {
        db->schema_version = 0;
        return;
    }
    r = db_exec(db,
                "SELECT coalesce(max(version), 0) FROM schema_migrations WHERE component = 'core'",
                0, NULL, &e);
    if (r && PQntuples(r) == 1) {
        long long v = 0;
        util_parse_int(PQgetvalue(r, 0, 0), 0, 1000000, &v, NULL);
        db->schema_version = (int)v;
    }
    if (r)
        PQclear(r);
}

enum db_status db_ensure(struct db *db, struct db_error *err)
{
    if (db->conn && PQstatus(db->conn) == CONNECTION_OK && !db->closing)
        return DB_OK;
    /* A lost connection is dropped (conn NULL) where it is noticed: whether one was made
     * before is remembered apart, or no reconnect would ever be counted. */
    int was_connected = db->connected_once;
    drop(db);
    const char *kw[] = {"application_name", "dbname", NULL};
    const char *val[] = {db->application_name ? db->application_name : "llm-ops", db->conninfo,
                         NULL};
    int64_t deadline = util_now_ms() + db->connect_timeout_ms;
    PGconn *c = PQconnectStartParams(kw, val, 1);
    if (!c) {
        set_unavailable(db, err, "cannot connect to PostgreSQL: out of memory", NULL);
        return DB_UNAVAILABLE;
    }
    if (PQstatus(c) == CONNECTION_BAD) {
        set_unavailable(db, err, "cannot connect to PostgreSQL", PQerrorMessage(c));
        PQfinish(c);
        return DB_UNAVAILABLE;
    }
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    while (ps != PGRES_POLLING_OK) {
        if (ps == PGRES_POLLING_FAILED) {
            set_unavailable(db, err, "cannot connect to PostgreSQL", PQerrorMessage(c));
            PQfinish(c);
            return DB_UNAVAILABLE;
        }
        int w = wait_socket(c, ps == PGRES_POLLING_WRITING, deadline);
        if (w <= 0) {
            set_unavailable(db, err,
                            w == 0 ? "timed out connecting to PostgreSQL"
                                   : "cannot connect to PostgreSQL",
                            w == 0 ? NULL : PQerrorMessage(c));
            PQfinish(c);
            return DB_UNAVAILABLE;
        }
        ps = PQconnectPoll(c);
    }
    if (PQsetnonblocking(c, 1) != 0) {
        set_unavailable(db, err, "cannot connect to PostgreSQL", PQerrorMessage(c));
        PQfinish(c);
        return DB_UNAVAILABLE;
    }
    PQsetNoticeReceiver(c, on_notice, db);
    db->logged[0] = '\0'; /* connected: the next outage is logged at once */
    db->closing = 0;
    db->conn = c;
    db->connected_once = 1;
    if (was_connected) {
        db->reconnects++;
        metrics_add("llmops_database_reconnects_total", "", 1);
    }
    const char *channels[] = {db->listen_channel, db->listen_channel2};
    for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++) {
        if (!channels[i])
            continue;
        char sql[128];
        snprintf(sql, sizeof sql, "LISTEN %s", channels[i]);
        PGresult *r = db_exec(db, sql, 0, NULL, err);
        if (!r)
            return err ? err->status : DB_UNAVAILABLE;
        PQclear(r);
    }
    read_schema_version(db);
    if (!db->conn) {
        set_unavailable(db, err, "the connection to PostgreSQL was lost right after connecting",
                        NULL);
        return DB_UNAVAILABLE;
    }
    log_info("connected to PostgreSQL (schema version %d)", db->schema_version);
    if (db->on_connected)
        db->on_connected(db->ud);
    return DB_OK;
}

static void dispatch_notifications(struct db *db)
{
    PGnotify *n;
    while (db->conn && (n = PQnotifies(db->conn)) != NULL) {
        if (db->on_notify)
            db->on_notify(n->relname, n->extra, db->ud);
        PQfreemem(n);
    }
}

void db_poll(struct db *db)
{
    if (!db->conn)
        return;
    if (!PQconsumeInput(db->conn) || PQstatus(db->conn) != CONNECTION_OK) {
        log_warning("PostgreSQL connection lost: %s", PQerrorMessage(db->conn));
        drop(db);
        return;
    }
    dispatch_notifications(db); /* parses what came, a FATAL notice included */
    if (db->closing) {
        log_warning("PostgreSQL is closing the connection (the server stops or restarts)");
        drop(db);
    }
}

PGresult *db_exec(struct db *db, const char *sql, int nparams, const char *const *params,
                  struct db_error *err)
{
    if (db_ensure(db, err) != DB_OK)
        return NULL;
    int64_t deadline = util_now_ms() + db->query_timeout_ms;
    db->statements++;
    if (!PQsendQueryParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0)) {
        set_unavailable(db, err, "the connection to PostgreSQL was lost", PQerrorMessage(db->conn));
        drop(db);
        return NULL;
    }
    /* Flush what libpq could not send at once. */
    for (;;) {
        int f = PQflush(db->conn);
        if (f == 0)
            break;
        if (f < 0 || wait_socket(db->conn, 1, deadline) <= 0) {
            set_unavailable(db, err, "could not send the query to PostgreSQL", NULL);
            drop(db);
            return NULL;
        }
    }
    PGresult *result = NULL, *r;
    for (;;) {
        while (PQisBusy(db->conn)) {
            int w = wait_socket(db->conn, 0, deadline);
            if (w <= 0) {
                if (w == 0) {
                    /* Ask the server to stop, and drop the connection either way. */
                    PGcancel *cancel = PQgetCancel(db->conn);
                    if (cancel) {
                        char buf[128];
                        PQcancel(cancel, buf, sizeof buf);
                        PQfreeCancel(cancel);
                    }
                }
                set_unavailable(db, err,
                                w == 0 ? "PostgreSQL did not answer in time"
                                       : "the connection to PostgreSQL failed",
                                NULL);
                if (result)
                    PQclear(result);
                drop(db);
                return NULL;
            }
            if (!PQconsumeInput(db->conn)) {
                set_unavailable(db, err, "the connection to PostgreSQL was lost",
                                PQerrorMessage(db->conn));
                if (result)
                    PQclear(result);
                drop(db);
                return NULL;
            }
        }
        r = PQgetResult(db->conn);
        if (!r)
            break;
        if (result)
            PQclear(result);
        result = r;
    }
    dispatch_notifications(db);
    if (!result) {
        set_unavailable(db, err, "no result from PostgreSQL", NULL);
        return NULL;
    }
    ExecStatusType st = PQresultStatus(result);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        if (PQstatus(db->conn) != CONNECTION_OK) {
            set_unavailable(db, err, "the connection to PostgreSQL was lost",
                            PQresultErrorMessage(result));
            drop(db);
        } else {
            set_err(err, DB_QUERY_ERROR, PQresultErrorField(result, PG_DIAG_SQLSTATE),
                    PQresultErrorMessage(result));
        }
        PQclear(result);
        return NULL;
    }
    return result;
}

int db_schema_version(struct db *db, int want)
{
    if (db->conn && db->schema_version != want && util_now_ms() - db->schema_check_ms >= 1000)
        read_schema_version(db);
    return db->schema_version;
}

long long db_int(const PGresult *res, int row, int col, int *bad)
{
    long long v = 0;
    const char *why = "is NULL";
    if (row < PQntuples(res) && col < PQnfields(res) && !PQgetisnull(res, row, col) &&
        util_parse_int(PQgetvalue(res, row, col), INT64_MIN, INT64_MAX, &v, &why) == 0)
        return v;
    log_error("db: column %d (%s) of row %d %s where an integer was expected", col,
              col < PQnfields(res) ? PQfname(res, col) : "?", row, why);
    *bad = 1;
    return 0;
}

double db_real(const PGresult *res, int row, int col, int *bad)
{
    double v = 0;
    const char *why = "is NULL";
    if (row < PQntuples(res) && col < PQnfields(res) && !PQgetisnull(res, row, col) &&
        util_parse_double(PQgetvalue(res, row, col), &v, &why) == 0)
        return v;
    log_error("db: column %d (%s) of row %d %s where a number was expected", col,
              col < PQnfields(res) ? PQfname(res, col) : "?", row, why);
    *bad = 1;
    return 0;
}
