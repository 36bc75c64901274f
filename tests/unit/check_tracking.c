/* The run filter language, order_by, the splitting of logged values, and the outbox backoff. */
#include "check_suites.h"
#include "outbox.h"
#include "tracking.h"

#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *s, char *msg)
{
    return track_parse_filter(s, msg, 300);
}

START_TEST(filter_clauses)
{
    char msg[300];
    json_t *c = parse("metric.loss < 0.5 and params.`learning rate` = 'it''s' AND "
                      "tags.team ILIKE \"NLP%\" and status != 'FAILED' and start_time_ms >= 17 "
                      "and attributes.name LIKE 'r_%'",
                      msg);
    ck_assert_msg(c != NULL, "%s", msg);
    ck_assert_int_eq(json_array_size(c), 6);
    json_t *x = json_array_get(c, 0);
    ck_assert_str_eq(json_string_value(json_object_get(x, "field")), "metric");
    ck_assert_str_eq(json_string_value(json_object_get(x, "key")), "loss");
    ck_assert_str_eq(json_string_value(json_object_get(x, "op")), "<");
    ck_assert(json_real_value(json_object_get(x, "value")) == 0.5);
    x = json_array_get(c, 1);
    ck_assert_str_eq(json_string_value(json_object_get(x, "field")), "param");
    ck_assert_str_eq(json_string_value(json_object_get(x, "key")), "learning rate");
    ck_assert_str_eq(json_string_value(json_object_get(x, "value")), "it's");
    x = json_array_get(c, 2);
    ck_assert_str_eq(json_string_value(json_object_get(x, "op")), "ILIKE");
    ck_assert_str_eq(json_string_value(json_object_get(x, "value")), "NLP%");
    x = json_array_get(c, 3);
    ck_assert_str_eq(json_string_value(json_object_get(x, "field")), "attribute");
    ck_assert_str_eq(json_string_value(json_object_get(x, "key")), "status");
    x = json_array_get(c, 4);
    ck_assert(json_is_integer(json_object_get(x, "value")));
    x = json_array_get(c, 5);
    ck_assert_str_eq(json_string_value(json_object_get(x, "key")), "name");
    json_decref(c);
    c = parse("   ", msg);
    ck_assert_int_eq(json_array_size(c), 0);
    json_decref(c);
    c = parse("metric.a/b:c-d.e >= -1e3", msg);
    ck_assert_msg(c != NULL, "%s", msg);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(c, 0), "key")), "a/b:c-d.e");
    json_decref(c);
}
END_TEST

START_TEST(filter_errors)
{
    static const struct {
        const char *in, *pos;
    } bad[] = {
        {"metric.loss LIKE 'x'", "character 1:"},
        {"loss < 1", "character 1:"},
        {"metric.loss ~ 1", "character 13:"},
        {"metric.loss < 'x'", "character 1:"},
        {"param.p < 'x'", "character 1:"},
        {"status = 'DONE'", "character 1:"},
        {"metric.loss < 1 OR metric.x > 1", "character 17:"},
        {"metric.loss < 1 and", "character 20:"},
        {"metric.`loss < 1", "character 8:"},
        {"name = 'open", "character 8:"},
        {"metric. < 1", "character 8:"},
        {"attributes.colour = 'x'", "character 1:"},
        {"metric.x < 1e999", "character 12:"},
        {"start_time_ms > 1.5", "character 1:"},
        {"param.`\xcb r` = 'x'", "character 1:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char msg[300] = "";
        json_t *c = parse(bad[i].in, msg);
        ck_assert_msg(c == NULL, "accepted: %s", bad[i].in);
        ck_assert_msg(strstr(msg, bad[i].pos) != NULL, "\"%s\": %s (wanted %s)", bad[i].in, msg,
                      bad[i].pos);
    }
    /* at most 20 clauses */
    char many[2000] = "";
    for (int i = 0; i < 21; i++)
        strcat(many, i ? " and metric.x > 1" : "metric.x > 1");
    char msg[300];
    ck_assert_ptr_null(parse(many, msg));
    ck_assert_ptr_nonnull(strstr(msg, "at most 20"));
}
END_TEST

START_TEST(order_by)
{
    char msg[300];
    json_t *in = json_pack("[s,s,s]", "metric.loss ASC", "start_time_ms", "params.lr desc");
    json_t *o = track_parse_order_by(in, msg, sizeof msg);
    ck_assert_msg(o != NULL, "%s", msg);
    ck_assert(json_is_true(json_object_get(json_array_get(o, 0), "ascending")));
    ck_assert(json_is_false(json_object_get(json_array_get(o, 1), "ascending")));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(o, 1), "field")),
                     "attribute");
    json_decref(o);
    json_decref(in);
    in = json_pack("[s]", "metric.loss UP");
    ck_assert_ptr_null(track_parse_order_by(in, msg, sizeof msg));
    ck_assert_msg(strncmp(msg, "order_by[0]: at character 13", 28) == 0, "%s", msg);
    json_decref(in);
    in = json_pack("[s,s,s,s]", "name", "name", "name", "name");
    ck_assert_ptr_null(track_parse_order_by(in, msg, sizeof msg));
    json_decref(in);
}
END_TEST

