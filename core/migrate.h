/* Schema migrations: numbered SQL files applied in order, each in a transaction, under an
 * advisory lock, recorded in schema_migrations. */
#ifndef LLMOPS_MIGRATE_H
#define LLMOPS_MIGRATE_H

#include <libpq-fe.h>
#include <stdio.h>

enum migrate_result {
    MIGRATE_OK = 0,
    MIGRATE_FAILED = 1,
    MIGRATE_TOO_NEW = 3, /* the database has versions this build does not know */
};

/* Applies the pending files of dir up to known_version (the build's). Progress to out. */
enum migrate_result migrate_apply(PGconn *conn, const char *dir, int known_version, FILE *out);
/* Prints applied and pending versions. */
enum migrate_result migrate_status(PGconn *conn, const char *dir, int known_version, FILE *out);

#endif
