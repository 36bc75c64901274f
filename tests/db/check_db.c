/* Tests against a real, private PostgreSQL: migrations (concurrent, too new), the database
 * layer's deadlines and reconnects, and llm-opsctl's token and seed commands. */
#include "build-config.h"
#include "conf.h"
#include "db.h"
#include "testutil.h"

#include <check.h>
#include <stdarg.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct tu_pg pg;
static char conf_path[128];
static char conninfo[256];
#define dir pg.dir /* the cluster's temp directory */
#define sh tu_sh

/* Runs a command and returns its stdout (first 4 KiB). */
static char *capture(const char *cmd, int *status)
{
    return tu_capture(status, "%s", cmd);
}

static void write_conf(const char *db)
{
    FILE *f = fopen(conf_path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "[database]\nconninfo = host=%s/sock port=%d user=postgres dbname=%s\n"
            "migrations_dir = %s/migrations\n[gpu_types]\nseed_file = %s/etc/gpu-types.json\n",
            dir, pg.port, db, LLMOPS_SOURCE_DIR, LLMOPS_SOURCE_DIR);
    fclose(f);
    tu_pg_conninfo(&pg, db, conninfo, sizeof conninfo);
}

static void cluster_up(void)
{
    tu_pg_start(&pg, "db");
    snprintf(conf_path, sizeof conf_path, "%s/llm-ops.conf", dir);
}

static void cluster_down(void)
{
    tu_pg_stop(&pg);
}

/* A fresh database per test. */
static int dbseq;
static void fresh_db(void)
{
    char name[32];
    snprintf(name, sizeof name, "t%d_%d", (int)getpid(), ++dbseq);
    tu_pg_createdb(&pg, name);
    write_conf(name);
}

static int ctl(const char *args)
{
    return sh("%s/llm-opsctl --config %s %s >%s/ctl.out 2>%s/ctl.err", LLMOPS_BIN_DIR, conf_path,
              args, dir, dir);
}

START_TEST(test_migrate_twice_at_once)
{
    fresh_db();
    /* Two migrators start together: the advisory lock lets one apply, the other finds
     * nothing left to do; both succeed. */
    int rc = sh("(%s/llm-opsctl --config %s migrate >%s/m1 2>&1 & "
                "%s/llm-opsctl --config %s migrate >%s/m2 2>&1 & wait %%1; a=$?; wait %%2; b=$?; "
                "exit $((a + b)))",
                LLMOPS_BIN_DIR, conf_path, dir, LLMOPS_BIN_DIR, conf_path, dir);
    ck_assert_int_eq(rc, 0);
    int st;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cat %s/m1 %s/m2 | grep -c '^applied 0001_core.sql'", dir, dir);
    ck_assert_str_eq(capture(cmd, &st), "1\n");
    ck_assert_int_eq(ctl("migrate --status"), 0);
    snprintf(cmd, sizeof cmd, "cat %s/ctl.out", dir);
    ck_assert_ptr_nonnull(strstr(capture(cmd, &st), "0001  applied"));
}
END_TEST

/* A schema_migrations table from before module components (keyed on version alone) is
 * upgraded in place by the next migrate. */
START_TEST(test_upgrades_old_bookkeeping)
{
    fresh_db();
    struct db db;
    struct db_error err;
    db_init(&db, conninfo, 2000, 2000, "check_db");
    PGresult *r = db_exec(&db,
                          "CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                          " name text NOT NULL, checksum text NOT NULL,"
                          " applied_at timestamptz NOT NULL DEFAULT now())",
                          0, NULL, &err);
    ck_assert_ptr_nonnull(r);
    PQclear(r);
    db_close(&db);
    ck_assert_int_eq(ctl("migrate"), 0);
    ck_assert_int_eq(ctl("migrate"), 0);
    db_init(&db, conninfo, 2000, 2000, "check_db");
    ck_assert_int_eq(db_ensure(&db, &err), DB_OK);
    ck_assert_int_eq(db.schema_version, LLMOPS_SCHEMA_VERSION);
    db_close(&db);
}
END_TEST

