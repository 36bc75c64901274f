#include "migrate.h"

#include "util.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATE_LOCK_KEY "7428190331"
#define MAX_MIGRATIONS 1000

struct mfile {
    int version;
    char name[256];
};

static int cmp_mfile(const void *a, const void *b)
{
    return ((const struct mfile *)a)->version - ((const struct mfile *)b)->version;
}

/* Files named NNNN_description.sql, sorted by number. */
static int list_files(const char *dir, struct mfile *files, int max, FILE *out)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(out, "cannot read migrations directory %s\n", dir);
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t len = strlen(nm);
        if (len < 10 || nm[4] != '_' || strcmp(nm + len - 4, ".sql") != 0)
            continue;
        char num[5];
        memcpy(num, nm, 4);
        num[4] = '\0';
        long long v;
        if (util_parse_int(num, 1, 9999, &v, NULL) < 0 || len >= sizeof files[0].name)
            continue;
        if (n == max)
            break;
        files[n].version = (int)v;
        strcpy(files[n].name, nm);
        n++;
    }
    closedir(d);
    qsort(files, (size_t)n, sizeof files[0], cmp_mfile);
    for (int i = 1; i < n; i++) {
        if (files[i].version == files[i - 1].version) {
            fprintf(out, "two migrations have number %04d: %s and %s\n", files[i].version,
                    files[i - 1].name, files[i].name);
            return -1;
        }
    }
    return n;
}

static int exec_ok(PGconn *conn, const char *sql, FILE *out)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(out, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

static int applied_versions(PGconn *conn, int *versions, int max, FILE *out)
{
    PGresult *r = PQexec(conn, "SELECT version FROM schema_migrations ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(out, "%s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r);
    if (n > max)
        n = max;
    for (int i = 0; i < n; i++) {
        long long v = 0;
        util_parse_int(PQgetvalue(r, i, 0), 0, 1000000, &v, NULL);
        versions[i] = (int)v;
    }
    PQclear(r);
    return n;
}

static const char create_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL,"
    " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())";

enum migrate_result migrate_apply(PGconn *conn, const char *dir, int known_version, FILE *out)
{
    static struct mfile files[MAX_MIGRATIONS];
    static int applied[MAX_MIGRATIONS];
    int nf = list_files(dir, files, MAX_MIGRATIONS, out);
    if (nf < 0)
        return MIGRATE_FAILED;
    /* One migrator at a time, across hosts: a session-level advisory lock. */
    if (!exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", out))
        return MIGRATE_FAILED;
    enum migrate_result result = MIGRATE_OK;
    int na;
    if (!exec_ok(conn, create_table, out) ||
        (na = applied_versions(conn, applied, MAX_MIGRATIONS, out)) < 0) {
        result = MIGRATE_FAILED;
        goto unlock;
    }
    if (na > 0 && applied[na - 1] > known_version) {
        fprintf(out,
                "the database schema is at version %d, newer than this build knows (%d): "
                "upgrade llm-ops before migrating\n",
                applied[na - 1], known_version);
        result = MIGRATE_TOO_NEW;
        goto unlock;
    }
    int done = 0, current = na > 0 ? applied[na - 1] : 0;
    for (int i = 0; i < nf; i++) {
        if (files[i].version > known_version)
            break;
        int is_applied = 0;
        for (int j = 0; j < na; j++)
            if (applied[j] == files[i].version)
                is_applied = 1;
        if (is_applied)
            continue;
        char path[4096];
        if (util_fmt(path, sizeof path, "%s/%s", dir, files[i].name) < 0) {
            result = MIGRATE_FAILED;
            goto unlock;
        }
        size_t len;
        char *sql = util_read_file(path, &len);
        if (!sql) {
            fprintf(out, "cannot read %s\n", path);
            result = MIGRATE_FAILED;
            goto unlock;
        }
        char sum[65], ver[16];
        util_sha256_hex(sql, len, sum);
        snprintf(ver, sizeof ver, "%d", files[i].version);
        const char *params[] = {ver, files[i].name, sum};
        int ok = exec_ok(conn, "BEGIN", out) && exec_ok(conn, sql, out);
        if (ok) {
            PGresult *r = PQexecParams(conn,
                                       "INSERT INTO schema_migrations (version, name, checksum) "
                                       "VALUES ($1::int, $2, $3)",
                                       3, NULL, params, NULL, NULL, 0);
            ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            if (!ok)
                fprintf(out, "%s", PQresultErrorMessage(r));
            PQclear(r);
        }
        free(sql);
        if (!ok || !exec_ok(conn, "COMMIT", out)) {
            exec_ok(conn, "ROLLBACK", stderr);
            fprintf(out, "migration %s failed; nothing of it was applied\n", files[i].name);
            result = MIGRATE_FAILED;
            goto unlock;
        }
        fprintf(out, "applied %s\n", files[i].name);
        done++;
        if (files[i].version > current)
            current = files[i].version;
    }
    fprintf(out, "schema at version %d (%d migration%s applied now)\n", current, done,
            done == 1 ? "" : "s");
unlock:
    exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", stderr);
    return result;
}

enum migrate_result migrate_status(PGconn *conn, const char *dir, int known_version, FILE *out)
{
    static struct mfile files[MAX_MIGRATIONS];
    static int applied[MAX_MIGRATIONS];
    int nf = list_files(dir, files, MAX_MIGRATIONS, out);
    if (nf < 0)
        return MIGRATE_FAILED;
    PGresult *r = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    int exists = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    int na = exists ? applied_versions(conn, applied, MAX_MIGRATIONS, out) : 0;
    if (na < 0)
        return MIGRATE_FAILED;
    for (int i = 0; i < nf; i++) {
        int is_applied = 0;
        for (int j = 0; j < na; j++)
            if (applied[j] == files[i].version)
                is_applied = 1;
        fprintf(out, "%04d  %-8s %s\n", files[i].version, is_applied ? "applied" : "pending",
                files[i].name);
    }
    if (na > 0 && applied[na - 1] > known_version) {
        fprintf(out, "the database schema (%d) is newer than this build knows (%d)\n",
                applied[na - 1], known_version);
        return MIGRATE_TOO_NEW;
    }
    return MIGRATE_OK;
}
