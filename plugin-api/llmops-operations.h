/*
 * llmops-operations.h — the context of a long operation ([jobs] ops), ABI 1.1.
 *
 * An op marked [jobs] in a category header (import_version, export_version,
 * commit_version, checkout_version, ...) may run for minutes. The core runs it in the
 * background process's operations lane, as an operation record that API clients read at
 * /llm-ops/v1/operations/{id} (state, progress, error) and may cancel. While the op runs,
 * llmops_op_ctx(host) gives it this context (NULL outside a long operation, or from a core
 * older than ABI 1.1: the op then simply runs to its end):
 *
 *   progress(ctx, done, total, unit)   what is done so far, of total (-1: not known yet),
 *                                      in unit ("bytes", "files", "steps"; at most 15 bytes);
 *   checkpoint_save(ctx, json)         remembers where the op is (a JSON value of at most
 *                                      64 KiB, borrowed); a later run of the same operation,
 *                                      after a crash, SIGTERM or SIGKILL of the process,
 *                                      gets it back from
 *   checkpoint_load(ctx)               a new reference to the last saved checkpoint, or NULL
 *                                      when the operation starts afresh;
 *   cancelled(ctx)                     1 when the op must stop now: an API client cancelled
 *                                      the operation, or the process is stopping (SIGTERM).
 *                                      The op then returns at once (any status: the core
 *                                      knows why it stopped); a stop for SIGTERM is resumed
 *                                      later, from the checkpoint, by this or another
 *                                      background process.
 *
 * The op calls progress() or cancelled() at least once a second: each call also renews the
 * operation's lease, and an operation whose lease (5 s) ran out is taken over by another
 * background process. Calls are cheap (the core writes at most every 50 ms and reads the
 * cancel flag at most every 100 ms). progress and checkpoint_save return 0, or -1 when the
 * operation is no longer this process's (the op then stops).
 */
#ifndef LLMOPS_OPERATIONS_H
#define LLMOPS_OPERATIONS_H

#include "llmops-plugin.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LLMOPS_OP_UNIT_MAX 15          /* bytes of a progress unit */
#define LLMOPS_OP_CHECKPOINT_MAX 65536 /* bytes of a checkpoint, as compact JSON */

struct llmops_op_ctx {
    uint32_t size;            /* sizeof(struct llmops_op_ctx) as the core built it */
    const char *operation_id; /* the operation record's id, for the module's log lines */
    int (*progress)(const struct llmops_op_ctx *ctx, int64_t done, int64_t total, const char *unit);
    int (*checkpoint_save)(const struct llmops_op_ctx *ctx, const json_t *checkpoint);
    json_t *(*checkpoint_load)(const struct llmops_op_ctx *ctx);
    int (*cancelled)(const struct llmops_op_ctx *ctx);
    void *core_private; /* the core's: modules leave it alone */
};

/* The context of the long operation running on this instance now, or NULL. */
static inline const struct llmops_op_ctx *llmops_op_ctx(const struct llmops_host *h)
{
#if LLMOPS_PLUGIN_TARGET_MINOR >= 1
    if (!h || h->size < offsetof(struct llmops_host, op_ctx) + sizeof h->op_ctx || !h->op_ctx)
        return NULL;
    return h->op_ctx(h);
#else
    (void)h; /* a module built for 1.0: its host has no op_ctx */
    return NULL;
#endif
}

#ifdef __cplusplus
}
#endif

#endif