START_TEST(test_refuses_newer_schema)
{
    fresh_db();
    ck_assert_int_eq(ctl("migrate"), 0);
    struct db db;
    struct db_error err;
    db_init(&db, conninfo, 2000, 2000, "check_db");
    PGresult *r = db_exec(&db,
                          "INSERT INTO schema_migrations (component, version, name, checksum) "
                          "VALUES ('core', 9999, '9999_future.sql', 'x')",
                          0, NULL, &err);
    ck_assert_ptr_nonnull(r);
    PQclear(r);
    ck_assert_int_eq(ctl("migrate"), 3);
    int st;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cat %s/ctl.out", dir);
    ck_assert_ptr_nonnull(strstr(capture(cmd, &st), "newer than this build knows"));
    /* and the server side sees the mismatch */
    db_close(&db);
    db_init(&db, conninfo, 2000, 2000, "check_db");
    ck_assert_int_eq(db_ensure(&db, &err), DB_OK);
    ck_assert_int_eq(db.schema_version, 9999);
    db_close(&db);
}
END_TEST

START_TEST(test_failed_migration_applies_nothing)
{
    fresh_db();
    char mdir[128];
    snprintf(mdir, sizeof mdir, "%s/mig", dir);
    sh("mkdir -p %s && printf 'CREATE TABLE a (x int);\\nCREATE TABLE oops (;\\n' > "
       "%s/0001_bad.sql",
       mdir, mdir);
    char args[256];
    snprintf(args, sizeof args, "migrate --dir %s", mdir);
    ck_assert_int_eq(ctl(args), 1);
    struct db db;
    struct db_error err;
    db_init(&db, conninfo, 2000, 2000, "check_db");
    PGresult *r = db_exec(&db, "SELECT to_regclass('a') IS NULL, count(*) FROM schema_migrations",
                          0, NULL, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "t"); /* table a rolled back */
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "0");
    PQclear(r);
    db_close(&db);
}
END_TEST

/* A module that owns tables ships migrations/<module>/NNNN_*.sql: applied after the core's,
 * recorded per component, listed by --status, and reachable through host->db_exec. */
START_TEST(test_module_migrations)
{
    fresh_db();
    char mdir[128];
    snprintf(mdir, sizeof mdir, "%s/mig2", dir);
    sh("mkdir -p %s/mymod && cp %s/migrations/*.sql %s/ && "
       "printf 'CREATE TABLE mymod_items (id int PRIMARY KEY);\\n' > %s/mymod/0001_items.sql && "
       "printf 'ALTER TABLE mymod_items ADD COLUMN name text;\\n' > %s/mymod/0002_name.sql",
       mdir, LLMOPS_SOURCE_DIR, mdir, mdir, mdir);
    char args[256];
    snprintf(args, sizeof args, "migrate --dir %s", mdir);
    ck_assert_int_eq(ctl(args), 0);
    int st;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cat %s/ctl.out", dir);
    char *out = capture(cmd, &st);
    ck_assert_ptr_nonnull(strstr(out, "applied mymod/0001_items.sql"));
    ck_assert_ptr_nonnull(strstr(out, "mymod at version 2 (2 migrations applied now)"));
    ck_assert_int_eq(ctl(args), 0); /* again: nothing to do */
    ck_assert_ptr_nonnull(strstr(capture(cmd, &st), "mymod at version 2 (0 migrations"));
    snprintf(args, sizeof args, "migrate --status --dir %s", mdir);
    ck_assert_int_eq(ctl(args), 0);
    ck_assert_ptr_nonnull(strstr(capture(cmd, &st), "0002  applied  mymod/0002_name.sql"));
    /* the core's version is not confused by the module's */
    struct db db;
    struct db_error err;
    db_init(&db, conninfo, 2000, 2000, "check_db");
    ck_assert_int_eq(db_ensure(&db, &err), DB_OK);
    ck_assert_int_eq(db.schema_version, LLMOPS_SCHEMA_VERSION);
    PGresult *r =
        db_exec(&db, "INSERT INTO mymod_items VALUES (1, 'x') RETURNING name", 0, NULL, &err);
    ck_assert_ptr_nonnull(r);
    PQclear(r);
    db_close(&db);
}
END_TEST

