/*
 * llmops-ops.h — operations as data: the table format every category header declares its
 * operations in, so that one call path in the core checks the input of every operation
 * against the same declarations (kcgi's struct kvalid, applied to JSON), gates it on the
 * instance's capabilities, calls it, maps its errors and counts it.
 *
 * A category header declares, for each operation, one line:
 *
 *   LLMOPS_OP(struct llmops_tracking_ops, get_run, 1, READ, "run", 0, in_get_run)
 *            ops struct type,             member, required, kind, object kind, flags, input
 *
 * and, for each input, an array of members ended by LLMOPS_END:
 *
 *   static const struct llmops_member in_get_run[] = {
 *       LLMOPS_STR("external_id", LLMOPS_M_REQUIRED, 1, 255), LLMOPS_END};
 *
 * Both live inside a static inline function of the header (llmops_tracking_op_table), so a
 * translation unit that does not use them gets no unused-variable warning and no copy.
 * The core validates `in` against the op's members before it calls the module: unknown
 * members, a missing required member, a wrong type, a value out of bounds or outside an
 * enum are refused with VALIDATION_FAILED and the member's path ("metrics[3].value",
 * "tags.lr"); a module may trust what the table says.
 */
#ifndef LLMOPS_OPS_H
#define LLMOPS_OPS_H

#include <limits.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What an operation does to the objects of its category. */
enum llmops_op_kind {
    LLMOPS_OP_READ = 1, /* reads one object */
    LLMOPS_OP_LIST,     /* pages of objects (max_results, page_token): may fan out */
    LLMOPS_OP_CREATE,   /* makes an object (takes an idempotency key) */
    LLMOPS_OP_UPDATE,   /* changes an object */
    LLMOPS_OP_DELETE,   /* marks or removes an object */
    LLMOPS_OP_LONG      /* [jobs]: runs for minutes, from the jobs process only */
};

/* Flags of an operation. */
#define LLMOPS_OP_IDEMPOTENT 1u /* takes idempotency_key! (every create) */
#define LLMOPS_OP_OUTBOX 2u     /* a write that may wait in the outbox when the tool is down */
#define LLMOPS_OP_INTERNAL 4u   /* called by the core only (the outbox, sync), never routed */

/* The type of an input member. */
enum llmops_member_type {
    LLMOPS_T_STRING = 1, /* min..max bytes (characters with LLMOPS_M_CHARS); enums: a set */
    LLMOPS_T_INT,        /* a JSON integer in min..max */
    LLMOPS_T_NUMBER,     /* a JSON number (integer or real) in min..max */
    LLMOPS_T_VALUE,      /* a JSON number, or one of "NaN", "Infinity", "-Infinity" */
    LLMOPS_T_BOOL,       /* true or false */
    LLMOPS_T_KEY,        /* an idempotency key: 1..63 of [A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])? */
    LLMOPS_T_OBJECT,     /* an object of the members `sub` lists */
    LLMOPS_T_ARRAY,      /* min..max elements, each as `sub` (one member; its name unused) */
    LLMOPS_T_MAP,        /* an object of min..max entries: keys of 1..key_max bytes (none of
                            `reserved`), each value as `sub` (one member; its name unused) */
    LLMOPS_T_ANY         /* any JSON value (checked by the module or a category hook) */
};

/* Flags of a member. */
#define LLMOPS_M_REQUIRED 1u /* must be present (JSON null counts as absent) */
#define LLMOPS_M_CHARS 2u    /* LLMOPS_T_STRING: min..max count UTF-8 characters, not bytes */

struct llmops_member {
    const char *name; /* NULL ends a list */
    enum llmops_member_type type;
    unsigned flags;
    long long min, max;              /* value, length or entry bounds (inclusive) */
    const char *const *enums;        /* LLMOPS_T_STRING: the allowed values, NULL-ended */
    const struct llmops_member *sub; /* OBJECT: its members; ARRAY, MAP: the element */
    long long key_max;               /* LLMOPS_T_MAP: bytes of a key */
    const char *const *reserved;     /* LLMOPS_T_MAP: keys refused, NULL-ended */
};

/* One line per member. */
#define LLMOPS_STR(name, flags, min, max)                                                          \
    {                                                                                              \
        (name), LLMOPS_T_STRING, (flags), (min), (max), NULL, NULL, 0, NULL                        \
    }
#define LLMOPS_ENUM(name, flags, set)                                                              \
    {                                                                                              \
        (name), LLMOPS_T_STRING, (flags), 0, 0, (set), NULL, 0, NULL                               \
    }