START_TEST(split_log)
{
    json_t *metrics = json_array();
    for (int i = 0; i < 2345; i++)
        json_array_append_new(metrics, json_pack("{s:s,s:i}", "key", "m", "value", i));
    json_t *params = json_object();
    for (int i = 0; i < 150; i++) {
        char k[16];
        snprintf(k, sizeof k, "p%d", i);
        json_object_set_new(params, k, json_integer(i));
    }
    json_t *body =
        json_pack("{s:o,s:o,s:{s:s}}", "metrics", metrics, "params", params, "tags", "t", "v");
    char msg[300], field[300];
    json_t *b = track_split_log(body, 42, msg, sizeof msg, field, sizeof field);
    ck_assert_msg(b != NULL, "%s", msg);
    size_t i, nm = 0, np = 0, nt = 0;
    json_t *x;
    long long next = 0;
    json_array_foreach(b, i, x)
    {
        size_t m = json_array_size(json_object_get(x, "metrics"));
        size_t p = json_object_size(json_object_get(x, "params"));
        size_t t = json_object_size(json_object_get(x, "tags"));
        ck_assert_uint_le(m, LLMOPS_TRACKING_BATCH_MAX_METRICS);
        ck_assert_uint_le(p, LLMOPS_TRACKING_BATCH_MAX_PARAMS);
        ck_assert_uint_le(t, LLMOPS_TRACKING_BATCH_MAX_TAGS);
        ck_assert_uint_le(m + p + t, LLMOPS_TRACKING_BATCH_MAX_ENTRIES);
        size_t k;
        json_t *pt;
        json_array_foreach(json_object_get(x, "metrics"), k, pt)
        {
            ck_assert_int_eq(json_integer_value(json_object_get(pt, "value")), next++);
            ck_assert_int_eq(json_integer_value(json_object_get(pt, "timestamp_ms")), 42);
            ck_assert_int_eq(json_integer_value(json_object_get(pt, "step")), 0);
        }
        nm += m, np += p, nt += t;
    }
    ck_assert_uint_eq(nm, 2345);
    ck_assert_uint_eq(np, 150);
    ck_assert_uint_eq(nt, 1);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(json_array_get(b, 0), "params"), "p7")),
        "7");
    json_decref(b);
    json_decref(body);

    static const char *const bad[][2] = {
        {"{\"metrics\":[{\"key\":\"a\",\"value\":\"NAN\"}]}", "metrics[0].value"},
        {"{\"metrics\":[{\"key\":\"\",\"value\":1}]}", "metrics[0].key"},
        {"{\"metrics\":[{\"key\":\"a\",\"value\":1,\"step\":1.5}]}", "metrics[0].step"},
        {"{\"metrics\":[{\"key\":\"a\",\"value\":1,\"extra\":1}]}", "metrics[0].extra"},
        {"{\"params\":{\"a\":[1]}}", "params.a"},
        {"{\"tags\":{\"llmops.idempotency_key\":\"x\"}}", "tags.llmops.idempotency_key"},
        {"{\"metric\":[]}", "metric"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        body = json_loads(bad[k][0], 0, NULL);
        ck_assert_ptr_null(track_split_log(body, 0, msg, sizeof msg, field, sizeof field));
        ck_assert_str_eq(field, bad[k][1]);
        json_decref(body);
    }
    body = json_object();
    b = track_split_log(body, 0, msg, sizeof msg, field, sizeof field);
    ck_assert_int_eq(json_array_size(b), 1);
    json_decref(b);
    json_decref(body);
}
END_TEST

/* "at character N" counts characters: a filter with non-ASCII text before the error names
 * the character a reader counts, and the text found is quoted in whole characters. */