START_TEST(test_query_deadline_and_reconnect)
{
    fresh_db();
    struct db db;
    struct db_error err;
    db_init(&db, conninfo, 2000, 300, "check_db");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    PGresult *r = db_exec(&db, "SELECT pg_sleep(5)", 0, NULL, &err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(err.status, DB_UNAVAILABLE);
    double took = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    ck_assert_double_lt(took, 2.0);
    ck_assert_uint_eq(db.reconnects, 0);
    /* the next statement reconnects by itself, and it is counted as a reconnect (the dropped
     * connection is gone by then: llmops_database_reconnects_total stayed 0 when the count
     * looked at it) */
    r = db_exec(&db, "SELECT 41 + 1", 0, NULL, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "42");
    PQclear(r);
    ck_assert_uint_eq(db.reconnects, 1);
    /* a refused statement is a query error with its SQLSTATE, not an outage */
    r = db_exec(&db, "SELECT * FROM no_such_table", 0, NULL, &err);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(err.status, DB_QUERY_ERROR);
    ck_assert_str_eq(err.sqlstate, "42P01");
    db_close(&db);
    /* nothing listening: unavailable, fast */
    char bad[300];
    snprintf(bad, sizeof bad, "host=%s/sock port=1 user=postgres dbname=x", dir);
    db_init(&db, bad, 1000, 1000, "check_db");
    ck_assert_int_eq(db_ensure(&db, &err), DB_UNAVAILABLE);
    db_close(&db);
}
END_TEST

START_TEST(test_tokens_cli)
{
    fresh_db();
    ck_assert_int_eq(ctl("migrate"), 0);
    int st;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/llm-opsctl --config %s token create --name ci --role operator",
             LLMOPS_BIN_DIR, conf_path);
    char token[128];
    snprintf(token, sizeof token, "%s", capture(cmd, &st));
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(strlen(token), strlen("llmops_") + 64 + 1);
    ck_assert(strncmp(token, "llmops_", 7) == 0);
    token[strlen(token) - 1] = '\0';
    /* a second token of the same name is refused; bad role and duration are usage errors */
    ck_assert_int_eq(ctl("token create --name ci --role reader"), 1);
    ck_assert_int_eq(ctl("token create --name x --role root"), 2);
    ck_assert_int_eq(ctl("token create --name x --role reader --expires-in 5y"), 2);
    ck_assert_int_eq(ctl("token create --name 'bad name' --role reader"), 1);
    ck_assert_int_eq(ctl("token create --name short --role reader --expires-in 1h"), 0);
    /* list never shows the token or its hash */
    ck_assert_int_eq(ctl("token list"), 0);
    snprintf(cmd, sizeof cmd, "cat %s/ctl.out", dir);
    char *list = capture(cmd, &st);
    ck_assert_ptr_nonnull(strstr(list, "ci "));
    ck_assert_ptr_nonnull(strstr(list, "operator"));
    ck_assert_ptr_null(strstr(list, token + 7));
    ck_assert_ptr_null(strstr(list, "llmops_"));
    /* stored hashed: the table holds the SHA-256, never the token */
    struct db db;
    struct db_error err;
    db_init(&db, conninfo, 2000, 2000, "check_db");
    PGresult *r = db_exec(&db,
                          "SELECT token_sha256 = encode(sha256(convert_to($1, 'UTF8')), 'hex'), "
                          "position($1 in token_sha256) FROM api_tokens WHERE name = 'ci'",
                          1, (const char *const[]){token}, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "t");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "0");
    PQclear(r);
    db_close(&db);
    ck_assert_int_eq(ctl("token revoke ci"), 0);
    ck_assert_int_eq(ctl("token revoke ci"), 1);
    ck_assert_int_eq(ctl("token list"), 0);
    ck_assert_ptr_nonnull(strstr(capture(cmd, &st), "revoked"));
    /* the name is free again once revoked */
    ck_assert_int_eq(ctl("token create --name ci --role reader"), 0);
}
END_TEST

START_TEST(test_seed_idempotent)
{
    fresh_db();
    ck_assert_int_eq(ctl("migrate"), 0);
    ck_assert_int_eq(ctl("seed"), 0);
    int st;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cat %s/ctl.out", dir);
    ck_assert_ptr_nonnull(strstr(capture(cmd, &st), " 0 already present"));
    ck_assert_int_eq(ctl("seed"), 0);
    ck_assert_ptr_nonnull(strstr(capture(cmd, &st), " 0 inserted"));
    /* a bad seed inserts nothing and names the member */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/bad.json", dir);
    FILE *f = fopen(bad, "w");
    fputs("{\"environments\":{\"dev\":[{\"name\":\"z\",\"vendor\":\"acme\"}]}}", f);
    fclose(f);
    char args[256];
    snprintf(args, sizeof args, "seed --file %s", bad);
    ck_assert_int_eq(ctl(args), 1);
    snprintf(cmd, sizeof cmd, "cat %s/ctl.err", dir);
    ck_assert_ptr_nonnull(strstr(capture(cmd, &st), "environments.dev[0].vendor"));
}
END_TEST

