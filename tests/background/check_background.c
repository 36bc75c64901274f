/* The background process (llm-opsd --background) end to end: watches,
 * on one stack (tests/harness/stack --no-jobs: the tests start and kill the background
 * processes themselves) with the tracking-pg plugin and the test module bgtest. */
#include "api.h"
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

/* A background process of our own, logging to DIR/bg.log; its pid is noted for teardown. */
static pid_t bg_start(void)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char log[300], bin[400];
        snprintf(log, sizeof log, "%s/bg.log", st.dir);
        snprintf(bin, sizeof bin, "%s/llm-opsd", getenv("LLMOPS_BIN_DIR"));
        if (!freopen(log, "a", stdout) || !freopen(log, "a", stderr))
            _exit(126);
        setsid();
        execl(bin, "llm-opsd", "--background", "--config", st.conf, (char *)NULL);
        _exit(127);
    }
    tu_sh("echo %ld >>%s/bg.pids", (long)pid, st.dir);
    return pid;
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
    return now_s() - t0;
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

static Suite *suite(void)
{
    Suite *s = suite_create("background");
    TCase *tc = tcase_create("background");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, watch_becomes_ready_after_polls);
    tcase_add_test(tc, watch_fails_and_not_found);
    tcase_add_test(tc, watch_gives_up_at_its_deadline);
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