START_TEST(filter_error_positions_are_characters)
{
    char msg[300] = "";
    /* "name = 'été' AND x": 'x' is character 18, byte 20 */
    json_t *c = parse("name = '\xc3\xa9t\xc3\xa9' AND x", msg);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(msg, "at character 18:") != NULL, "%s", msg);
    /* 25 characters after a 1-byte one: a 20-byte cut would split the 10th 'é' */
    c = parse("name = 'a' AND x\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
              "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
              "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
              msg);
    ck_assert_ptr_null(c);
    json_t *m = json_string(msg);
    ck_assert_msg(m != NULL, "not UTF-8: %s", msg);
    json_decref(m);
    ck_assert_msg(strstr(msg,
                         "found 'x\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                         "\xc3\xa9\xc3\xa9'") != NULL,
                  "%s", msg);
    /* order_by quotes through a smaller buffer: still whole characters */
    json_t *list =
        json_pack("[s]", "name \xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
                         "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
    ck_assert_ptr_null(track_parse_order_by(list, msg, sizeof msg));
    ck_assert_msg(strstr(msg, "order_by[0]: at character 6:") != NULL, "%s", msg);
    m = json_string(msg);
    ck_assert_msg(m != NULL, "not UTF-8: %s", msg);
    json_decref(m);
    json_decref(list);
}
END_TEST

/* Params given as JSON numbers keep their value: integers exactly, reals as the shortest text
 * that reads back as the same double (%.15g made 0.30000000000000004 "0.3"). */
START_TEST(split_log_number_params)
{
    static const struct {
        const char *json, *text;
    } cases[] = {
        {"0.30000000000000004", "0.30000000000000004"},
        {"0.3", "0.3"},
        {"0.1", "0.1"},
        {"12345678901234567890.0", "1.2345678901234567e+19"},
        {"1e300", "1e+300"},
        {"2.5", "2.5"},
        {"3.0", "3"},
        {"-0.0", "-0"},
        {"9007199254740993", "9007199254740993"},
        {"-9223372036854775808", "-9223372036854775808"},
        {"9223372036854775807", "9223372036854775807"},
        {"1.7976931348623157e308", "1.7976931348623157e+308"},
        {"5e-324", "5e-324"},
        {"4.9406564584124654e-324", "5e-324"},
        {"123456.789", "123456.789"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char doc[128], msg[300] = "", field[300] = "";
        snprintf(doc, sizeof doc, "{\"params\": {\"p\": %s}}", cases[i].json);
        json_error_t jerr;
        json_t *body = json_loads(doc, 0, &jerr);
        ck_assert_msg(body != NULL, "%s: %s", doc, jerr.text);
        json_t *b = track_split_log(body, 0, msg, sizeof msg, field, sizeof field);
        ck_assert_msg(b != NULL, "%s", msg);
        const char *got = json_string_value(
            json_object_get(json_object_get(json_array_get(b, 0), "params"), "p"));
        ck_assert_msg(got && strcmp(got, cases[i].text) == 0, "%s stored as %s, wanted %s",
                      cases[i].json, got ? got : "(null)", cases[i].text);
        if (json_is_real(json_object_get(json_object_get(body, "params"), "p")))
            ck_assert(strtod(got, NULL) ==
                      json_real_value(json_object_get(json_object_get(body, "params"), "p")));
        json_decref(b);
        json_decref(body);
    }
}
END_TEST

START_TEST(backoff)
{
    struct llmops_conf c;
    memset(&c, 0, sizeof c);
    c.outbox_base_delay_ms = 1000;
    c.outbox_max_delay_ms = 60000;
    for (int a = 0; a < 20; a++) {
        long long step = 1000LL << (a < 10 ? a : 10);
        if (step > 60000)
            step = 60000;
        for (int k = 0; k < 50; k++) {
            long long d = outbox_backoff_ms(&c, a);
            ck_assert_int_ge(d, step / 2);
            ck_assert_int_le(d, step);
        }
    }
}
END_TEST

Suite *make_tracking_suite(void)
{
    Suite *s = suite_create("tracking");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, filter_clauses);
    tcase_add_test(tc, filter_errors);
    tcase_add_test(tc, order_by);
    tcase_add_test(tc, split_log);
    tcase_add_test(tc, split_log_number_params);
    tcase_add_test(tc, filter_error_positions_are_characters);
    tcase_add_test(tc, backoff);
    suite_add_tcase(s, tc);
    return s;
}
