#include "migrate.h"

#include "util.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MIGRATE_LOCK_KEY "7428190331"
#define MAX_MIGRATIONS 1000
#define MAX_COMPONENTS 64

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
            fprintf(out, "%s: two migrations have number %04d: %s and %s\n", dir, files[i].version,
                    files[i - 1].name, files[i].name);
            return -1;
        }
    }
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Modules that own tables ship their migrations in a subdirectory named after the module
 * (migrations/<module>/NNNN_*.sql). Returns their names, sorted. */
static int list_components(const char *dir, char **names, int max)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        const char *nm = e->d_name;
        if (nm[0] == '.' || strlen(nm) > 63 ||
            strspn(nm, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(nm))
            continue;
        char path[4096];
        struct stat sb;
        if (util_fmt(path, sizeof path, "%s/%s", dir, nm) < 0 || stat(path, &sb) != 0 ||
            !S_ISDIR(sb.st_mode))
            continue;
        names[n++] = strdup(nm);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
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

static int applied_versions(PGconn *conn, const char *component, int *versions, int max, FILE *out)
{
    const char *params[] = {component};
    PGresult *r = PQexecParams(conn,
                               "SELECT version FROM schema_migrations WHERE component = $1 "
                               "ORDER BY version",
                               1, NULL, params, NULL, NULL, 0);
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

/* component 'core' is llm-ops itself; any other is a module that owns tables. A table made
 * before components existed (keyed on version alone) is upgraded in place. */
static const char create_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " component text NOT NULL DEFAULT 'core', version integer NOT NULL, name text NOT NULL,"
    " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (component, version));"
    "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS component text NOT NULL"
    " DEFAULT 'core';"
    "DO $$ BEGIN"
    " IF NOT EXISTS (SELECT 1 FROM information_schema.key_column_usage"
    "  WHERE table_name = 'schema_migrations' AND column_name = 'component'"
    "  AND constraint_name = 'schema_migrations_pkey') THEN"
    "  ALTER TABLE schema_migrations DROP CONSTRAINT schema_migrations_pkey,"
    "   ADD PRIMARY KEY (component, version);"
    " END IF; END $$";

static int is_in(int v, const int *list, int n)
{
    for (int i = 0; i < n; i++)
        if (list[i] == v)
            return 1;
    return 0;
}

/* Applies the pending files of one component, each in its own transaction. known < 0: no
 * upper bound (modules). */
static enum migrate_result apply_component(PGconn *conn, const char *dir, const char *component,
                                           int known, FILE *out)
{
    static struct mfile files[MAX_MIGRATIONS];
    static int applied[MAX_MIGRATIONS];
    int nf = list_files(dir, files, MAX_MIGRATIONS, out);
    if (nf < 0)
        return MIGRATE_FAILED;
    int na = applied_versions(conn, component, applied, MAX_MIGRATIONS, out);
    if (na < 0)
        return MIGRATE_FAILED;
    if (known >= 0 && na > 0 && applied[na - 1] > known) {
        fprintf(out,
                "the database schema is at version %d, newer than this build knows (%d): "
                "upgrade llm-ops before migrating\n",
                applied[na - 1], known);
        return MIGRATE_TOO_NEW;
    }
    int done = 0, current = na > 0 ? applied[na - 1] : 0;
    for (int i = 0; i < nf; i++) {
        if (known >= 0 && files[i].version > known)
            break;
        if (is_in(files[i].version, applied, na))
            continue;
        char path[4096];
        if (util_fmt(path, sizeof path, "%s/%s", dir, files[i].name) < 0)
            return MIGRATE_FAILED;
        size_t len;
        char *sql = util_read_file(path, &len);
        if (!sql) {
            fprintf(out, "cannot read %s\n", path);
            return MIGRATE_FAILED;
        }
        char sum[65], ver[16];
        util_sha256_hex(sql, len, sum);
        snprintf(ver, sizeof ver, "%d", files[i].version);
        const char *params[] = {component, ver, files[i].name, sum};
        int ok = exec_ok(conn, "BEGIN", out) && exec_ok(conn, sql, out);
        if (ok) {
            PGresult *r = PQexecParams(conn,
                                       "INSERT INTO schema_migrations (component, version, name,"
                                       " checksum) VALUES ($1, $2::int, $3, $4)",
                                       4, NULL, params, NULL, NULL, 0);
            ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            if (!ok)
                fprintf(out, "%s", PQresultErrorMessage(r));
            PQclear(r);
        }
        free(sql);
        if (!ok || !exec_ok(conn, "COMMIT", out)) {
            exec_ok(conn, "ROLLBACK", stderr);
            fprintf(out, "migration %s failed; nothing of it was applied\n", path);
            return MIGRATE_FAILED;
        }
        if (strcmp(component, "core") == 0)
            fprintf(out, "applied %s\n", files[i].name);
        else
            fprintf(out, "applied %s/%s\n", component, files[i].name);
        done++;
        if (files[i].version > current)
            current = files[i].version;
    }
    fprintf(out, "%s at version %d (%d migration%s applied now)\n",
            strcmp(component, "core") == 0 ? "schema" : component, current, done,
            done == 1 ? "" : "s");
    return MIGRATE_OK;
}

enum migrate_result migrate_apply(PGconn *conn, const char *dir, int known_version, FILE *out)
{
    /* One migrator at a time, across hosts: a session-level advisory lock. */
    if (!exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", out))
        return MIGRATE_FAILED;
    enum migrate_result result = MIGRATE_FAILED;
    if (exec_ok(conn, create_table, out))
        result = apply_component(conn, dir, "core", known_version, out);
    char *names[MAX_COMPONENTS];
    int nc = list_components(dir, names, MAX_COMPONENTS);
    for (int i = 0; i < nc; i++) {
        if (result == MIGRATE_OK) {
            char sub[4096];
            if (util_fmt(sub, sizeof sub, "%s/%s", dir, names[i]) < 0)
                result = MIGRATE_FAILED;
            else
                result = apply_component(conn, sub, names[i], -1, out);
        }
        free(names[i]);
    }
    exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", stderr);
    return result;
}

static enum migrate_result status_component(PGconn *conn, const char *dir, const char *component,
                                            int exists, FILE *out)
{
    static struct mfile files[MAX_MIGRATIONS];
    static int applied[MAX_MIGRATIONS];
    int nf = list_files(dir, files, MAX_MIGRATIONS, out);
    if (nf < 0)
        return MIGRATE_FAILED;
    int na = exists ? applied_versions(conn, component, applied, MAX_MIGRATIONS, out) : 0;
    if (na < 0)
        return MIGRATE_FAILED;
    for (int i = 0; i < nf; i++) {
        const char *state = is_in(files[i].version, applied, na) ? "applied" : "pending";
        if (strcmp(component, "core") == 0)
            fprintf(out, "%04d  %-8s %s\n", files[i].version, state, files[i].name);
        else
            fprintf(out, "%04d  %-8s %s/%s\n", files[i].version, state, component, files[i].name);
    }
    return MIGRATE_OK;
}

enum migrate_result migrate_status(PGconn *conn, const char *dir, int known_version, FILE *out)
{
    PGresult *r = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    int exists = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (status_component(conn, dir, "core", exists, out) != MIGRATE_OK)
        return MIGRATE_FAILED;
    enum migrate_result result = MIGRATE_OK;
    char *names[MAX_COMPONENTS];
    int nc = list_components(dir, names, MAX_COMPONENTS);
    for (int i = 0; i < nc; i++) {
        char sub[4096];
        if (result == MIGRATE_OK && util_fmt(sub, sizeof sub, "%s/%s", dir, names[i]) >= 0)
            result = status_component(conn, sub, names[i], exists, out);
        free(names[i]);
    }
    if (result != MIGRATE_OK)
        return result;
    int applied[MAX_MIGRATIONS];
    int na = exists ? applied_versions(conn, "core", applied, MAX_MIGRATIONS, out) : 0;
    if (na > 0 && applied[na - 1] > known_version) {
        fprintf(out, "the database schema (%d) is newer than this build knows (%d)\n",
                applied[na - 1], known_version);
        return MIGRATE_TOO_NEW;
    }
    return MIGRATE_OK;
}
