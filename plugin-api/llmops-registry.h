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

/* The conventions every category interface follows (calls, ids, idempotency, pages, values,
 * errors, capabilities, long operations, levels), llmops_op_fn and LLMOPS_OPS_HAS are in
 * llmops-plugin.h. */

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
