/* llmops-plugin.h built for ABI 1.0 (LLMOPS_PLUGIN_TARGET_MINOR=0, set by CMakeLists.txt):
 * the structs have exactly the 1.0 sizes ABI-CHANGES.md logs (LP64) and the magic block
 * says 1.0, so a module built this way is a 1.0 module (tests/plugins builds echo10 so and
 * loads it). */
#include "llmops-plugin.h"

#if LLMOPS_PLUGIN_TARGET_MINOR != 0
#error "abi-1.0.c must be built with LLMOPS_PLUGIN_TARGET_MINOR=0"
#endif
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(struct llmops_host) == 136, "llmops_host 1.0");
_Static_assert(sizeof(struct llmops_http_request) == 72, "llmops_http_request 1.0");
_Static_assert(sizeof(struct llmops_http_response) == 160, "llmops_http_response 1.0");
_Static_assert(sizeof(struct llmops_plugin) == 112, "llmops_plugin 1.0");
_Static_assert(sizeof(struct llmops_error) == 528, "llmops_error 1.0");
#endif

static const struct llmops_plugin_magic magic_1_0 = LLMOPS_PLUGIN_MAGIC_INIT;
_Static_assert(sizeof magic_1_0 == 16, "magic block");
const struct llmops_plugin_magic *llmops_abi_1_0_magic(void);
const struct llmops_plugin_magic *llmops_abi_1_0_magic(void)
{
    return &magic_1_0; /* abi_minor 0: checked by tests/plugins (echo10) at run time */
}