START_TEST(test_ctl_usage)
{
    ck_assert_int_eq(ctl("--help"), 0);
    ck_assert_int_eq(ctl("frobnicate"), 2);
    ck_assert_int_eq(ctl("token"), 2);
    ck_assert_int_eq(ctl("check-config"), 0);
    ck_assert_int_eq(
        sh("%s/llm-opsctl --config /nonexistent.conf check-config 2>/dev/null", LLMOPS_BIN_DIR), 2);
    ck_assert_int_eq(
        sh("%s/llm-opsd --config /nonexistent.conf --check-config 2>/dev/null", LLMOPS_BIN_DIR), 2);
    ck_assert_int_eq(
        sh("%s/llm-opsd --check-config --config %s >/dev/null", LLMOPS_BIN_DIR, conf_path), 0);
}
END_TEST

/* The database down: err.message has our words only (clients may read it), err.detail
 * libpq's, with the socket path, for the log and llm-opsctl. */
START_TEST(test_unavailable_texts)
{
    char ci[256], sockfile[200];
    snprintf(ci, sizeof ci, "host=%s/sock port=1 user=postgres dbname=x", dir);
    snprintf(sockfile, sizeof sockfile, "%s/sock/.s.PGSQL.1", dir);
    struct db db;
    db_init(&db, ci, 2000, 2000, "check_db");
    struct db_error err;
    ck_assert_int_eq(db_ensure(&db, &err), DB_UNAVAILABLE);
    ck_assert_str_eq(err.message, "cannot connect to PostgreSQL");
    ck_assert_msg(strstr(err.detail, sockfile) != NULL, "detail: %s", err.detail);
    ck_assert_str_eq(db_error_detail(&err), err.detail);
    ck_assert_ptr_null(db_exec(&db, "SELECT 1", 0, NULL, &err));
    ck_assert_msg(!strstr(err.message, dir), "message: %s", err.message);
    db_close(&db);
    /* llm-opsctl, the operator's tool, says all of it */
    char path[160], cmd[512];
    snprintf(path, sizeof path, "%s/down.conf", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "[database]\nconninfo = %s\nconnect_timeout_ms = 2000\n", ci);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s/llm-opsctl --config %s migrate 2>&1", LLMOPS_BIN_DIR, path);
    int st;
    char *out = capture(cmd, &st);
    ck_assert_int_ne(st, 0);
    ck_assert_msg(strstr(out, sockfile) != NULL, "llm-opsctl said: %s", out);
}
END_TEST

/* Authentication is trust: the socket's directory is the gate, the postgres user's, 0700. */
START_TEST(test_socket_dir_private)
{
    char sock[160];
    snprintf(sock, sizeof sock, "%s/sock", dir);
    struct stat sb;
    ck_assert_int_eq(stat(sock, &sb), 0);
    ck_assert_msg((sb.st_mode & 0077) == 0, "%s has mode %o", sock, (unsigned)(sb.st_mode & 07777));
    if (getuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        ck_assert_ptr_nonnull(pw);
        ck_assert_int_eq(sb.st_uid, pw->pw_uid);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("db");
    TCase *tc = tcase_create("Core");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, cluster_up, cluster_down);
    tcase_add_test(tc, test_migrate_twice_at_once);
    tcase_add_test(tc, test_refuses_newer_schema);
    tcase_add_test(tc, test_upgrades_old_bookkeeping);
    tcase_add_test(tc, test_failed_migration_applies_nothing);
    tcase_add_test(tc, test_module_migrations);
    tcase_add_test(tc, test_query_deadline_and_reconnect);
    tcase_add_test(tc, test_tokens_cli);
    tcase_add_test(tc, test_seed_idempotent);
    tcase_add_test(tc, test_ctl_usage);
    tcase_add_test(tc, test_unavailable_texts);
    tcase_add_test(tc, test_socket_dir_private);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
