/*
 * llmops-versioning.h — the data_versioning category: datasets, each a series of immutable
 * versions of a file or a directory tree.
 *
 * Modules: versioning-fs (a full copy of every version in its store) and dvc (a DVC 3.x
 * cache/remote layout that the stock dvc CLI reads: content-addressed objects at
 * REMOTE/files/md5/XX/REST, a .dir manifest per directory, a .dvc file per version and,
 * when configured, a git commit and tag per version in a data-registry repository). Both
 * identify content the same way, the DVC 3.x digest, so equal content has equal digests
 * whichever module holds it, and diffs and moves between modules need no other hash.
 */
#ifndef LLMOPS_VERSIONING_H
#define LLMOPS_VERSIONING_H

#include "llmops-plugin.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The conventions every category interface follows (calls, ids, idempotency, pages, values,
 * errors, capabilities, long operations, levels), llmops_op_fn and LLMOPS_OPS_HAS are in
 * llmops-plugin.h. */

#define LLMOPS_VERSIONING_ABI 1
#define LLMOPS_VERSIONING_ABI_OLDEST 1

#define LLMOPS_VERSIONING_DATASET_MAX 100
#define LLMOPS_VERSIONING_MAX_RESULTS 500
#define LLMOPS_VERSIONING_FILES_MAX_RESULTS 10000            /* list_files */
#define LLMOPS_VERSIONING_INLINE_MAX_BYTES (8 * 1024 * 1024) /* `files`, decoded, in all */
#define LLMOPS_VERSIONING_MAX_METADATA 50
/* The digest of an empty directory; conformance vectors (dvc's own tests): files "1" and
 * "2" holding "1" and "2" -> 5fb6b29836c388e093ca0715c872fe2a.dir; one file "file" holding
 * "text" -> 0dab3fae569586d4c33272e5011605bf.dir. */
#define LLMOPS_VERSIONING_EMPTY_DIR_DIGEST "d751713988987e9331980363e24189ce.dir"

/*
 * Objects in answers
 *   Version    {external_id, dataset, digest, size_bytes, nfiles? (directories only),
 *              created_ms, message?, metadata?, parent?, links?, tool?}; dvc's tool:
 *              {dvc_file (the .dvc text: outs md5, size, nfiles, hash: md5, path), remote
 *              (its URL, never credentials), git_commit?, git_tag?}
 *   FileEntry  {path, md5, size_bytes? (dvc: absent when only the remote could tell)}
 *
 * Members
 *   dataset      the dataset's name in the tool, [a-z0-9]([a-z0-9._-]*[a-z0-9])?,
 *                1..LLMOPS_VERSIONING_DATASET_MAX (a directory of the store; dvc: the .dvc
 *                file's name and the git tag's prefix).
 *   external_id  the version's id in the tool, opaque to the core (e.g. versioning-fs
 *                "reviews/3", dvc "reviews@v3").
 *   digest       the DVC 3.x object id of the content. A file: its MD5, 32 lowercase hex,
 *                over its exact bytes (no CRLF conversion: that was DVC 2.x). A directory:
 *                the MD5 of its manifest followed by ".dir", the manifest being one JSON
 *                array of {"md5": ..., "relpath": ...}, one per regular file at any depth
 *                (no entries for directories), sorted by relpath byte-wise, written the way
 *                Python's json.dumps(list, sort_keys=True) writes it: ", " and ": "
 *                separators, no newline; \" and \\; \b \f \n \r \t; every other
 *                character outside 0x20..0x7E as \uXXXX in lowercase hex (a surrogate pair
 *                above U+FFFF); "/" not escaped. A single-file version's digest has no
 *                ".dir" and it has no nfiles.
 *   size_bytes   a version's: the sum of its files' sizes.
 *   path         POSIX, relative to the version's root: no leading "/", no empty, "." or
 *                ".." component, no backslash or NUL; taken byte for byte (no Unicode
 *                normalisation: DVC does none, so NFC and NFD names differ).
 *   metadata     object: key (1..100 bytes) -> string (at most 1000 bytes), at most
 *                LLMOPS_VERSIONING_MAX_METADATA entries; dvc writes it under the .dvc
 *                file's top-level meta:, which DVC neither hashes nor drops.
 *   parent       the external_id of the version this one was derived from (lineage).
 */
struct llmops_versioning_ops {
    uint32_t size; /* sizeof(struct llmops_versioning_ops) as the module was built */

