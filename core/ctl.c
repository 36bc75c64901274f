/* llm-opsctl: the admin command line of llm-ops. */
#include "app.h"
#include "auth.h"
#include "build-config.h"
#include "checkconf.h"
#include "conf.h"
#include "db.h"
#include "doctor.h"
#include "flags.h"
#include "plugin.h"
#include "gpu.h"
#include "log.h"
#include "migrate.h"
#include "outbox.h"
#include "sync.h"
#include "sync_serving.h"
#include "util.h"

#include <getopt.h>
#include <pwd.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_TOO_NEW = 3 };

static void usage(FILE *to)
{
    fprintf(to,
            "usage: llm-opsctl [--config PATH] COMMAND ...\n"
            "\n"
            "  migrate [--dir DIR]        apply pending database migrations\n"
            "  migrate --status [--dir DIR]\n"
            "                             list applied and pending migrations\n"
            "  seed [--file FILE]         insert the GPU types of the seed file (existing names\n"
            "                             are kept)\n"
            "  token create --name NAME --role reader|operator|admin|alerts [--expires-in "
            "30d|12h|90m]\n"
            "                             print a new token on stdout (shown this once only)\n"
            "  token list                 list tokens (never the token itself)\n"
            "  token revoke NAME          revoke the token NAME\n"
            "  flags get [--env ENV]      show the effective flags\n"
            "  flags set ENV CATEGORY --active INSTANCE [--fallback INSTANCE]\n"
            "            [--candidate INSTANCE --rollout PERCENT] --reason TEXT\n"
            "  flags rollback ENV CATEGORY --reason TEXT\n"
            "                             serve CATEGORY of ENV from its fallback, now\n"
            "  outbox discard ID --reason TEXT\n"
            "                             skip the dead outbox row ID (audited), so the rows\n"
            "                             of its run behind it are delivered\n"
            "  sync tracking --from INSTANCE --to INSTANCE [--experiment NAME] [--dry-run]\n"
            "                             copy experiments, runs, params, tags and metric\n"
            "                             histories between experiment_tracking instances\n"
            "                             (idempotent: a second run copies nothing)\n"
            "  sync serving --from INSTANCE --to INSTANCE [--deployment NAME] [--timeout SECONDS]\n"
            "               [--dry-run]\n"
            "                             move deployments between serving instances: re-create,\n"
            "                             wait for ready (default 300 s each), switch the owner,\n"
            "                             then remove the old one (a second run moves nothing)\n"
            "  doctor                     check the configuration, the database and its\n"
            "                             migrations, every instance's tool and version, and\n"
            "                             the flags; a table, exit 1 when something failed\n"
            "  check-config               validate the configuration\n"
            "\n"
            "Exit status: 0 ok, 1 failure, 2 usage or configuration error, 3 database schema\n"
            "newer than this build. See llm-opsctl(8).\n");
}

