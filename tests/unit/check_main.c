/* One runner for every unit suite (libcheck's check_money layout). */
#include "check_suites.h"

#include <stdlib.h>

int main(void)
{
    SRunner *sr = srunner_create(make_conf_suite());
    srunner_add_suite(sr, make_router_suite());
    srunner_add_suite(sr, make_http_suite());
    srunner_add_suite(sr, make_gpu_suite());
    srunner_add_suite(sr, make_breaker_suite());
    srunner_add_suite(sr, make_tracking_suite());
    srunner_add_suite(sr, make_engine_suite());
    srunner_add_suite(sr, make_alerts_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