    /* commit_version — required, [jobs] when the input is large. Stores a new version of
     * a dataset (made on first use). versioning-fs copies the input; dvc stores each
     * object not yet in the remote (temp name + rename, mode 0444 on local remotes), the
     * .dir manifest only after every file object (DVC trusts a .dir's presence), then the
     * .dvc file (hash: md5 always) and, when configured, the git commit and tag. The same
     * content committed twice is two versions with one digest (dvc stores it once).
     *   in   idempotency_key!, dataset!, exactly one of source_path (an absolute local file
     *        or directory the core staged; read, never changed) and files (array of
     *        {path!, content_base64!}, small versions sent in the request:
     *        LLMOPS_VERSIONING_INLINE_MAX_BYTES), message (1..1000 bytes), metadata, parent
     *   out  Version + {created}
     *   err  INVALID: a path rule, or a symlink, device or FIFO in source_path; NOT_FOUND:
     *        parent. An empty directory is a version (LLMOPS_VERSIONING_EMPTY_DIR_DIGEST).
     * The key goes with the version (dvc: meta llmops_idempotency_key in the .dvc file;
     * versioning-fs: the version's own record). */
    llmops_op_fn *commit_version;

    /* get_version — required.
     *   in   external_id!
     *   out  Version
     *   err  NOT_FOUND. */
    llmops_op_fn *get_version;

    /* list_versions — required. Newest first; a dataset without versions gives [].
     *   in   dataset!, max_results! (1..LLMOPS_VERSIONING_MAX_RESULTS), page_token
     *   out  {versions: [Version], next_page_token?}
     *   err  INVALID (page_token). */
    llmops_op_fn *list_versions;

    /* list_datasets — required. By name.
     *   in   prefix (of the name), max_results! (1..LLMOPS_VERSIONING_MAX_RESULTS), page_token
     *   out  {datasets: [{dataset, latest (the newest version's external_id)}],
     *        next_page_token?}
     *   err  INVALID (page_token). */
    llmops_op_fn *list_datasets;

    /* list_files — required. A version's files, by path byte-wise (dvc: from its .dir
     * manifest; a single-file version lists one entry, its own name).
     *   in   external_id!, prefix (of path), max_results!
     *        (1..LLMOPS_VERSIONING_FILES_MAX_RESULTS), page_token
     *   out  {files: [FileEntry], next_page_token?}
     *   err  NOT_FOUND; INVALID (page_token). */
    llmops_op_fn *list_files;

    /* checkout_version — required, [jobs]. Writes a version's files (or some of them) under
     * dest_path, each verified against its md5 before it is renamed into place (DVC itself
     * does not re-hash downloads, so a wrong object would pass silently). A file already
     * there with the right md5 is kept, so a second call resumes.
     *   in   external_id!, dest_path! (an absolute local directory the core made; it may
     *        hold files of an interrupted attempt), paths (array of paths: a file, or a
     *        directory when it ends in "/"; absent: all)
     *   out  {digest (of the version), nfiles, size_bytes (of what was written)}
     *   err  NOT_FOUND: the version, or a path not in it; TOOL, not retryable: an object
     *        missing from the store or failing its md5. */
    llmops_op_fn *checkout_version;

    /* find_by_idempotency_key — required. The version a commit_version made with this key.
     *   in   dataset!, idempotency_key!
     *   out  Version
     *   err  NOT_FOUND: no version carries the key. */
    llmops_op_fn *find_by_idempotency_key;

    /* diff_versions — optional: when NULL the core computes the same from two list_files
     * walks. `dvc diff --json` rules: files joined on path; only in `to`: added; only in
     * `from`: deleted; both with different md5: modified; an added and a deleted file with
     * the same md5: renamed instead. Each list by path.
     *   in   from!, to! (external_ids; the versions may belong to different datasets)
     *   out  {added: [{path, md5}], deleted: [{path, md5}], modified: [{path, old_md5,
     *        new_md5}], renamed: [{old_path, new_path, md5}]}
     *   err  NOT_FOUND (the message names which). */
    llmops_op_fn *diff_versions;
};

/* Every op in struct order, X(member, required): the names capabilities() lists. */
#define LLMOPS_VERSIONING_OPS(X)                                                                   \
    X(commit_version, 1)                                                                           \
    X(get_version, 1)                                                                              \
    X(list_versions, 1)                                                                            \
    X(list_datasets, 1)                                                                            \
    X(list_files, 1)                                                                               \
    X(checkout_version, 1)                                                                         \
    X(find_by_idempotency_key, 1)                                                                  \
    X(diff_versions, 0)

/* The name of the first required op that `ops` lacks (NULL, or beyond ops->size), or NULL
 * when it has them all: the loader refuses the module with that name. */
static inline const char *llmops_versioning_missing_op(const struct llmops_versioning_ops *ops)
{
    if (!ops)
        return "ops";
#define LLMOPS_REQUIRED_OP_(member, required)                                                      \
    if ((required) && !LLMOPS_OPS_HAS(struct llmops_versioning_ops, ops, member))                  \
        return #member;
    LLMOPS_VERSIONING_OPS(LLMOPS_REQUIRED_OP_)
#undef LLMOPS_REQUIRED_OP_
    return NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* LLMOPS_VERSIONING_H */