static int load_conf(const char *path, struct llmops_conf *conf)
{
    struct conf_errors errs = {0};
    int n = conf_load(path, conf, &errs);
    for (int i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    conf_errors_free(&errs);
    return n > 0 ? -1 : 0;
}

static int connect_db(struct db *db, const struct llmops_conf *conf)
{
    struct db_error err;
    int timeout = conf->db_connect_timeout_ms < 5000 ? 5000 : (int)conf->db_connect_timeout_ms;
    db_init(db, conf->db_conninfo, timeout, 600000, "llm-opsctl");
    if (db_ensure(db, &err) != DB_OK) {
        fprintf(stderr, "llm-opsctl: cannot connect to PostgreSQL: %s\n", db_error_detail(&err));
        db_close(db);
        return -1;
    }
    return 0;
}

static int cmd_migrate(const struct llmops_conf *conf, int argc, char **argv)
{
    const char *dir = conf->migrations_dir;
    int status = 0;
    static const struct option o[] = {{"dir", required_argument, NULL, 'd'},
                                      {"status", no_argument, NULL, 's'},
                                      {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:s", o, NULL)) != -1) {
        if (c == 'd')
            dir = optarg;
        else if (c == 's')
            status = 1;
        else
            return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "llm-opsctl migrate: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    struct db db;
    if (connect_db(&db, conf) < 0)
        return EXIT_FAIL;
    enum migrate_result r = status ? migrate_status(db.conn, dir, LLMOPS_SCHEMA_VERSION, stdout)
                                   : migrate_apply(db.conn, dir, LLMOPS_SCHEMA_VERSION, stdout);
    db_close(&db);
    return r == MIGRATE_OK ? EXIT_OK : r == MIGRATE_TOO_NEW ? EXIT_TOO_NEW : EXIT_FAIL;
}

static int cmd_seed(const struct llmops_conf *conf, int argc, char **argv)
{
    const char *file = conf->seed_file;
    static const struct option o[] = {{"file", required_argument, NULL, 'f'}, {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:", o, NULL)) != -1) {
        if (c == 'f')
            file = optarg;
        else
            return EXIT_USAGE;
    }
    json_error_t jerr;
    json_t *seed = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    if (!seed) {
        fprintf(stderr, "%s:%d:%d: %s\n", file, jerr.line, jerr.column, jerr.text);
        return EXIT_USAGE;
    }
    struct db db;
    if (connect_db(&db, conf) < 0) {
        json_decref(seed);
        return EXIT_FAIL;
    }
    int inserted, kept;
    char msg[512];
    int rc = gpu_seed(&db, conf, seed, &inserted, &kept, msg, sizeof msg);
    json_decref(seed);
    db_close(&db);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", file, msg);
        return EXIT_FAIL;
    }
    printf("seeded GPU types from %s: %d inserted, %d already present\n", file, inserted, kept);
    return EXIT_OK;
}

/* "30d", "12h", "90m", "45s" → seconds. */
static int parse_duration(const char *s, long long *secs)
{
    size_t n = strlen(s);
    if (n < 2)
        return -1;
    long long mult;
    switch (s[n - 1]) {
    case 's':
        mult = 1;
        break;
    case 'm':
        mult = 60;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = 86400;
        break;
    default:
        return -1;
    }
    char num[32];
    if (n - 1 >= sizeof num)
        return -1;
    memcpy(num, s, n - 1);
    num[n - 1] = '\0';
    long long v;
    if (util_parse_int(num, 1, 100LL * 365 * 86400 / mult, &v, NULL) < 0)
        return -1;
    *secs = v * mult;
    return 0;
}

static int cmd_token_create(const struct llmops_conf *conf, int argc, char **argv)
{
    const char *name = NULL, *role = NULL, *expires = NULL;
    static const struct option o[] = {{"name", required_argument, NULL, 'n'},
                                      {"role", required_argument, NULL, 'r'},
                                      {"expires-in", required_argument, NULL, 'e'},
                                      {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:r:e:", o, NULL)) != -1) {
        if (c == 'n')
            name = optarg;
        else if (c == 'r')
            role = optarg;
        else if (c == 'e')
            expires = optarg;
        else
            return EXIT_USAGE;
    }
    enum role rl;
    if (!name || !role) {
        fprintf(stderr, "llm-opsctl token create: --name and --role are required\n");
        return EXIT_USAGE;
    }
    if (role_from_string(role, &rl) < 0) {
        fprintf(stderr,
                "llm-opsctl token create: role '%s' is not reader, operator, admin or alerts\n",
                role);
        return EXIT_USAGE;
    }
    char interval[48];
    long long secs = 0;
    if (expires) {
        if (parse_duration(expires, &secs) < 0) {
            fprintf(stderr,
                    "llm-opsctl token create: --expires-in '%s' is not a duration such as 30d, "
                    "12h, 90m or 45s\n",
                    expires);
            return EXIT_USAGE;
        }
        snprintf(interval, sizeof interval, "%lld seconds", secs);
    }
    char token[72], hash[65];
    if (auth_new_token(token, hash) < 0) {
        fprintf(stderr, "llm-opsctl: no randomness available\n");
        return EXIT_FAIL;
    }
    struct db db;
    if (connect_db(&db, conf) < 0)
        return EXIT_FAIL;
    const char *params[] = {name, role, hash, expires ? interval : NULL};
    struct db_error err;
    PGresult *r = db_exec(&db,
                          "INSERT INTO api_tokens (name, role, token_sha256, expires_at) "
                          "VALUES ($1, $2, $3, now() + $4::interval)",
                          4, params, &err);
    db_close(&db);
    if (!r) {
        if (strcmp(err.sqlstate, DB_SQLSTATE_UNIQUE_VIOLATION) == 0)
            fprintf(stderr, "llm-opsctl: a token named '%s' exists already (revoke it first)\n",
                    name);
        else if (strcmp(err.sqlstate, "23514") == 0)
            fprintf(stderr,
                    "llm-opsctl: token name '%s' is not valid (1-63 of A-Z a-z 0-9 . _ @ -, "
                    "starting with a letter or digit)\n",
                    name);
        else
            fprintf(stderr, "llm-opsctl: %s\n", db_error_detail(&err));
        return EXIT_FAIL;
    }
    PQclear(r);
    printf("%s\n", token);
    fprintf(stderr, "token '%s' (%s) created; it is shown this once only\n", name, role);
    return EXIT_OK;
}

static int cmd_token_list(const struct llmops_conf *conf)
{
    struct db db;
    if (connect_db(&db, conf) < 0)
        return EXIT_FAIL;
    struct db_error err;
    PGresult *r = db_exec(
        &db,
        "SELECT name, role, to_char(created_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " coalesce(to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'),"
        " CASE WHEN revoked_at IS NOT NULL THEN 'revoked'"
        "      WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired'"
        "      ELSE 'active' END"
        " FROM api_tokens ORDER BY created_at, id",
        0, NULL, &err);
    db_close(&db);
    if (!r) {
        fprintf(stderr, "llm-opsctl: %s\n", db_error_detail(&err));
        return EXIT_FAIL;
    }
    printf("%-32s %-9s %-21s %-21s %s\n", "NAME", "ROLE", "CREATED", "EXPIRES", "STATE");
    for (int i = 0; i < PQntuples(r); i++)
        printf("%-32s %-9s %-21s %-21s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
               PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
    PQclear(r);
    return EXIT_OK;
}

static int cmd_token_revoke(const struct llmops_conf *conf, const char *name)
{
    struct db db;
    if (connect_db(&db, conf) < 0)
        return EXIT_FAIL;
    struct db_error err;
    const char *params[] = {name};
    PGresult *r = db_exec(&db,
                          "UPDATE api_tokens SET revoked_at = now() "
                          "WHERE name = $1 AND revoked_at IS NULL",
                          1, params, &err);
    db_close(&db);
    if (!r) {
        fprintf(stderr, "llm-opsctl: %s\n", db_error_detail(&err));
        return EXIT_FAIL;
    }
    int n = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    if (!n) {
        fprintf(stderr, "llm-opsctl: no active token named '%s'\n", name);
        return EXIT_FAIL;
    }
    printf("token '%s' revoked\n", name);
    return EXIT_OK;
}

static void actor_name(char *buf, size_t size)
{
    struct passwd *pw = getpwuid(getuid());
    snprintf(buf, size, "cli:%s", pw ? pw->pw_name : "unknown");
}

static void print_flag(const struct flag *f, const char *env, int category)
{
    printf("%-6s %-20s %-20s %-20s %-20s %3d%%  %s\n", env, category_name(category),
           f->active[0] ? f->active : "-", f->fallback[0] ? f->fallback : "-",
           f->candidate[0] ? f->candidate : "-", f->rollout, f->overridden ? "override" : "config");
}

struct ctl_plan {
    const struct flag *set; /* flags set: the flag asked for */
    const char *env;
    int category;
};

static int ctl_plan_set(const struct flag *before, struct flag *after, void *ud, char *msg,
                        size_t msgsize)
{
    (void)before;
    (void)msg;
    (void)msgsize;
    *after = *((const struct ctl_plan *)ud)->set;
    return 0;
}

/* Decided on the flag as read under its lock, as the API does. */
static int ctl_plan_rollback(const struct flag *before, struct flag *after, void *ud, char *msg,
                             size_t msgsize)
{
    const struct ctl_plan *cp = ud;
    return flags_plan_rollback(before, cp->env, cp->category, after, msg, msgsize);
}

static int cmd_flags(const struct llmops_conf *conf, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "llm-opsctl flags: get, set or rollback?\n");
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    const char *env = NULL, *active = NULL, *fallback = NULL, *candidate = NULL, *reason = NULL;
    long long rollout = 0;
    static const struct option o[] = {{"env", required_argument, NULL, 'e'},
                                      {"active", required_argument, NULL, 'a'},
                                      {"fallback", required_argument, NULL, 'f'},
                                      {"candidate", required_argument, NULL, 'c'},
                                      {"rollout", required_argument, NULL, 'r'},
                                      {"reason", required_argument, NULL, 'm'},
                                      {NULL, 0, NULL, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "e:a:f:c:r:m:", o, NULL)) != -1) {
        switch (c) {
        case 'e':
            env = optarg;
            break;
        case 'a':
            active = optarg;
            break;
        case 'f':
            fallback = optarg;
            break;
        case 'c':
            candidate = optarg;
            break;
        case 'r':
            if (util_parse_int(optarg, 0, 100, &rollout, NULL) < 0) {
                fprintf(stderr, "llm-opsctl flags: --rollout '%s' is not a percentage 0-100\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'm':
            reason = optarg;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    int is_get = strcmp(sub, "get") == 0, is_set = strcmp(sub, "set") == 0,
        is_rb = strcmp(sub, "rollback") == 0;
    if (!is_get && !is_set && !is_rb) {
        fprintf(stderr, "llm-opsctl flags: unknown subcommand '%s'\n", sub);
        return EXIT_USAGE;
    }
    int env_index = -1, category = -1;
    if (is_get) {
        if (optind != argc)
            return EXIT_USAGE;
        if (env && (env_index = conf_env_index(conf, env)) < 0) {
            fprintf(stderr, "llm-opsctl flags: unknown environment '%s'\n", env);
            return EXIT_USAGE;
        }
    } else {
        if (argc - optind != 2) {
            fprintf(stderr, "llm-opsctl flags %s: ENV and CATEGORY are required\n", sub);
            return EXIT_USAGE;
        }
        env = argv[optind];
        if ((env_index = conf_env_index(conf, env)) < 0) {
            char list[600];
            conf_env_list(conf, list, sizeof list);
            fprintf(stderr, "llm-opsctl flags: unknown environment '%s'; valid: %s\n", env, list);
            return EXIT_USAGE;
        }
        if ((category = category_from_string(argv[optind + 1])) < 0) {
            fprintf(stderr, "llm-opsctl flags: unknown category '%s'; valid: %s\n",
                    argv[optind + 1], category_list());
            return EXIT_USAGE;
        }
        if (!reason || !*reason || strlen(reason) > FLAGS_REASON_MAX) {
            fprintf(stderr,
                    "llm-opsctl flags %s: --reason is required, 1-%d bytes (it is audited)\n", sub,
                    FLAGS_REASON_MAX);
            return EXIT_USAGE;
        }
        if (is_set && !active) {
            fprintf(stderr, "llm-opsctl flags set: --active is required\n");
            return EXIT_USAGE;
        }
        if (is_set && rollout > 0 && !candidate) {
            fprintf(stderr, "llm-opsctl flags set: --rollout needs --candidate\n");
            return EXIT_USAGE;
        }
    }
    struct db db;
    if (connect_db(&db, conf) < 0)
        return EXIT_FAIL;
    struct flag_cache fc;
    struct db_error err;
    int rc = EXIT_OK;
    if (flags_load(&fc, conf, &db, &err) < 0) {
        fprintf(stderr, "llm-opsctl: cannot read the flags: %s\n", db_error_detail(&err));
        db_close(&db);
        return EXIT_FAIL;
    }
    if (is_get) {
        printf("%-6s %-20s %-20s %-20s %-20s %4s  %s\n", "ENV", "CATEGORY", "ACTIVE", "FALLBACK",
               "CANDIDATE", "ROLL", "SOURCE");
        for (int e = 0; e < conf->n_envs; e++)
            for (int k = 1; k <= CATEGORY_COUNT; k++)
                if (env_index < 0 || env_index == e)
                    print_flag(&fc.f[e][k], conf->envs[e], k);
        db_close(&db);
        return EXIT_OK;
    }
    struct flag after;
    memset(&after, 0, sizeof after);
    if (is_set) {
        struct plugin_registry reg;
        struct conf_errors errs = {0};
        log_set_level(LOG_LVL_SILENT);
        plugins_load(&reg, conf, NULL, 0, &errs);
        conf_errors_free(&errs);
        char msg[600];
        if (flags_check_instances(&reg, category, active, fallback, candidate, msg, sizeof msg) <
            0) {
            fprintf(stderr, "llm-opsctl flags set: %s\n", msg);
            plugins_unload(&reg);
            db_close(&db);
            return EXIT_USAGE;
        }
        plugins_unload(&reg);
        snprintf(after.active, sizeof after.active, "%s", active);
        snprintf(after.fallback, sizeof after.fallback, "%s", fallback ? fallback : "");
        snprintf(after.candidate, sizeof after.candidate, "%s", candidate ? candidate : "");
        after.rollout = (int)rollout;
    }
    char actor[80];
    actor_name(actor, sizeof actor);
    struct ctl_plan cp = {&after, env, category};
    struct flag_change ch = {.actor = actor,
                             .action = is_set ? "set" : "rollback",
                             .reason = reason,
                             .plan = is_set ? ctl_plan_set : ctl_plan_rollback,
                             .ud = &cp};
    json_t *audit = flags_change(&db, conf, env, category, &ch, &err);
    if (!audit && err.status == DB_OK) {
        fprintf(stderr, "llm-opsctl flags rollback: %s\n", ch.refusal);
        rc = EXIT_FAIL;
    } else if (!audit) {
        fprintf(stderr, "llm-opsctl: %s\n", db_error_detail(&err));
        rc = EXIT_FAIL;
    } else {
        printf("%s of %s now served by %s (audit #%lld)\n", category_name(category), env,
               ch.after.active, (long long)json_integer_value(json_object_get(audit, "id")));
        json_decref(audit);
    }
    db_close(&db);
    return rc;
}

static int cmd_token(const struct llmops_conf *conf, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "llm-opsctl token: create, list or revoke?\n");
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "create") == 0)
        return cmd_token_create(conf, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0 && argc == 2)
        return cmd_token_list(conf);
    if (strcmp(argv[1], "revoke") == 0 && argc == 3)
        return cmd_token_revoke(conf, argv[2]);
    fprintf(stderr, "llm-opsctl token: usage: token create|list|revoke NAME\n");
    return EXIT_USAGE;
}

/* outbox discard ID --reason TEXT: as POST /llm-ops/v1/outbox/{id}/discard, by "cli:USER". */
static int cmd_outbox(const struct llmops_conf *conf, int argc, char **argv)
{
    long long id = 0;
    const char *reason = NULL;
    int ok = argc >= 3 && strcmp(argv[1], "discard") == 0 &&
             util_parse_int(argv[2], 1, INT64_MAX, &id, NULL) == 0;
    for (int i = 3; ok && i < argc; i++) {
        if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
            reason = argv[++i];
        else
            ok = 0;
    }
    if (!ok || !outbox_discard_reason_ok(reason)) {
        fprintf(stderr,
                "llm-opsctl outbox: usage: outbox discard ID --reason TEXT (ID an outbox "
                "row id; TEXT 1-%d characters)\n",
                OUTBOX_DISCARD_REASON_MAX);
        return EXIT_USAGE;
    }
    struct db db;
    if (connect_db(&db, conf) < 0)
        return EXIT_FAIL;
    char actor[80];
    actor_name(actor, sizeof actor);
    struct outbox_discarded d;
    struct db_error err;
    enum outbox_discard_outcome rc = outbox_discard_row(&db, id, actor, reason, &d, &err);
    db_close(&db);
    switch (rc) {
    case OUTBOX_DISCARDED:
        printf("outbox row %lld (%s of %s) discarded; %lld row%s behind it may go out\n", id,
               d.operation, d.object_id, d.released, d.released == 1 ? "" : "s");
        return EXIT_OK;
    case OUTBOX_DISCARD_NOT_FOUND:
        fprintf(stderr, "llm-opsctl: no outbox row %lld\n", id);
        break;
    case OUTBOX_DISCARD_NOT_DEAD:
        fprintf(stderr,
                "llm-opsctl: outbox row %lld is %s, not dead: only a dead row can be "
                "discarded\n",
                id, d.state);
        break;
    case OUTBOX_DISCARD_BINDS_OBJECT:
        fprintf(stderr,
                "llm-opsctl: outbox row %lld opens its object (%s) and cannot be discarded: "
                "fix its cause and retry it\n",
                id, d.operation);
        break;
    case OUTBOX_DISCARD_DB_ERROR:
        fprintf(stderr, "llm-opsctl: %s\n", db_error_detail(&err));
        break;
    }
    return EXIT_FAIL;
}

static int cmd_sync_serving(const struct llmops_conf *conf, int argc, char **argv);

/* sync CATEGORY's --from and --to: both given, no other argument, not the same instance. */
static int check_from_to(const char *category, const char *from, const char *to, int args_done)
{
    if (!from || !to || !args_done) {
        fprintf(stderr, "llm-opsctl sync %s: --from INSTANCE and --to INSTANCE are required\n",
                category);
        return -1;
    }
    if (strcmp(from, to) == 0) {
        fprintf(stderr, "llm-opsctl sync %s: --from and --to name the same instance\n", category);
        return -1;
    }
    return 0;
}

static int cmd_sync(const struct llmops_conf *conf, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "serving") == 0)
        return cmd_sync_serving(conf, argc, argv);
    const char *from = NULL, *to = NULL, *experiment = NULL;
    int dry_run = 0;
    static const struct option o[] = {{"from", required_argument, NULL, 'f'},
                                      {"to", required_argument, NULL, 't'},
                                      {"experiment", required_argument, NULL, 'e'},
                                      {"dry-run", no_argument, NULL, 'n'},
                                      {NULL, 0, NULL, 0}};
    if (argc < 2 || strcmp(argv[1], "tracking") != 0) {
        fprintf(stderr, "llm-opsctl sync: usage: sync tracking --from INSTANCE --to INSTANCE "
                        "[--experiment NAME] [--dry-run]\n"
                        "       sync serving --from INSTANCE --to INSTANCE [--deployment NAME] "
                        "[--timeout SECONDS] [--dry-run]\n");
        return EXIT_USAGE;
    }
    optind = 1;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, "", o, NULL)) != -1) {
        switch (c) {
        case 'f':
            from = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'e':
            experiment = optarg;
            break;
        case 'n':
            dry_run = 1;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (check_from_to("tracking", from, to, optind == argc - 1) < 0)
        return EXIT_USAGE;
    struct db db;
    if (connect_db(&db, conf) < 0)
        return EXIT_FAIL;
    struct plugin_registry reg;
    struct conf_errors errs = {0};
    plugins_load(&reg, conf, &db, 1, &errs);
    conf_errors_free(&errs);
    int rc = EXIT_OK;
    const char *names[2] = {from, to};
    struct instance *in[2];
    for (int k = 0; k < 2; k++) {
        in[k] = plugins_find(&reg, names[k]);
        if (!in[k] || !in[k]->mod ||
            in[k]->mod->desc->category != LLMOPS_CATEGORY_EXPERIMENT_TRACKING) {
            fprintf(stderr,
                    "llm-opsctl sync tracking: no experiment_tracking instance named "
                    "'%s' in the configuration\n",
                    names[k]);
            rc = EXIT_USAGE;
        } else if (!in[k]->initialised) {
            fprintf(stderr, "llm-opsctl sync tracking: instance %s is not running: %s\n", names[k],
                    in[k]->reason);
            rc = EXIT_FAIL;
        }
    }
    if (rc == EXIT_OK) {
        struct sync_counts n;
        char error[800];
        int r = sync_tracking(in[0], in[1], experiment, dry_run, &n, error, sizeof error);
        printf("%s%s -> %s: experiments %ld created, %ld existing; runs %ld created, %ld "
               "existing; params %ld, tags %ld set; metric points %ld copied, %ld already there\n",
               dry_run ? "dry run (nothing written): " : "", from, to, n.experiments_created,
               n.experiments_existing, n.runs_created, n.runs_existing, n.params, n.tags,
               n.points_copied, n.points_existing);
        if (r < 0) {
            fprintf(stderr,
                    "llm-opsctl sync tracking: stopped: %s (what was copied stays; run "
                    "it again to go on)\n",
                    error);
            rc = EXIT_FAIL;
        }
    }
    plugins_unload(&reg);
    db_close(&db);
    return rc;
}

/* sync serving: as sync tracking, for the serving category (sync_serving.h). Exit 0 when
 * every deployment listed moved (or there was none to move), 1 when one was skipped or
 * failed. */
static int cmd_sync_serving(const struct llmops_conf *conf, int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *deployment = NULL;
    int dry_run = 0;
    long long timeout = SYNC_SERVING_TIMEOUT_S;
    static const struct option o[] = {
        {"from", required_argument, NULL, 'f'},       {"to", required_argument, NULL, 't'},
        {"deployment", required_argument, NULL, 'd'}, {"timeout", required_argument, NULL, 'w'},
        {"dry-run", no_argument, NULL, 'n'},          {NULL, 0, NULL, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, "", o, NULL)) != -1) {
        switch (c) {
        case 'f':
            from = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'd':
            deployment = optarg;
            break;
        case 'w':
            if (util_parse_int(optarg, 1, 86400, &timeout, NULL) < 0) {
                fprintf(stderr,
                        "llm-opsctl sync serving: --timeout '%s' is not a number of seconds "
                        "1-86400\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'n':
            dry_run = 1;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (check_from_to("serving", from, to, optind == argc - 1) < 0)
        return EXIT_USAGE;
    struct app *app = calloc(1, sizeof *app);
    if (!app) {
        fprintf(stderr, "llm-opsctl: out of memory\n");
        return EXIT_FAIL;
    }
    /* the engine's call path (serving_call) and serving's row helpers take an app: one of
     * the command's own, its plugins initialised */
    app_init(app, (struct llmops_conf *)conf);
    struct db_error dberr;
    if (db_ensure(&app->db, &dberr) != DB_OK) {
        fprintf(stderr, "llm-opsctl: cannot connect to PostgreSQL: %s\n", db_error_detail(&dberr));
        app_fini(app);
        free(app);
        return EXIT_FAIL;
    }
    int rc = EXIT_OK;
    const char *names[2] = {from, to};
    struct instance *in[2];
    for (int k = 0; k < 2; k++) {
        in[k] = plugins_find(&app->plugins, names[k]);
        if (!in[k] || !in[k]->mod || in[k]->mod->desc->category != LLMOPS_CATEGORY_SERVING) {
            fprintf(stderr,
                    "llm-opsctl sync serving: no serving instance named '%s' in the "
                    "configuration\n",
                    names[k]);
            rc = EXIT_USAGE;
        } else if (!in[k]->initialised) {
            fprintf(stderr, "llm-opsctl sync serving: instance %s is not running: %s\n", names[k],
                    in[k]->reason);
            rc = EXIT_FAIL;
        }
    }
    if (rc == EXIT_OK) {
        char actor[80], error[800];
        actor_name(actor, sizeof actor);
        struct sync_serving_opts so = {deployment, dry_run, timeout * 1000, actor, stdout};
        struct sync_serving_counts n;
        if (sync_serving(app, in[0], in[1], &so, &n, error, sizeof error) < 0) {
            fprintf(stderr, "llm-opsctl sync serving: %s\n", error);
            rc = EXIT_FAIL;
        } else if (n.listed == 0) {
            char q[UTIL_QUOTE_SIZE(64)];
            if (deployment) {
                /* moved already (a re-run), or a name nobody has */
                const char *p[] = {deployment, to};
                PGresult *res = db_exec(&app->db,
                                        "SELECT 1 FROM deployments WHERE name = $1"
                                        " AND instance = $2 AND state <> 'deleted'",
                                        2, p, &dberr);
                int there = res && PQntuples(res) > 0;
                if (res)
                    PQclear(res);
                util_quote(q, sizeof q, deployment, 64);
                if (there) {
                    printf("%s%s -> %s: nothing to move: deployment '%s' is owned by %s "
                           "already\n",
                           dry_run ? "dry run (nothing written): " : "", from, to, q, to);
                } else {
                    fprintf(stderr,
                            "llm-opsctl sync serving: instance %s has no live deployment named "
                            "'%s'\n",
                            from, q);
                    rc = EXIT_FAIL;
                }
            } else
                printf("%s%s -> %s: nothing to move: %s owns no live deployment\n",
                       dry_run ? "dry run (nothing written): " : "", from, to, from);
        } else {
            printf("%s%s -> %s: deployments %ld %s, %ld skipped, %ld failed (of %ld; up to %lld s "
                   "each for ready)%s\n",
                   dry_run ? "dry run (nothing written): " : "", from, to, n.moved,
                   dry_run ? "would move" : "moved", n.skipped, n.failed, n.listed, timeout,
                   n.cleanup_left ? "; old objects left for the background process to remove" : "");
            if (n.skipped || n.failed)
                rc = EXIT_FAIL;
        }
    }
    app_fini(app);
    free(app);
    return rc;
}

int main(int argc, char **argv)
{
    const char *config = LLMOPS_DEFAULT_CONFIG;
    const char *env_conf = getenv("LLMOPS_CONFIG");
    if (env_conf && *env_conf)
        config = env_conf;
    log_set_program("llm-opsctl");
    log_set_level(LOG_LVL_WARNING);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config = argv[i] + 9;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("llm-opsctl %s (schema %d)\n", LLMOPS_VERSION, LLMOPS_SCHEMA_VERSION);
            return EXIT_OK;
        } else {
            fprintf(stderr, "llm-opsctl: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i == argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    struct llmops_conf conf;
    int conf_ok = load_conf(config, &conf) == 0;
    int rc;
    if (strcmp(cmd, "check-config") == 0) {
        rc = conf_ok ? check_config(config) : EXIT_USAGE;
    } else if (!conf_ok) {
        rc = EXIT_USAGE;
    } else if (strcmp(cmd, "migrate") == 0) {
        rc = cmd_migrate(&conf, sub_argc, sub_argv);
    } else if (strcmp(cmd, "seed") == 0) {
        rc = cmd_seed(&conf, sub_argc, sub_argv);
    } else if (strcmp(cmd, "flags") == 0) {
        rc = cmd_flags(&conf, sub_argc, sub_argv);
    } else if (strcmp(cmd, "token") == 0) {
        rc = cmd_token(&conf, sub_argc, sub_argv);
    } else if (strcmp(cmd, "doctor") == 0) {
        if (sub_argc != 1) {
            fprintf(stderr, "llm-opsctl doctor: takes no arguments\n");
            rc = EXIT_USAGE;
        } else {
            rc = doctor_run(config, &conf, stdout);
        }
    } else if (strcmp(cmd, "sync") == 0) {
        rc = cmd_sync(&conf, sub_argc, sub_argv);
    } else if (strcmp(cmd, "outbox") == 0) {
        rc = cmd_outbox(&conf, sub_argc, sub_argv);
    } else {
        fprintf(stderr, "llm-opsctl: unknown command '%s'\n", cmd);
        usage(stderr);
        rc = EXIT_USAGE;
    }
    conf_free(&conf);
    return rc;
}
