#ifndef CHECK_SUITES_H
#define CHECK_SUITES_H
#include <check.h>
Suite *make_conf_suite(void);
Suite *make_router_suite(void);
Suite *make_http_suite(void);
Suite *make_gpu_suite(void);
Suite *make_breaker_suite(void);
Suite *make_tracking_suite(void);
Suite *make_engine_suite(void);
Suite *make_alerts_suite(void);
#endif
