/* The background process (llm-opsd --background) end to end: watches and long operations,
 * on one stack (tests/harness/stack --no-jobs: the tests start and kill the background
 * processes themselves) with the tracking-pg plugin and the test module bgtest. */
#include "api.h"
#include "llmops-operations.h"
#include "testutil.h"

#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct stack st;
static char plugdir[300];

static void setup(void)
{
    /* one plugin dir with tracking-pg (training jobs' runs) and bgtest */
    const char *tmp = getenv("TMPDIR");
    snprintf(plugdir, sizeof plugdir, "%s/llmops-bgplug-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(plugdir));
    ck_assert_int_eq(
        tu_sh("cp %s/tracking-pg.so %s/bgtest.so %s/", PLUGINS_DIR, BG_PLUGIN_DIR, plugdir), 0);
    char dropin[340];
    snprintf(dropin, sizeof dropin, "%s/50-bgtest.conf", plugdir);
    FILE *f = fopen(dropin, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "[plugin \"bgtest\"]\nmodule = bgtest\n");
    fclose(f);
    char opts[900];
    snprintf(opts, sizeof opts, "--custom-plugins --no-jobs --plugin-dir %s --drop-in %s", plugdir,
             dropin);
    stack_start(&st, "bg", opts);
}

static void teardown(void)
{
    tu_sh("test -f %s/bg.pids && xargs -r kill -9 <%s/bg.pids 2>/dev/null; true", st.dir, st.dir);
    stack_stop(&st);
    tu_sh("rm -rf %s", plugdir);
}

#define EXPECT(status, want, j)                                                                    \
    do {                                                                                           \
        if ((status) != (want)) {                                                                  \
            char *d_ = json_dumps(j, JSON_COMPACT);                                                \
            ck_abort_msg("HTTP %d, wanted %d: %.600s", status, want, d_ ? d_ : "?");               \
        }                                                                                          \
    } while (0)

/* One SQL statement; its first line of output (tu_capture's static buffer). */
static char *sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sql(const char *fmt, ...)
{
    char q[2000], path[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, "%s/q.sql", st.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(q, f);
    fclose(f);
    int rc;
    char *out = tu_capture(&rc,
                           ". %s/env && psql -h \"$PGHOST\" -p \"$PGPORT\" -U postgres -d llmops"
                           " -X -q -tA -v ON_ERROR_STOP=1 -f %s",
                           st.dir, path);
    ck_assert_msg(rc == 0, "psql failed (%d) on: %s", rc, q);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

/* A background process of our own, logging to DIR/bg.log; its pid is noted for teardown.
 * `extra`: lines appended to a copy of the stack's configuration (NULL: none). */
static pid_t bg_start_with(const char *extra)
{
    static int confs;
    char conf[300];
    snprintf(conf, sizeof conf, "%s", st.conf);
    if (extra) {
        snprintf(conf, sizeof conf, "%s/bg-%d.conf", st.dir, ++confs);
        ck_assert_int_eq(tu_sh("cp %s %s", st.conf, conf), 0);
        FILE *f = fopen(conf, "a");
        ck_assert_ptr_nonnull(f);
        fputs(extra, f);
        fclose(f);
    }
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char log[300], bin[400];
        snprintf(log, sizeof log, "%s/bg.log", st.dir);
        snprintf(bin, sizeof bin, "%s/llm-opsd", getenv("LLMOPS_BIN_DIR"));
        if (!freopen(log, "a", stdout) || !freopen(log, "a", stderr))
            _exit(126);
        setsid();
        execl(bin, "llm-opsd", "--background", "--config", conf, (char *)NULL);
        _exit(127);
    }
    tu_sh("echo %ld >>%s/bg.pids", (long)pid, st.dir);
    return pid;
}

static pid_t bg_start(void)
{
    return bg_start_with(NULL);
}

/* SIGTERM and wait; returns the seconds it took to exit. */
static double bg_stop(pid_t pid)
{
    double t0 = now_s();
    kill(pid, SIGTERM);
    int status;
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return now_s() - t0;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    double took = now_s() - t0;
    /* under ASan+UBSan (CI), what the background processes reported fails the test */
    ck_assert_msg(
        tu_sh("! grep -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:' %s/bg.log >&2", st.dir) == 0,
        "a sanitizer reported an error in %s/bg.log", st.dir);
    return took;
}

static int counter;

/* A platform object of bgtest with that tool id; returns its platform id (static). */
static const char *object(const char *external_id)
{
    static char id[40];
    snprintf(id, sizeof id, "mdl_%08x%08x%08x", (unsigned)getpid(), (unsigned)++counter,
             (unsigned)time(NULL));
    sql("INSERT INTO objects (id, kind, environment, category, instance, external_id, "
        "created_by) VALUES ('%s', 'model', 'dev', 'model_registry', 'bgtest', '%s', 'test')",
        id, external_id);
    return id;
}

static long long watch(const char *object_id, int base_ms, int max_ms, int deadline_ms)
{
    char *out = sql("INSERT INTO watches (object_id, environment, category, read_op,"
                    " ready_states, failed_states, base_delay_ms, max_delay_ms, deadline_at)"
                    " VALUES ('%s', 'dev', 'model_registry', 'get_model', '{ready}', '{failed}',"
                    " %d, %d, now() + %d * interval '1 millisecond') RETURNING id",
                    object_id, base_ms, max_ms, deadline_ms);
    return strtoll(out, NULL, 10);
}

/* Waits (bounded) until the watch leaves 'watching'; returns its state (static). */
static char *watch_wait(long long id, double seconds)
{
    static char state[32];
    double t0 = now_s();
    do {
        snprintf(state, sizeof state, "%s", sql("SELECT state FROM watches WHERE id = %lld", id));
        if (strcmp(state, "watching") != 0)
            return state;
        sleep_ms(50);
    } while (now_s() - t0 < seconds);
    return state;
}

START_TEST(watch_becomes_ready_after_polls)
{
    pid_t bg = bg_start();
    const char *obj = object("ready-after-3");
    char oid[40];
    snprintf(oid, sizeof oid, "%s", obj);
    double t0 = now_s();
    long long w = watch(oid, 100, 400, 30000);
    ck_assert_str_eq(watch_wait(w, 15), "ready");
    double took = now_s() - t0;
    ck_assert_str_eq(sql("SELECT polls FROM watches WHERE id = %lld", w), "3");
    ck_assert_str_eq(sql("SELECT tool_state FROM watches WHERE id = %lld", w), "ready");
    /* the events: pending seen, ready seen, then the outcome */
    ck_assert_str_eq(sql("SELECT string_agg(kind || ':' || coalesce(tool_state, ''), ',' ORDER BY"
                         " id) FROM object_events WHERE object_id = '%s'",
                         oid),
                     "tool_state:pending,tool_state:ready,ready:ready");
    /* backoff: polls at 0, then after 50-100 ms, then 100-200 ms */
    ck_assert_msg(took >= 0.15, "three polls took %.3f s: no backoff between them", took);
    printf("watch ready after 3 polls in %.2f s\n", took);
    bg_stop(bg);
}
END_TEST

START_TEST(watch_fails_and_not_found)
{
    pid_t bg = bg_start();
    char a[40], b[40];
    snprintf(a, sizeof a, "%s", object("fail-after-2"));
    snprintf(b, sizeof b, "%s", object("gone"));
    long long wa = watch(a, 50, 100, 30000), wb = watch(b, 50, 100, 30000);
    ck_assert_str_eq(watch_wait(wa, 15), "failed");
    ck_assert_str_eq(sql("SELECT polls || ' ' || reason FROM watches WHERE id = %lld", wa),
                     "2 the tool gave up");
    ck_assert_str_eq(watch_wait(wb, 15), "failed");
    char *reason = sql("SELECT reason FROM watches WHERE id = %lld", wb);
    ck_assert_msg(strstr(reason, "no such model") && strstr(reason, "bgtest"), "%s", reason);
    ck_assert_str_eq(sql("SELECT count(*) FROM object_events WHERE object_id = '%s' AND kind ="
                         " 'failed'",
                         a),
                     "1");
    bg_stop(bg);
}
END_TEST

START_TEST(watch_gives_up_at_its_deadline)
{
    pid_t bg = bg_start();
    char oid[40];
    snprintf(oid, sizeof oid, "%s", object("stuck"));
    double t0 = now_s();
    long long w = watch(oid, 100, 300, 1500);
    ck_assert_str_eq(watch_wait(w, 10), "timed_out");
    double took = now_s() - t0;
    ck_assert_msg(took >= 1.4 && took < 5, "timed out after %.2f s, deadline 1.5 s", took);
    char *r = sql("SELECT polls || ' ' || reason FROM watches WHERE id = %lld", w);
    ck_assert_msg(strstr(r, "no terminal state by the deadline") && strstr(r, "'pending'"), "%s",
                  r);
    long polls = strtol(r, NULL, 10);
    /* backoff capped at 300 ms: some polls, but not one every loop turn */
    ck_assert_msg(polls >= 3 && polls <= 20, "%ld polls in 1.5 s", polls);
    ck_assert_str_eq(sql("SELECT count(*) FROM object_events WHERE object_id = '%s' AND kind ="
                         " 'timed_out'",
                         oid),
                     "1");
    printf("watch timed out after %.2f s and %ld polls\n", took, polls);
    bg_stop(bg);
}
END_TEST

/* An operation of bgtest's import_version counting to n, a step every ms; notes go to a file
 * of the state dir. Returns its id. */
static long long operation(int n, int ms, char *notes, size_t size)
{
    snprintf(notes, size, "%s/op-%d-%d.notes", st.dir, getpid(), ++counter);
    char *out = sql("INSERT INTO operations (environment, category, operation, instance, input,"
                    " created_by) VALUES ('dev', 'model_registry', 'import_version', 'bgtest',"
                    " '{\"external_id\": \"count-%d-%d\", \"dest_path\": \"%s\"}', 'test')"
                    " RETURNING id",
                    n, ms, notes);
    return strtoll(out, NULL, 10);
}

static char *op_state(long long id)
{
    return sql("SELECT state FROM operations WHERE id = %lld", id);
}

static long op_done(long long id)
{
    return strtol(sql("SELECT coalesce(progress_done, 0) FROM operations WHERE id = %lld", id),
                  NULL, 10);
}

static void wait_done_at_least(long long id, long n, double seconds)
{
    double t0 = now_s();
    while (op_done(id) < n) {
        ck_assert_msg(now_s() - t0 < seconds, "operation %lld: progress %ld after %.0f s", id,
                      op_done(id), seconds);
        sleep_ms(20);
    }
}

static void wait_state(long long id, const char *want, double seconds)
{
    double t0 = now_s();
    while (strcmp(op_state(id), want) != 0) {
        ck_assert_msg(now_s() - t0 < seconds, "operation %lld is %s after %.0f s, not %s", id,
                      op_state(id), seconds, want);
        sleep_ms(20);
    }
}

static char *notes_of(const char *path)
{
    int rc;
    char *out = tu_capture(&rc, "cat %s | tr '\\n' ';'", path);
    return out;
}

/* Whether process pid runs (exists and is not a zombie). */
static int lane_alive(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

START_TEST(operation_resumes_after_sigkill)
{
    char notes[300];
    long long id = operation(40, 50, notes, sizeof notes);
    pid_t bg = bg_start();
    wait_done_at_least(id, 12, 20); /* the checkpoint of step 10 is saved */
    char *owner = sql("SELECT lease_owner FROM operations WHERE id = %lld", id);
    long lane = strtol(strrchr(owner, ':') + 1, NULL, 10);
    kill(bg, SIGKILL);
    waitpid(bg, NULL, 0);
    /* the lane dies with its parent (gone, or a zombie whose reaper is slow) */
    for (int i = 0; i < 100 && lane_alive(lane); i++)
        sleep_ms(10);
    ck_assert_msg(!lane_alive(lane), "the lane %ld outlived its SIGKILLed parent", lane);
    long at_kill = op_done(id);
    ck_assert_str_eq(op_state(id), "running"); /* until its lease runs out */
    double t0 = now_s();
    bg = bg_start();
    wait_state(id, "succeeded", 30);
    double took = now_s() - t0;
    char *r = sql("SELECT (result->>'started_from') || ' ' || attempts || ' ' ||"
                  " progress_done || '/' || progress_total || ' ' || progress_unit FROM operations"
                  " WHERE id = %lld",
                  id);
    long from = strtol(r, NULL, 10);
    ck_assert_msg(from >= 10 && from <= at_kill, "resumed from %ld (killed at %ld): %s", from,
                  at_kill, r);
    ck_assert_msg(strstr(r, " 2 40/40 steps"), "%s", r);
    char *n = notes_of(notes);
    char want[64];
    snprintf(want, sizeof want, "start %ld ", from);
    ck_assert_msg(strncmp(n, "start 0 ", 8) == 0 && strstr(n, want), "notes: %s", n);
    printf("operation killed at %ld/40, resumed from %ld, done %.2f s after the restart\n", at_kill,
           from, took);
    bg_stop(bg);
}
END_TEST

START_TEST(operation_cancel_and_routes)
{
    char notes[300], path[64];
    long long id = operation(400, 50, notes, sizeof notes);
    pid_t bg = bg_start();
    wait_done_at_least(id, 2, 20);
    int s;
    snprintf(path, sizeof path, "/operations/%lld", id);
    json_t *j = api(&st, &s, st.reader, "GET", path, NULL);
    EXPECT(s, 200, j);
    ck_assert_str_eq(jstr(j, "data.state"), "running");
    ck_assert_str_eq(jstr(j, "data.progress.unit"), "steps");
    ck_assert_int_eq(json_integer_value(jpath(j, "data.progress.total")), 400);
    ck_assert_ptr_nonnull(jstr(j, "data.started"));
    ck_assert_ptr_nonnull(jstr(j, "data.updated"));
    json_decref(j);
    snprintf(path, sizeof path, "/operations/%lld/cancel", id);
    j = api(&st, &s, st.reader, "POST", path, NULL);
    EXPECT(s, 403, j); /* readers cannot cancel */
    json_decref(j);
    double t0 = now_s();
    j = api(&st, &s, st.operator_, "POST", path, NULL);
    EXPECT(s, 202, j);
    json_decref(j);
    wait_state(id, "cancelled", 5);
    double took = now_s() - t0;
    ck_assert_msg(took <= 1.0, "cancelled %.3f s after the request", took);
    j = api(&st, &s, st.operator_, "POST", path, NULL);
    EXPECT(s, 409, j);
    ck_assert_str_eq(jstr(j, "data.error.state"), "cancelled");
    json_decref(j);
    j = api(&st, &s, st.reader, "GET", "/operations?env=dev&state=cancelled", NULL);
    EXPECT(s, 200, j);
    int found = 0;
    size_t i;
    json_t *o;
    json_array_foreach(jpath(j, "data.operations"), i,
                       o) if (json_integer_value(json_object_get(o, "id")) == id) found = 1;
    ck_assert(found);
    json_decref(j);
    j = api(&st, &s, st.reader, "GET", "/operations?state=sleeping", NULL);
    EXPECT(s, 400, j);
    ck_assert_str_eq(jstr(j, "data.error.field"), "state");
    json_decref(j);
    j = api(&st, &s, st.reader, "GET", "/operations/999999999", NULL);
    EXPECT(s, 404, j);
    json_decref(j);
    j = api(&st, &s, st.reader, "GET", "/operations/op-x", NULL);
    EXPECT(s, 404, j);
    json_decref(j);
    /* a pending operation is cancelled at once, and never runs */
    bg_stop(bg);
    long long id2 = operation(5, 10, notes, sizeof notes);
    snprintf(path, sizeof path, "/operations/%lld/cancel", id2);
    j = api(&st, &s, st.operator_, "POST", path, NULL);
    EXPECT(s, 202, j);
    ck_assert_str_eq(jstr(j, "data.state"), "cancelled");
    json_decref(j);
    printf("running operation cancelled in %.3f s\n", took);
}
END_TEST

START_TEST(sigterm_within_a_second_then_resume)
{
    char notes[300];
    long long id = operation(60, 50, notes, sizeof notes);
    pid_t bg = bg_start();
    wait_done_at_least(id, 17, 20);
    double took = bg_stop(bg);
    ck_assert_msg(took <= 1.0, "SIGTERM took %.3f s", took);
    ck_assert_str_eq(op_state(id), "pending"); /* handed back, not failed nor cancelled */
    bg = bg_start();
    wait_state(id, "succeeded", 20);
    long from =
        strtol(sql("SELECT result->>'started_from' FROM operations WHERE id = %lld", id), NULL, 10);
    ck_assert_msg(from >= 15, "resumed from %ld", from);
    printf("SIGTERM honoured in %.3f s; resumed from %ld\n", took, from);
    bg_stop(bg);
}
END_TEST

START_TEST(two_processes_share_operations)
{
    enum { N = 8 };
    char notes[N][300];
    long long ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = operation(10, 30, notes[i], sizeof notes[i]);
    pid_t a = bg_start(), b = bg_start();
    for (int i = 0; i < N; i++)
        wait_state(ids[i], "succeeded", 40);
    char pids[N][32];
    for (int i = 0; i < N; i++) {
        char *n = notes_of(notes[i]);
        /* one run each: one start, one end */
        ck_assert_msg(strncmp(n, "start 0 ", 8) == 0 && strstr(n, ";end 10 ") &&
                          !strstr(n + 1, "start"),
                      "operation %lld: %s", ids[i], n);
        snprintf(pids[i], sizeof pids[i], "%s", strrchr(strtok(n, ";"), ' ') + 1);
        ck_assert_str_eq(sql("SELECT attempts FROM operations WHERE id = %lld", ids[i]), "1");
    }
    int distinct = 1;
    for (int i = 1; i < N; i++)
        if (strcmp(pids[i], pids[0]) != 0)
            distinct = 2;
    printf("two processes ran %d operations once each, in %d lane(s)\n", N, distinct);
    bg_stop(a);
    bg_stop(b);
}
END_TEST

START_TEST(outbox_delivers_during_a_long_operation)
{
    char notes[300];
    long long id = operation(200, 50, notes, sizeof notes); /* 10 s */
    pid_t bg = bg_start();
    wait_done_at_least(id, 2, 20);
    int s;
    json_t *j = api(&st, &s, st.reader, "GET", "/gpu-types?env=dev", NULL);
    EXPECT(s, 200, j);
    char gpu[64];
    snprintf(gpu, sizeof gpu, "%s", jstr(j, "data.gpu_types.0.name"));
    json_decref(j);
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        double t0 = now_s();
        j = api(&st, &s, st.operator_, "POST", "/training-jobs?env=dev",
                "{\"name\":\"bg-%d\",\"experiment\":\"bg-%s\",\"base_model\":\"m\","
                "\"dataset\":\"d\",\"gpu_type\":\"%s\",\"gpu_count\":1}",
                k, uniq(), gpu);
        EXPECT(s, 201, j);
        char path[96];
        snprintf(path, sizeof path, "/training-jobs/%s", jstr(j, "data.id"));
        json_decref(j);
        for (;;) {
            j = api(&st, &s, st.reader, "GET", path, NULL);
            EXPECT(s, 200, j);
            int ready = strcmp(jstr(j, "data.tracking.state"), "ready") == 0;
            json_decref(j);
            if (ready)
                break;
            ck_assert_msg(now_s() - t0 < 5, "the job's run is not delivered after 5 s");
            sleep_ms(10);
        }
        double took = now_s() - t0;
        if (took > worst)
            worst = took;
    }
    ck_assert_str_eq(op_state(id), "running"); /* the long op was running all along */
    ck_assert_msg(worst < 2.0, "a delivery took %.3f s during the long operation", worst);
    printf("outbox delivery during a long operation: worst %.3f s of 3\n", worst);
    bg_stop(bg);
}
END_TEST

/* The outbox is keyed by (category, operation): any op name is stored, and a pair no
 * category registered is dead at once with a message naming it, without holding the
 * deliverer up. */
START_TEST(outbox_row_of_an_unknown_pair_is_dead)
{
    char oid[40];
    snprintf(oid, sizeof oid, "%s", object("ready-after-1"));
    char *id = sql("INSERT INTO outbox (category, object_id, environment, operation, payload)"
                   " VALUES ('model_registry', '%s', 'dev', 'tag_model', '{}') RETURNING id",
                   oid);
    long long row = strtoll(id, NULL, 10);
    pid_t bg = bg_start();
    double t0 = now_s();
    while (strcmp(sql("SELECT state FROM outbox WHERE id = %lld", row), "pending") == 0) {
        ck_assert_msg(now_s() - t0 < 10, "outbox row %lld still pending", row);
        sleep_ms(20);
    }
    ck_assert_str_eq(sql("SELECT state || ' ' || attempts || ' ' || last_error FROM outbox"
                         " WHERE id = %lld",
                         row),
                     "dead 1 this llm-opsd cannot deliver tag_model of model_registry (instance"
                     " bgtest)");
    bg_stop(bg);
}
END_TEST

/* llmops_op_ctx() reads op_ctx only from a host table that has it: a 1.0 core's is shorter. */
static const struct llmops_op_ctx fake_ctx = {.size = sizeof fake_ctx};
static const struct llmops_op_ctx *fake_op_ctx(const struct llmops_host *h)
{
    (void)h;
    return &fake_ctx;
}

START_TEST(op_ctx_checks_the_host_size)
{
    struct llmops_host h;
    memset(&h, 0, sizeof h);
    h.op_ctx = fake_op_ctx;
    h.size = sizeof h;
    ck_assert_ptr_eq(llmops_op_ctx(&h), &fake_ctx);
    h.size = (uint32_t)offsetof(struct llmops_host, op_ctx); /* as a 1.0 core built it */
    ck_assert_ptr_null(llmops_op_ctx(&h));
    h.size = sizeof h;
    h.op_ctx = NULL;
    ck_assert_ptr_null(llmops_op_ctx(&h));
    ck_assert_ptr_null(llmops_op_ctx(NULL));
}
END_TEST

/* The size of DIR/bg.log now: what the background processes log later starts there. */
static long log_size(void)
{
    int rc;
    char *out = tu_capture(&rc, "wc -c <%s/bg.log 2>/dev/null || echo 0", st.dir);
    return strtol(out, NULL, 10);
}

/* The "pruned N <what> older than" lines logged since byte `from`: their number, the sum
 * and the largest N; the number of distinct processes that logged one in *pids. */
static long pruned(long from, const char *what, int *lines, long *largest, int *pids)
{
    int rc;
    char *out = tu_capture(&rc,
                           "tail -c +%ld %s/bg.log | grep -E 'background: pruned [0-9]+ %s older "
                           "than' | sed -E 's/^[^[]*\\[([0-9]+)\\].*pruned ([0-9]+) .*/\\1 \\2/'"
                           " | awk '{s+=$2; n++; if ($2>m) m=$2; p[$1]=1} END {k=0; for (i in p)"
                           " k++; printf \"%%d %%d %%d %%d\\n\", s, n, m, k}'",
                           from + 1, st.dir, what);
    ck_assert_int_eq(rc, 0);
    long sum = 0, m = 0;
    int n = 0, k = 0;
    ck_assert_msg(sscanf(out, "%ld %d %ld %d", &sum, &n, &m, &k) == 4, "not a count: %s", out);
    *lines = n;
    *largest = m;
    if (pids)
        *pids = k;
    return sum;
}

#define N(...) strtol(sql(__VA_ARGS__), NULL, 10)

/* Waits (bounded) until the first line of the query's answer is `want`; returns the last. */
static long count_wait(const char *q, long want, double seconds)
{
    double t0 = now_s();
    long n;
    while ((n = N("%s", q)) != want && now_s() - t0 < seconds)
        sleep_ms(100);
    return n;
}

/* Objects of bgtest named by `tag` and 1..n (ids mdl_ + md5), for watches and events. */
static void objects_tagged(const char *tag, int n)
{
    sql("INSERT INTO objects (id, kind, environment, category, instance, external_id,"
        " created_by) SELECT 'mdl_' || substr(md5('%s' || g), 1, 24), 'model', 'dev',"
        " 'model_registry', 'bgtest', 'e-%s-' || g, 'test' FROM generate_series(1, %d) g",
        tag, tag, n);
}

#define OBJ(tag, from, to)                                                                         \
    "(SELECT 'mdl_' || substr(md5('" tag "' || g), 1, 24) AS id FROM generate_series(" #from       \
    ", " #to ") g)"

#define OLD_OPS(cat)                                                                               \
    "SELECT count(*) FROM operations WHERE category = '" cat "' AND finished_at < now() - "        \
    "interval '24 hours'"
#define ALL_OPS(cat) "SELECT count(*) FROM operations WHERE category = '" cat "'"

/* What the background process keeps ([background] keep_*) it deletes once older, a batch
 * per table and pass; what is younger, unfinished or still watched stays. */
START_TEST(prune_deletes_the_old_and_keeps_the_rest_in_batches)
{
    const char *t = "prune_one";
    /* operations: 2500 finished 25 h ago (three kinds of end), 10 finished 23 h ago, 5
     * running for 30 days (a lease held elsewhere for an hour) */
    sql("INSERT INTO operations (environment, category, operation, instance, state,"
        " created_by, created_at, finished_at) SELECT 'dev', '%s', 'count', 'bgtest',"
        " (ARRAY['succeeded', 'failed', 'cancelled'])[1 + g %% 3], 'test',"
        " now() - interval '26 hours', now() - interval '25 hours'"
        " FROM generate_series(1, 2500) g",
        t);
    sql("INSERT INTO operations (environment, category, operation, instance, state,"
        " created_by, created_at, finished_at) SELECT 'dev', '%s', 'count', 'bgtest',"
        " 'succeeded', 'test', now() - interval '24 hours', now() - interval '23 hours'"
        " FROM generate_series(1, 10) g",
        t);
    sql("INSERT INTO operations (environment, category, operation, instance, state,"
        " created_by, created_at, lease_owner, lease_until, attempts) SELECT 'dev', '%s',"
        " 'count', 'bgtest', 'running', 'test', now() - interval '30 days', 'elsewhere',"
        " now() + interval '1 hour', 1 FROM generate_series(1, 5) g",
        t);
    /* watches: objects 1-20 a watch that ended 25 h ago and 2 events as old; 21-25 one that
     * ended an hour ago and its events; 26-30 an open watch (not due) besides an old ended
     * one, and events of 25 h ago, kept while it is open */
    objects_tagged("pw1-", 30);
    /* (ended watch: objects from-to, its state, deadline, created, done, as intervals ago) */
    static const struct {
        int from, to;
        const char *state, *age;
    } ended[] = {{1, 20, "ready", "25 hours"},
                 {21, 25, "failed", "1 hour"},
                 {26, 30, "timed_out", "25 hours"}};
    for (size_t i = 0; i < sizeof ended / sizeof ended[0]; i++)
        sql("INSERT INTO watches (object_id, environment, category, read_op, ready_states, state,"
            " deadline_at, created_at, done_at) SELECT 'mdl_' || substr(md5('pw1-' || g), 1, 24),"
            " 'dev', 'model_registry', 'get_model', '{ready}', '%s', now() - interval '%s',"
            " now() - interval '%s' - interval '1 hour', now() - interval '%s'"
            " FROM generate_series(%d, %d) g",
            ended[i].state, ended[i].age, ended[i].age, ended[i].age, ended[i].from, ended[i].to);
    sql("INSERT INTO watches (object_id, environment, category, read_op, ready_states,"
        " next_poll_at, deadline_at) SELECT id, 'dev', 'model_registry', 'get_model', '{ready}',"
        " now() + interval '1 hour', now() + interval '2 hours' FROM " OBJ("pw1-", 26, 30) " o");
    /* events: 2 each of 1-20 25 h ago, 1 each of 21-25 an hour ago, 1 each of 26-30 25 h ago */
    static const struct {
        int from, to, each;
        const char *age;
    } events[] = {{1, 20, 2, "25 hours"}, {21, 25, 1, "1 hour"}, {26, 30, 1, "25 hours"}};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        sql("INSERT INTO object_events (object_id, environment, category, kind, tool_state,"
            " created_at) SELECT 'mdl_' || substr(md5('pw1-' || g), 1, 24), 'dev',"
            " 'model_registry', 'tool_state', 'x', now() - interval '%s'"
            " FROM generate_series(%d, %d) g, generate_series(1, %d) k",
            events[i].age, events[i].from, events[i].to, events[i].each);
    /* alert events: 3 last received 31 days ago, 2 29 days ago */
    sql("INSERT INTO alert_events (fingerprint, starts_at, status, labels, annotations,"
        " received_by, result, last_received_at) SELECT 'prune' || g, now() - interval"
        " '40 days', 'firing', '{}', '{}', 'test', 'done', now() - CASE WHEN g <= 3 THEN"
        " interval '31 days' ELSE interval '29 days' END FROM generate_series(1, 5) g");
    /* deployments: 1-2 deleted 11 days ago (gone, with their audit rows and object), 3
     * deleted as long ago but named by an outbox row still, 4 deleted 9 days ago, 5 live and
     * 100 days old */
    sql("INSERT INTO objects (id, kind, environment, category, instance, created_by) SELECT"
        " 'dep_' || substr(md5('pd1-' || g), 1, 24), 'dep', 'dev', 'serving', 'bgtest', 'test'"
        " FROM generate_series(1, 5) g");
    sql("INSERT INTO deployments (id, environment, name, instance, spec, replicas_max, state,"
        " created_by, created_at, deleted_at) SELECT 'dep_' || substr(md5('pd1-' || g), 1, 24),"
        " 'dev', 'prune-' || g, 'bgtest', '{}', 1, CASE WHEN g = 5 THEN 'ready' ELSE 'deleted'"
        " END, 'test', now() - interval '100 days', CASE WHEN g <= 3 THEN now() - interval"
        " '11 days' WHEN g = 4 THEN now() - interval '9 days' END FROM generate_series(1, 5) g");
    sql("INSERT INTO deployment_audit (deployment_id, environment, actor, action, at) SELECT"
        " 'dep_' || substr(md5('pd1-' || g), 1, 24), 'dev', 'test', a, now() - interval"
        " '11 days' FROM generate_series(1, 5) g, unnest(ARRAY['create', 'ready', 'delete']) a");
    sql("INSERT INTO outbox (category, object_id, environment, operation, payload, state,"
        " done_at) VALUES ('serving', 'dep_' || substr(md5('pd1-3'), 1, 24), 'dev', 'undeploy',"
        " '{}', 'done', now())");

    long from = log_size();
    pid_t bg = bg_start_with("[background]\nprune_interval_seconds = 1\nprune_batch = 1000\n"
                             "keep_watches_hours = 24\nkeep_operations_hours = 24\n"
                             "keep_alert_events_days = 30\nkeep_deleted_deployments_days = 10\n");
    ck_assert_int_eq(count_wait(OLD_OPS("prune_one"), 0, 30), 0);
    sleep_ms(1500); /* the pass that took the last operations is over */
    bg_stop(bg);
    int lines;
    long largest;
    long sum = pruned(from, "finished operations", &lines, &largest, NULL);
    printf("prune: 2500 finished operations in %d passes (largest %ld)\n", lines, largest);
    ck_assert_int_eq(sum, 2500);
    ck_assert_int_ge(lines, 3);
    ck_assert_int_le(largest, 1000);
    /* kept: the young and the running */
    ck_assert_int_eq(N(ALL_OPS("prune_one")), 15);
    ck_assert_int_eq(N(ALL_OPS("prune_one") " AND state = 'running'"), 5);
    /* watches: the 25 old ended ones gone; the 5 young ended and the 5 open kept */
    ck_assert_int_eq(N("SELECT count(*) FROM watches WHERE object_id IN " OBJ("pw1-", 1, 30)), 10);
    ck_assert_int_eq(
        N("SELECT count(*) FROM watches WHERE state = 'watching' AND object_id IN " OBJ("pw1-", 26,
                                                                                        30)),
        5);
    /* events: the young ones and the old ones of the watched objects */
    ck_assert_int_eq(N("SELECT count(*) FROM object_events WHERE object_id IN " OBJ("pw1-", 1, 30)),
                     10);
    ck_assert_int_eq(
        N("SELECT count(*) FROM object_events WHERE object_id IN " OBJ("pw1-", 26, 30)), 5);
    ck_assert_int_eq(N("SELECT count(*) FROM alert_events WHERE fingerprint LIKE 'prune%%'"), 2);
    /* deployments: 3 (still named by the outbox), 4 (younger) and 5 (live) with their audit
     * rows and objects */
    ck_assert_str_eq(sql("SELECT string_agg(name, ',' ORDER BY name) FROM deployments WHERE id IN"
                         " (SELECT 'dep_' || substr(md5('pd1-' || g), 1, 24) FROM"
                         " generate_series(1, 5) g)"),
                     "prune-3,prune-4,prune-5");
    ck_assert_int_eq(N("SELECT count(*) FROM deployment_audit WHERE deployment_id IN (SELECT 'dep_'"
                       " || substr(md5('pd1-' || g), 1, 24) FROM generate_series(1, 5) g)"),
                     9);
    ck_assert_int_eq(N("SELECT count(*) FROM objects WHERE id IN (SELECT 'dep_' ||"
                       " substr(md5('pd1-' || g), 1, 24) FROM generate_series(1, 5) g)"),
                     3);
    ck_assert_int_eq(
        tu_sh("tail -c +%ld %s/bg.log | grep -E 'cannot prune|ERROR' >&2", from + 1, st.dir), 1);
}
END_TEST

/* Two background processes pruning at once (two hosts): each row deleted once, what is kept
 * stays, no error; a deleted deployment stays for ever by default. */
START_TEST(two_processes_prune_at_once)
{
    const char *t = "prune_two";
    sql("INSERT INTO operations (environment, category, operation, instance, state,"
        " created_by, created_at, finished_at) SELECT 'dev', '%s', 'count', 'bgtest',"
        " 'succeeded', 'test', now() - interval '26 hours', now() - CASE WHEN g <= 3000 THEN"
        " interval '25 hours' ELSE interval '23 hours' END FROM generate_series(1, 3020) g",
        t);
    sql("INSERT INTO operations (environment, category, operation, instance, state,"
        " created_by, created_at, lease_owner, lease_until, attempts) SELECT 'dev', '%s',"
        " 'count', 'bgtest', 'running', 'test', now() - interval '30 days', 'elsewhere',"
        " now() + interval '1 hour', 1 FROM generate_series(1, 5) g",
        t);
    /* 3000 old events of an object no longer watched, 100 of one being watched */
    objects_tagged("pw2-", 2);
    sql("INSERT INTO watches (object_id, environment, category, read_op, ready_states,"
        " next_poll_at, deadline_at) SELECT id, 'dev', 'model_registry', 'get_model', '{ready}',"
        " now() + interval '1 hour', now() + interval '2 hours' FROM " OBJ("pw2-", 2, 2) " o");
    sql("INSERT INTO object_events (object_id, environment, category, kind, tool_state,"
        " created_at) SELECT 'mdl_' || substr(md5('pw2-' || g), 1, 24), 'dev', 'model_registry',"
        " 'tool_state', 'x', now() - interval '25 hours' FROM generate_series(1, 2) g,"
        " generate_series(1, 3100) k WHERE k <= CASE WHEN g = 1 THEN 3000 ELSE 100 END");
    /* a deployment deleted 400 days ago: kept, with its audit, when no limit is set */
    sql("INSERT INTO objects (id, kind, environment, category, instance, created_by) VALUES"
        " ('dep_' || substr(md5('pd2-1'), 1, 24), 'dep', 'dev', 'serving', 'bgtest', 'test')");
    sql("INSERT INTO deployments (id, environment, name, instance, spec, replicas_max, state,"
        " created_by, created_at, deleted_at) VALUES ('dep_' || substr(md5('pd2-1'), 1, 24),"
        " 'dev', 'prune-old', 'bgtest', '{}', 1, 'deleted', 'test', now() - interval '401 days',"
        " now() - interval '400 days')");
    sql("INSERT INTO deployment_audit (deployment_id, environment, actor, action, at) VALUES"
        " ('dep_' || substr(md5('pd2-1'), 1, 24), 'dev', 'test', 'delete', now() - interval"
        " '400 days')");
    long from = log_size();
    const char *conf = "[background]\nprune_interval_seconds = 1\nprune_batch = 300\n"
                       "keep_watches_hours = 24\nkeep_operations_hours = 24\n";
    pid_t a = bg_start_with(conf), b = bg_start_with(conf);
    ck_assert_int_eq(count_wait(OLD_OPS("prune_two"), 0, 40), 0);
    ck_assert_int_eq(N("SELECT count(*) FROM object_events WHERE object_id IN " OBJ("pw2-", 1, 1)),
                     0);
    sleep_ms(1500);
    bg_stop(a);
    bg_stop(b);
    int lines, procs;
    long largest;
    long ops = pruned(from, "finished operations", &lines, &largest, &procs);
    printf("prune: two processes deleted %ld operations in %d statements (largest %ld, %d "
           "process(es))\n",
           ops, lines, largest, procs);
    ck_assert_int_eq(ops, 3000);
    ck_assert_int_le(largest, 300);
    ck_assert_int_eq(pruned(from, "object events", &lines, &largest, NULL), 3000);
    ck_assert_int_le(largest, 300);
    ck_assert_int_eq(N(ALL_OPS("prune_two")), 25);
    ck_assert_int_eq(N(ALL_OPS("prune_two") " AND state = 'running'"), 5);
    ck_assert_int_eq(N("SELECT count(*) FROM object_events WHERE object_id IN " OBJ("pw2-", 2, 2)),
                     100);
    ck_assert_int_eq(N("SELECT count(*) FROM deployment_audit WHERE deployment_id = 'dep_' ||"
                       " substr(md5('pd2-1'), 1, 24)"),
                     1);
    ck_assert_int_eq(N("SELECT count(*) FROM deployments WHERE id = 'dep_' ||"
                       " substr(md5('pd2-1'), 1, 24)"),
                     1);
    ck_assert_int_eq(
        tu_sh("tail -c +%ld %s/bg.log | grep -E 'cannot prune|ERROR' >&2", from + 1, st.dir), 1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("background");
    TCase *tc = tcase_create("background");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, watch_becomes_ready_after_polls);
    tcase_add_test(tc, watch_fails_and_not_found);
    tcase_add_test(tc, watch_gives_up_at_its_deadline);
    tcase_add_test(tc, operation_resumes_after_sigkill);
    tcase_add_test(tc, operation_cancel_and_routes);
    tcase_add_test(tc, sigterm_within_a_second_then_resume);
    tcase_add_test(tc, two_processes_share_operations);
    tcase_add_test(tc, outbox_delivers_during_a_long_operation);
    tcase_add_test(tc, outbox_row_of_an_unknown_pair_is_dead);
    tcase_add_test(tc, op_ctx_checks_the_host_size);
    tcase_add_test(tc, prune_deletes_the_old_and_keeps_the_rest_in_batches);
    tcase_add_test(tc, two_processes_prune_at_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