#define LLMOPS_INT(name, flags, min, max)                                                          \
    {                                                                                              \
        (name), LLMOPS_T_INT, (flags), (min), (max), NULL, NULL, 0, NULL                           \
    }
#define LLMOPS_INT_ANY(name, flags) LLMOPS_INT(name, flags, LLONG_MIN, LLONG_MAX)
#define LLMOPS_NUMBER(name, flags, min, max)                                                       \
    {                                                                                              \
        (name), LLMOPS_T_NUMBER, (flags), (min), (max), NULL, NULL, 0, NULL                        \
    }
#define LLMOPS_VALUE(name, flags)                                                                  \
    {                                                                                              \
        (name), LLMOPS_T_VALUE, (flags), 0, 0, NULL, NULL, 0, NULL                                 \
    }
#define LLMOPS_BOOL(name, flags)                                                                   \
    {                                                                                              \
        (name), LLMOPS_T_BOOL, (flags), 0, 0, NULL, NULL, 0, NULL                                  \
    }
#define LLMOPS_IDKEY(name, flags)                                                                  \
    {                                                                                              \
        (name), LLMOPS_T_KEY, (flags), 1, 63, NULL, NULL, 0, NULL                                  \
    }
#define LLMOPS_OBJECT(name, flags, members)                                                        \
    {                                                                                              \
        (name), LLMOPS_T_OBJECT, (flags), 0, 0, NULL, (members), 0, NULL                           \
    }
#define LLMOPS_ARRAY(name, flags, min, max, element)                                               \
    {                                                                                              \
        (name), LLMOPS_T_ARRAY, (flags), (min), (max), NULL, (element), 0, NULL                    \
    }
#define LLMOPS_MAP(name, flags, min, max, key_max, value, reserved)                                \
    {                                                                                              \
        (name), LLMOPS_T_MAP, (flags), (min), (max), NULL, (value), (key_max), (reserved)          \
    }
#define LLMOPS_ANY(name, flags)                                                                    \
    {                                                                                              \
        (name), LLMOPS_T_ANY, (flags), 0, 0, NULL, NULL, 0, NULL                                   \
    }
#define LLMOPS_END                                                                                 \
    {                                                                                              \
        NULL, LLMOPS_T_ANY, 0, 0, 0, NULL, NULL, 0, NULL                                           \
    }

/* A feature an operation needs (capabilities()' "features"): when the input has `member` (a
 * path of object members, "canary.traffic_percent"; NULL: always), the instance must list
 * `feature`, else the core refuses the call (UNSUPPORTED, VALIDATION_FAILED to clients)
 * naming the feature and the instance, before the module sees it. A list ends with
 * LLMOPS_FEATURES_END. */
struct llmops_op_feature {
    const char *member;
    const char *feature;
};
#define LLMOPS_FEATURE(member, feature)                                                            \
    {                                                                                              \
        (member), (feature)                                                                        \
    }
#define LLMOPS_FEATURES_END                                                                        \
    {                                                                                              \
        NULL, NULL                                                                                 \
    }

/* One operation of a category. */
struct llmops_op_desc {
    const char *name; /* the ops member, as capabilities() lists it */
    size_t slot;      /* offsetof(ops struct, member) */
    int required;     /* the loader refuses a module without it */
    enum llmops_op_kind kind;
    const char *object; /* the platform object kind it owns or reads ("exp", "run"), or NULL */
    unsigned flags;     /* LLMOPS_OP_* */
    const struct llmops_member *in; /* its input members, ended by LLMOPS_END */
    /* appended: the features it needs, ended by LLMOPS_FEATURES_END, or NULL */
    const struct llmops_op_feature *features;
};

/* One line per operation: LLMOPS_OP(ops type, member, required, READ|LIST|..., object,
 * flags, input members). */
#define LLMOPS_OP(type, member, required, kind, object, flags, in)                                 \
    LLMOPS_OP_F(type, member, required, kind, object, flags, in, NULL)
/* The same with the features it needs (struct llmops_op_feature[], see above). */
#define LLMOPS_OP_F(type, member, required, kind, object, flags, in, features)                     \
    {                                                                                              \
#member, offsetof(type, member), (required), LLMOPS_OP_##kind, (object), (flags), (in),    \
            (features)                                                                             \
    }

#ifdef __cplusplus
}
#endif

#endif /* LLMOPS_OPS_H */
