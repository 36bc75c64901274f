/* The category ops structs against their LLMOPS_<CATEGORY>_OPS(X) lists and levels: each
 * listed member sits in the slot the list gives it, nothing is left unlisted, and the op
 * count is the one plugin-api/ABI-CHANGES.md logs for the current level. An op inserted,
 * reordered, or appended without a new level and a log line fails the build here. */
#include "llmops-orchestration.h"
#include "llmops-registry.h"
#include "llmops-serving.h"
#include "llmops-tracking.h"
#include "llmops-versioning.h"

/* Where the first op sits: right after `uint32_t size`, at the pointers' alignment. */
#define FIRST_SLOT                                                                                 \
    ((sizeof(uint32_t) + _Alignof(llmops_op_fn *) - 1) / _Alignof(llmops_op_fn *) *                \
     _Alignof(llmops_op_fn *))
#define SLOT(i) (FIRST_SLOT + (size_t)(i) * sizeof(llmops_op_fn *))

#define TRACKING_INDEX(m, r) TRACKING_##m,
enum { LLMOPS_TRACKING_OPS(TRACKING_INDEX) TRACKING_COUNT };
#define TRACKING_AT(m, r)                                                                          \
    _Static_assert(offsetof(struct llmops_tracking_ops, m) == SLOT(TRACKING_##m),                  \
                   "llmops_tracking_ops." #m " is not where LLMOPS_TRACKING_OPS lists it");
LLMOPS_TRACKING_OPS(TRACKING_AT)
_Static_assert(sizeof(struct llmops_tracking_ops) == SLOT(TRACKING_COUNT),
               "llmops_tracking_ops has a member LLMOPS_TRACKING_OPS does not list");
#if LLMOPS_TRACKING_ABI != 1 || LLMOPS_TRACKING_ABI_OLDEST != 1
#error "new experiment_tracking level: log it in plugin-api/ABI-CHANGES.md, then update here"
#endif
_Static_assert(TRACKING_COUNT == 13, "llmops_tracking_ops changed without a new level");

#define SERVING_INDEX(m, r) SERVING_##m,
enum { LLMOPS_SERVING_OPS(SERVING_INDEX) SERVING_COUNT };
#define SERVING_AT(m, r)                                                                           \
    _Static_assert(offsetof(struct llmops_serving_ops, m) == SLOT(SERVING_##m),                    \
                   "llmops_serving_ops." #m " is not where LLMOPS_SERVING_OPS lists it");
LLMOPS_SERVING_OPS(SERVING_AT)
_Static_assert(sizeof(struct llmops_serving_ops) == SLOT(SERVING_COUNT),
               "llmops_serving_ops has a member LLMOPS_SERVING_OPS does not list");
#if LLMOPS_SERVING_ABI != 2 || LLMOPS_SERVING_ABI_OLDEST != 2
#error "new serving level: log it in plugin-api/ABI-CHANGES.md, then update here"
#endif
_Static_assert(SERVING_COUNT == 11, "llmops_serving_ops changed without a new level");

#define ORCHESTRATION_INDEX(m, r) ORCHESTRATION_##m,
enum { LLMOPS_ORCHESTRATION_OPS(ORCHESTRATION_INDEX) ORCHESTRATION_COUNT };
#define ORCHESTRATION_AT(m, r)                                                                     \
    _Static_assert(offsetof(struct llmops_orchestration_ops, m) == SLOT(ORCHESTRATION_##m),        \
                   "llmops_orchestration_ops." #m                                                  \
                   " is not where LLMOPS_ORCHESTRATION_OPS lists it");
LLMOPS_ORCHESTRATION_OPS(ORCHESTRATION_AT)
_Static_assert(sizeof(struct llmops_orchestration_ops) == SLOT(ORCHESTRATION_COUNT),
               "llmops_orchestration_ops has a member LLMOPS_ORCHESTRATION_OPS does not list");
#if LLMOPS_ORCHESTRATION_ABI != 1 || LLMOPS_ORCHESTRATION_ABI_OLDEST != 1
#error "new orchestration level: log it in plugin-api/ABI-CHANGES.md, then update here"
#endif
_Static_assert(ORCHESTRATION_COUNT == 8, "llmops_orchestration_ops changed without a new level");

#define REGISTRY_INDEX(m, r) REGISTRY_##m,
enum { LLMOPS_REGISTRY_OPS(REGISTRY_INDEX) REGISTRY_COUNT };
#define REGISTRY_AT(m, r)                                                                          \
    _Static_assert(offsetof(struct llmops_registry_ops, m) == SLOT(REGISTRY_##m),                  \
                   "llmops_registry_ops." #m " is not where LLMOPS_REGISTRY_OPS lists it");
LLMOPS_REGISTRY_OPS(REGISTRY_AT)
_Static_assert(sizeof(struct llmops_registry_ops) == SLOT(REGISTRY_COUNT),
               "llmops_registry_ops has a member LLMOPS_REGISTRY_OPS does not list");
#if LLMOPS_REGISTRY_ABI != 1 || LLMOPS_REGISTRY_ABI_OLDEST != 1
#error "new model_registry level: log it in plugin-api/ABI-CHANGES.md, then update here"
#endif
_Static_assert(REGISTRY_COUNT == 6, "llmops_registry_ops changed without a new level");

#define VERSIONING_INDEX(m, r) VERSIONING_##m,
enum { LLMOPS_VERSIONING_OPS(VERSIONING_INDEX) VERSIONING_COUNT };
#define VERSIONING_AT(m, r)                                                                        \
    _Static_assert(offsetof(struct llmops_versioning_ops, m) == SLOT(VERSIONING_##m),              \
                   "llmops_versioning_ops." #m " is not where LLMOPS_VERSIONING_OPS lists it");
LLMOPS_VERSIONING_OPS(VERSIONING_AT)
_Static_assert(sizeof(struct llmops_versioning_ops) == SLOT(VERSIONING_COUNT),
               "llmops_versioning_ops has a member LLMOPS_VERSIONING_OPS does not list");
#if LLMOPS_VERSIONING_ABI != 1 || LLMOPS_VERSIONING_ABI_OLDEST != 1
#error "new data_versioning level: log it in plugin-api/ABI-CHANGES.md, then update here"
#endif
_Static_assert(VERSIONING_COUNT == 8, "llmops_versioning_ops changed without a new level");

/* The base ABI's structs, pinned for LP64 (x86-64, aarch64) at the sizes ABI-CHANGES.md
 * logs: 1.1 only appended, so each 1.0 struct is a prefix of its 1.1 self (abi-1.0.c builds
 * the same header for 1.0 and pins the 1.0 sizes). A member moved, resized or inserted fails
 * here; one appended needs a new minor, a log line and new pins. */
#if LLMOPS_PLUGIN_ABI_MAJOR != 1 || LLMOPS_PLUGIN_ABI_MINOR != 1
#error "new base ABI: log it in plugin-api/ABI-CHANGES.md, then update the pins here"
#endif
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(struct llmops_plugin_magic) == 16, "magic block");
_Static_assert(sizeof(struct llmops_plugin) == 112, "llmops_plugin");
_Static_assert(sizeof(struct llmops_error) == 528, "llmops_error");
_Static_assert(sizeof(struct llmops_config_key) == 40, "llmops_config_key");
_Static_assert(offsetof(struct llmops_host, core_private) == 128, "llmops_host 1.0 part");
_Static_assert(offsetof(struct llmops_host, http_header) == 136, "llmops_host 1.1 starts at 136");
_Static_assert(offsetof(struct llmops_host, db_affected) == 208, "llmops_host 1.1 members");
_Static_assert(offsetof(struct llmops_host, op_ctx) == 216, "llmops_host 1.1 op_ctx");
_Static_assert(sizeof(struct llmops_host) == 224, "llmops_host 1.1");
_Static_assert(offsetof(struct llmops_http_request, timeout_ms) == 64, "request 1.0 part");
_Static_assert(offsetof(struct llmops_http_request, endpoint) == 72, "request 1.1 starts at 72");
_Static_assert(offsetof(struct llmops_http_request, progress_ctx) == 128, "request 1.1");
_Static_assert(sizeof(struct llmops_http_request) == 136, "llmops_http_request 1.1");
_Static_assert(offsetof(struct llmops_http_response, attempts) == 152, "response 1.0 part");
_Static_assert(offsetof(struct llmops_http_response, headers) == 160, "response 1.1 at 160");
_Static_assert(offsetof(struct llmops_http_response, file_bytes) == 184, "response 1.1");
_Static_assert(sizeof(struct llmops_http_response) == 192, "llmops_http_response 1.1");
#endif
