/*
 * llmops-registry.h — the model_registry category: a catalog of models, each a set of files
 * at immutable revisions.
 *
 * Modules: registry-pg (the platform's internal catalog: rows in its tables, files in its
 * own store) and huggingface (the Hugging Face Hub API: search, model info, resolve
 * downloads, commits). Files move between a registry and the platform's model store (a
 * local directory tree the core manages, where serving and training read them):
 * import_version brings a model's files from the registry, pinned at one revision;
 * export_version publishes a directory of the store as a new revision. "Import from the
 * Hub into the catalog" is therefore import_version on a huggingface instance followed by
 * export_version on a registry-pg instance, with the source recorded in `metadata`; "export
 * to the Hub" is the reverse.
 */
#ifndef LLMOPS_REGISTRY_H
#define LLMOPS_REGISTRY_H

#include "llmops-plugin.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- category conventions: the same text in all five category headers ----
 *
 * Calls. Each operation is an llmops_op_fn. `in` is a JSON object the core has checked
 * against the members the operation lists (types, ranges, `!` = required; unknown members
 * never reach the module); it is borrowed, never modified. Success: return 0 with *out set
 * to a new JSON object (`{}` when there is nothing to say), released by the core. Failure:
 * return -1 with *err filled (llmops_fail) and *out left NULL. Calls on one state never
 * overlap, but each worker and the jobs process holds its own state for the same tool:
 * what must hold across calls lives in the tool or the module's tables, never in state.
 *
 * Ids. `external_id` is the TOOL's id of an object (at most 255 bytes): a create returns
 * it, the core stores the mapping from its own id and passes it back verbatim. Ids of
 * other objects in `in` (a run's experiment_id, ...) are tool ids too; platform ids reach
 * a module only as idempotency keys.
 *
 * Idempotency. Every create takes `idempotency_key!`, 1..63 characters matching
 * [A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])? (so a Kubernetes label value can hold it). The
 * module records it on the object in the tool (an MLflow tag, a Kubernetes label, a
 * column, a commit summary) and looks it up, before creating or when the tool reports a
 * duplicate, so that a create retried after a lost answer returns the first object with
 * "created": false and never makes a second one; a create that made it answers "created":
 * true. Deleting what is already gone succeeds with "deleted": false.
 *
 * Pages. List and search ops take `max_results` (1..the op's maximum; the core always
 * sends it) and `page_token`, and answer `next_page_token`, absent on the last page (a
 * short page may still carry one). Tokens are the module's own format, at most 2048 bytes,
 * free of secrets. They come back from API clients, so they are untrusted input: never
 * follow a URL found in one to another host. A token the tool no longer accepts (an
 * expired Kubernetes continue) is INVALID.
 *
 * Values. Times are integers, milliseconds since the Unix epoch (members end in _ms);
 * durations are seconds (_seconds), sizes bytes (_bytes), strings UTF-8. An object in an
 * answer may carry `links` ({"ui": URL} where the tool has a page for it) and `tool` (an
 * object of tool-specific details that clients get as they are; never a secret). `?` marks
 * members an answer may omit.
 *
 * Errors. Any op may fail with UNAVAILABLE (no answer in time; retryable), TOOL (the tool
 * answered with an error; retryable for 429 and 5xx; a 401 or 403 to the module's own
 * credentials is TOOL with tool_status set) or INTERNAL; each op lists the other codes it
 * uses. A member the tool cannot honour is refused with UNSUPPORTED naming it, never
 * dropped (Kubernetes prunes unknown fields of custom resources without an error).
 * Messages are one short line without secrets or raw tool text (MLflow's carry SQL);
 * details go to host->log.
 *
 * Capabilities. The descriptor's capabilities() answers {"operations": [names], ...} with
 * the names of the ops members. Required ops are non-NULL (the loader refuses the module
 * otherwise: llmops_<category>_missing_op) and always listed; optional ops may be NULL and
 * are listed when this instance can do them (tool version, credentials). The core calls an
 * op only when it is listed, non-NULL and inside ops->size; otherwise it answers
 * VALIDATION_FAILED "not supported by this module" itself.
 *
 * Long ops. Ops marked [jobs] may run for minutes: the core calls them from the jobs
 * process only, and again after a crash or a retryable error, so they resume (work done
 * and verified is kept). Other ops answer within the instance's HTTP timeouts and never
 * wait for the tool to converge: the jobs process polls.
 *
 * Levels. LLMOPS_<CATEGORY>_ABI grows by one with each change to the category's contract
 * (an op appended to the ops struct, which only grows at its end; a JSON member added or
 * changed); ops added after level 1 are optional. The core loads a module whose descriptor
 * category_abi lies in [LLMOPS_<CATEGORY>_ABI_OLDEST, LLMOPS_<CATEGORY>_ABI]. See
 * ABI-CHANGES.md.
 */
#ifndef LLMOPS_OP_FN_DEFINED
#define LLMOPS_OP_FN_DEFINED
typedef int llmops_op_fn(void *state, json_t *in, json_t **out, struct llmops_error *err);
/* Whether `ops`, an ops struct of `type` as the module built it, has a non-NULL `member`. */
#define LLMOPS_OPS_HAS(type, ops, member)                                                          \
    ((ops)->size >= offsetof(type, member) + sizeof((ops)->member) && (ops)->member != NULL)
#endif
/* ---- end of category conventions ---- */

#define LLMOPS_REGISTRY_ABI 1
#define LLMOPS_REGISTRY_ABI_OLDEST 1

#define LLMOPS_REGISTRY_ID_MAX 200      /* namespace (96) + "/" + name (96), with margin */
#define LLMOPS_REGISTRY_MAX_RESULTS 500 /* the Hub's client caps a page at 500 */
#define LLMOPS_REGISTRY_MAX_PATTERNS 50
#define LLMOPS_REGISTRY_MESSAGE_MAX 200 /* export summary, bytes */
#define LLMOPS_REGISTRY_MAX_METADATA 50

/*
 * Objects in answers
 *   Summary   {external_id, author?, task?, library?, tags (array of strings), license?,
 *             private (boolean), gated, downloads? (last 30 days), likes?, created_ms?,
 *             updated_ms?, revision? (the default branch's latest), links?}
 *   Model     Summary + {revision, files: [File], size_bytes (their sum), card? (object:
 *             the model card's front matter, the Hub's cardData), config? (object),
 *             tool?}
 *   File      {path, size_bytes, sha256?, git_oid?}
 *   Version   {revision, created_ms?, message?, author?, metadata?}
 *
 * Members
 *   external_id  the model's id in the tool, "NAMESPACE/NAME" (the Hub also has bare
 *                legacy names such as "gpt2"; never its 24-hex _id); registry-pg uses the
 *                same rule: characters [A-Za-z0-9_.-], NAME 1..96, neither starting nor
 *                ending with - or ., no -- or .., not ending in .git.
 *   revision     in: a branch, tag or commit (huggingface; absent: "main") or a version
 *                number as a string (registry-pg; absent: the latest). Out: always the
 *                immutable form, a 40-hex commit or a version number, so a later import of
 *                that revision yields the same bytes.
 *   path         POSIX, relative to the model's root, no leading "/", no "." or ".."
 *                component.
 *   sha256       64 lowercase hex of the content. In get_model huggingface has it for LFS
 *                files only (siblings[].lfs.sha256); import_version and export_version
 *                compute it for every file; registry-pg always has it.
 *   git_oid      40 hex, the git blob id, sha1("blob " LEN "\0" bytes) (huggingface).
 *   gated        "no" | "auto" | "manual" (the Hub's false | "auto" | "manual"): whether a
 *                download needs the model's terms accepted by the platform's account.
 *   created_ms   absent where the tool has only a placeholder (the Hub gives every repo
 *                older than 2022-03-02 the createdAt 2022-03-02T23:29:04.000Z).
 *   include      array (1..LLMOPS_REGISTRY_MAX_PATTERNS) of fnmatch(3) patterns without
 *                flags (so * also matches /) on path: a file is taken when one matches.
 *                Absent: every file.
 *   metadata     object: key (1..100 bytes) -> string (at most 1000 bytes), at most
 *                LLMOPS_REGISTRY_MAX_METADATA entries (provenance: "source",
 *                "source_revision"): registry-pg keeps it with the version, huggingface
 *                writes it as "key: value" lines in the commit description.
 */
struct llmops_registry_ops {
    uint32_t size; /* sizeof(struct llmops_registry_ops) as the module was built */

    /* search_models — required. Models the credentials can see.
     *   in   query (a substring of the id), author (an exact namespace), tags (array of
     *        strings that must all be present: "pytorch", "license:mit"), task (a pipeline
     *        tag: "text-generation"), sort ("downloads" | "likes" | "updated" | "created";
     *        always descending: the Hub has no ascending order), max_results!
     *        (1..LLMOPS_REGISTRY_MAX_RESULTS), page_token
     *   out  {models: [Summary], next_page_token?}
     *   err  INVALID (page_token).
     * huggingface pages with the cursor of the Link rel="next" header and keeps only that
     * cursor in its token, rebuilding the URL from the instance's endpoint. */
    llmops_op_fn *search_models;

    /* get_model — required. The model at one revision, with its files.
     *   in   external_id!, revision
     *   out  Model
     *   err  NOT_FOUND: the model, or the revision (the message says which); a private
     *        model the credentials cannot see is NOT_FOUND too (the Hub does not tell). */
    llmops_op_fn *get_model;

    /* import_version — required, [jobs]. Copies the model's files at one revision into
     * dest_path. Every file comes from the same revision (huggingface pins the commit of
     * X-Repo-Commit first) and is verified before it is renamed into place: sha256 where
     * known, else git_oid (registry-pg: its stored sha256). A file already in dest_path
     * with the expected size and hash is kept, so a second call resumes.
     *   in   external_id!, revision, dest_path! (an absolute local directory the core made;
     *        it may hold files of an interrupted attempt), include
     *   out  {revision, files: [File, each with sha256], size_bytes}
     *   err  NOT_FOUND: the model or the revision; INVALID: include matches no file; TOOL
     *        with tool_status 401 or 403: a gated model whose terms the platform's account
     *        has not accepted (the message says so); TOOL, not retryable: a file still
     *        fails verification after the module's own retries. */
    llmops_op_fn *import_version;

    /* list_versions — optional (registry-pg; not in the Hub contract yet). Newest first.
     *   in   external_id!, max_results! (1..LLMOPS_REGISTRY_MAX_RESULTS), page_token
     *   out  {versions: [Version], next_page_token?}
     *   err  NOT_FOUND; INVALID (page_token). */
    llmops_op_fn *list_versions;

    /* export_version — optional, [jobs]. Publishes files of source_path as one new
     * revision of external_id, creating the model when it does not exist; registry-pg
     * copies them into its store, huggingface makes one commit (preupload, LFS upload for
     * the files the Hub marks lfs, then the commit). Listed only when the credentials can
     * write (huggingface: whoami-v2 role "write" or "fineGrained").
     *   in   idempotency_key!, external_id!, source_path! (an absolute local directory),
     *        include, message! (1..LLMOPS_REGISTRY_MESSAGE_MAX bytes: the commit summary),
     *        metadata, private (boolean, default true; used only when creating the model),
     *        base_revision (the revision this one must follow: huggingface sends it as
     *        parentCommit)
     *   out  {external_id, revision (the new one), created, model_created (boolean),
     *        files: [File, each with sha256], size_bytes, links?}
     *   err  CONFLICT: base_revision is no longer the latest (the Hub's 412), or another
     *        commit is under way (the Hub's transient 409; retryable); INVALID: no file to
     *        export; TOOL 401/403: the credentials cannot write to that namespace.
     * The key makes a retry safe where a lost commit answer would otherwise commit twice:
     * registry-pg keeps it in a column; huggingface writes "[llm-ops KEY]" at the end of
     * the commit summary and, before committing again, reads the branch (tree
     * ?expand=true lastCommit.title of an exported path) for it. */
    llmops_op_fn *export_version;

    /* find_by_idempotency_key — optional. The revision an export_version made with this
     * key.
     *   in   idempotency_key!, external_id!
     *   out  {external_id, revision}
     *   err  NOT_FOUND: no revision carries the key. */
    llmops_op_fn *find_by_idempotency_key;
};

/* Every op in struct order, X(member, required): the names capabilities() lists. */
#define LLMOPS_REGISTRY_OPS(X)                                                                     \
    X(search_models, 1)                                                                            \
    X(get_model, 1)                                                                                \
    X(import_version, 1)                                                                           \
    X(list_versions, 0)                                                                            \
    X(export_version, 0)                                                                           \
    X(find_by_idempotency_key, 0)

/* The name of the first required op that `ops` lacks (NULL, or beyond ops->size), or NULL
 * when it has them all: the loader refuses the module with that name. */
static inline const char *llmops_registry_missing_op(const struct llmops_registry_ops *ops)
{
    if (!ops)
        return "ops";
#define LLMOPS_REQUIRED_OP_(member, required)                                                      \
    if ((required) && !LLMOPS_OPS_HAS(struct llmops_registry_ops, ops, member))                    \
        return #member;
    LLMOPS_REGISTRY_OPS(LLMOPS_REQUIRED_OP_)
#undef LLMOPS_REQUIRED_OP_
    return NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* LLMOPS_REGISTRY_H */
