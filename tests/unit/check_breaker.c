#include "breaker.h"
#include "check_suites.h"

static const struct breaker_policy policy = {60000, 10, 50, 30000};

START_TEST(test_trips_on_error_rate)
{
    struct breaker b;
    breaker_init(&b, &policy);
    int64_t t = 1000000;
    /* 9 failures: under min_calls, stays closed */
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(breaker_record(&b, &policy, 1, t + i), 0);
    ck_assert_int_eq(b.state, BREAKER_CLOSED);
    /* the 10th call reaches min_calls with 100% failures */
    ck_assert_int_eq(breaker_record(&b, &policy, 1, t + 10), 1);
    ck_assert_int_eq(b.state, BREAKER_OPEN);
    ck_assert_int_eq(b.trips, 1);
    /* further calls do not trip it again */
    ck_assert_int_eq(breaker_record(&b, &policy, 1, t + 11), 0);
}
END_TEST

START_TEST(test_stays_closed_under_threshold)
{
    struct breaker b;
    breaker_init(&b, &policy);
    int64_t t = 5000000;
    /* 40% failures over 100 calls, never 50% once min_calls is reached */
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(breaker_record(&b, &policy, i % 5 == 1 || i % 5 == 3, t + i * 100), 0);
    ck_assert_int_eq(b.state, BREAKER_CLOSED);
}
END_TEST

START_TEST(test_window_slides)
{
    struct breaker b;
    breaker_init(&b, &policy);
    int64_t t = 9000000;
    for (int i = 0; i < 9; i++)
        breaker_record(&b, &policy, 1, t);
    unsigned calls, failures;
    breaker_window(&b, t, &calls, &failures);
    ck_assert_uint_eq(calls, 9);
    /* a window later, the old failures are gone: one more failure does not trip */
    ck_assert_int_eq(breaker_record(&b, &policy, 1, t + 61000), 0);
    breaker_window(&b, t + 61000, &calls, &failures);
    ck_assert_uint_eq(calls, 1);
}
END_TEST

START_TEST(test_half_open_probe)
{
    struct breaker b;
    breaker_init(&b, &policy);
    int64_t t = 2000000;
    for (int i = 0; i < 10; i++)
        breaker_record(&b, &policy, 1, t);
    ck_assert_int_eq(b.state, BREAKER_OPEN);
    ck_assert_int_eq(breaker_probe_due(&b, &policy, t + 29999), 0);
    ck_assert_int_eq(breaker_probe_due(&b, &policy, t + 30000), 1);
    ck_assert_int_eq(b.state, BREAKER_HALF_OPEN);
    breaker_probed(&b, 0, t + 30001); /* still failing: open again, a new wait */
    ck_assert_int_eq(b.state, BREAKER_OPEN);
    ck_assert_int_eq(breaker_probe_due(&b, &policy, t + 40000), 0);
    ck_assert_int_eq(breaker_probe_due(&b, &policy, t + 60001), 1);
    breaker_probed(&b, 1, t + 60002);
    ck_assert_int_eq(b.state, BREAKER_CLOSED);
    unsigned calls, failures;
    breaker_window(&b, t + 60002, &calls, &failures);
    ck_assert_uint_eq(calls, 0); /* a fresh window */
}
END_TEST

Suite *make_breaker_suite(void)
{
    Suite *s = suite_create("breaker");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, test_trips_on_error_rate);
    tcase_add_test(tc, test_stays_closed_under_threshold);
    tcase_add_test(tc, test_window_slides);
    tcase_add_test(tc, test_half_open_probe);
    suite_add_tcase(s, tc);
    return s;
}
