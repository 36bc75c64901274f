#include "conf.h"

#include "build-config.h"
#include "category.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <ini.h>
#include <libgen.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum key_type {
    KT_STRING,
    KT_INT,
    KT_OCTAL,
    KT_BOOL,
    KT_ENVS,
    KT_ENV_NAME,
    KT_LOG_LEVEL,
    KT_LISTEN,
    KT_URLPATH,    /* an absolute URL path */
    KT_LOG_FORMAT, /* text | json → int */
    KT_NETS        /* a list of networks (util_cidr_match) */
};

struct key_def {
    const char *section;
    const char *key;
    enum key_type type;
    size_t offset;
    long long min, max;
};

#define OFF(f) offsetof(struct llmops_conf, f)

/* Every key the core accepts: anything else is an error. */
static const struct key_def keys[] = {
    {"server", "environments", KT_ENVS, 0, 0, 0},
    {"server", "default_environment", KT_ENV_NAME, OFF(default_env), 0, 0},
    {"server", "listen", KT_LISTEN, OFF(listen), 0, 0},
    {"server", "listen_group", KT_STRING, OFF(listen_group), 0, 0},
    {"server", "listen_mode", KT_OCTAL, OFF(listen_mode), 0, 0777},
    {"server", "workers", KT_INT, OFF(workers), 1, 256},
    {"server", "pid_file", KT_STRING, OFF(pid_file), 0, 0},
    {"server", "shutdown_timeout", KT_INT, OFF(shutdown_timeout), 1, 3600},
    {"server", "max_body_bytes", KT_INT, OFF(max_body_bytes), 1024, 67108864},
    {"server", "access_log", KT_BOOL, OFF(access_log), 0, 0},
    {"server", "access_log_flush_ms", KT_INT, OFF(access_log_flush_ms), 0, 10000},
    {"server", "fastcgi_keep_max", KT_INT, OFF(fastcgi_keep_max), 1, 4096},
    {"server", "fastcgi_keep_timeout", KT_INT, OFF(fastcgi_keep_timeout), 1, 3600},
    {"server", "fastcgi_io_timeout_ms", KT_INT, OFF(fastcgi_io_timeout_ms), 10, 60000},
    {"server", "log_level", KT_LOG_LEVEL, OFF(log_level), 0, 0},
    {"server", "log_format", KT_LOG_FORMAT, OFF(log_json), 0, 0},
    {"server", "plugin_dir", KT_STRING, OFF(plugin_dir), 0, 0},
    {"database", "conninfo", KT_STRING, OFF(db_conninfo), 0, 0},
    {"database", "connect_timeout_ms", KT_INT, OFF(db_connect_timeout_ms), 100, 60000},
    {"database", "query_timeout_ms", KT_INT, OFF(db_query_timeout_ms), 100, 600000},
    {"database", "migrations_dir", KT_STRING, OFF(migrations_dir), 0, 0},
    {"auth", "token_cache_seconds", KT_INT, OFF(token_cache_seconds), 0, 3600},
    {"gpu_types", "seed_file", KT_STRING, OFF(seed_file), 0, 0},
    {"breaker", "window_seconds", KT_INT, OFF(breaker_window_seconds), 5, 3600},
    {"breaker", "min_calls", KT_INT, OFF(breaker_min_calls), 1, 100000},
    {"breaker", "error_percent", KT_INT, OFF(breaker_error_percent), 1, 100},
    {"breaker", "open_seconds", KT_INT, OFF(breaker_open_seconds), 1, 86400},
    {"breaker", "auto_close", KT_BOOL, OFF(breaker_auto_close), 0, 0},
    {"outbox", "max_attempts", KT_INT, OFF(outbox_max_attempts), 1, 1000},
    {"outbox", "base_delay_ms", KT_INT, OFF(outbox_base_delay_ms), 10, 600000},
    {"outbox", "max_delay_ms", KT_INT, OFF(outbox_max_delay_ms), 100, 86400000},
    {"outbox", "keep_done_hours", KT_INT, OFF(outbox_keep_done_hours), 1, 87600},
    {"background", "prune_interval_seconds", KT_INT, OFF(bg_prune_interval_seconds), 1, 3600},
    {"background", "prune_batch", KT_INT, OFF(bg_prune_batch), 1, 100000},
    {"background", "keep_watches_hours", KT_INT, OFF(bg_keep_watches_hours), 1, 87600},
    {"background", "keep_operations_hours", KT_INT, OFF(bg_keep_operations_hours), 1, 87600},
    {"background", "keep_alert_events_days", KT_INT, OFF(bg_keep_alert_events_days), 1, 36500},
    {"background", "keep_deleted_deployments_days", KT_INT, OFF(bg_keep_deleted_deployments_days),
     0, 36500},
    {"metrics", "enabled", KT_BOOL, OFF(metrics_enabled), 0, 0},
    {"metrics", "path", KT_URLPATH, OFF(metrics_path), 0, 0},
    {"metrics", "shm_file", KT_STRING, OFF(metrics_shm_file), 0, 0},
    {"metrics", "require_token", KT_BOOL, OFF(metrics_require_token), 0, 0},
    {"metrics", "allow", KT_NETS, OFF(metrics_allow), 0, 0},
    {"metrics", "probe_interval_seconds", KT_INT, OFF(metrics_probe_interval), 5, 3600},
};

struct parse_state {
    struct llmops_conf *conf;
    struct conf_errors *errs;
    const char *file;
    /* line reader */
    const char *text; /* buffer mode */
    size_t pos;
    FILE *fp; /* file mode */
    char *linebuf;
    size_t linecap;
    int line;
    int default_env_line;
    const char *default_env_file;
};

static void add_error(struct conf_errors *errs, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void push_error(struct conf_errors *errs, const char *where, const char *msg)
{
    char full[1700];
    snprintf(full, sizeof full, "%s: %s", where, msg);
    char **nm = realloc(errs->msgs, sizeof(char *) * (size_t)(errs->n + 1));
    if (!nm)
        return;
    errs->msgs = nm;
    errs->msgs[errs->n] = strdup(full);
    if (errs->msgs[errs->n])
        errs->n++;
}

static void add_error(struct conf_errors *errs, const char *file, int line, const char *fmt, ...)
{
    char msg[512], where[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(where, sizeof where, "%s:%d", file, line);
    else
        snprintf(where, sizeof where, "%s", file);
    push_error(errs, where, msg);
}

static char *where_of(const struct parse_state *st)
{
    char buf[1100];
    snprintf(buf, sizeof buf, "%s:%d", st->file, st->line);
    return strdup(buf);
}

void conf_error(struct conf_errors *errs, const char *where, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    push_error(errs, where, msg);
}

/* 1..max of a-z 0-9 _ -, starting with a letter (or a digit when digit_first). */
static int valid_name(const char *s, size_t max, int digit_first)
{
    size_t n = strlen(s);
    if (n == 0 || n > max ||
        !((s[0] >= 'a' && s[0] <= 'z') || (digit_first && s[0] >= '0' && s[0] <= '9')))
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int valid_instance_name(const char *s)
{
    return valid_name(s, 63, 1);
}

/* `plugin "NAME"` → NAME in out (or NULL when section is not of the kind). */
static int quoted_section(const char *section, const char *kind, char *out, size_t size)
{
    size_t k = strlen(kind);
    if (strncmp(section, kind, k) != 0 || section[k] != ' ')
        return 0;
    const char *p = section + k;
    while (*p == ' ')
        p++;
    size_t n = strlen(p);
    if (n < 2 || p[0] != '"' || p[n - 1] != '"' || n - 2 >= size)
        return -1;
    memcpy(out, p + 1, n - 2);
    out[n - 2] = '\0';
    return 1;
}

static struct conf_plugin *plugin_section(struct parse_state *st, const char *name, int create)
{
    struct llmops_conf *c = st->conf;
    for (int i = 0; i < c->nplugins; i++)
        if (strcmp(c->plugins[i].name, name) == 0)
            return &c->plugins[i];
    if (!create)
        return NULL;
    struct conf_plugin *np = realloc(c->plugins, sizeof *np * (size_t)(c->nplugins + 1));
    if (!np)
        return NULL;
    c->plugins = np;
    struct conf_plugin *p = &c->plugins[c->nplugins++];
    memset(p, 0, sizeof *p);
    p->name = strdup(name);
    p->where = where_of(st);
    return p;
}

/* A line that opens a section: instances are registered here, so that an instance whose
 * section has no keys at all is still seen (inih reports only key = value lines). */
static void note_section(struct parse_state *st, const char *line, size_t len)
{
    while (len && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    if (!len || *line != '[')
        return;
    const char *end = memchr(line, ']', len);
    if (!end)
        return;
    char sec[256];
    size_t n = (size_t)(end - line - 1);
    if (n >= sizeof sec)
        return;
    memcpy(sec, line + 1, n);
    sec[n] = '\0';
    char name[128];
    if (quoted_section(sec, "plugin", name, sizeof name) == 1 && valid_instance_name(name)) {
        if (plugin_section(st, name, 0))
            add_error(st->errs, st->file, st->line,
                      "[plugin \"%s\"] is defined twice (first at %s)", name,
                      plugin_section(st, name, 0)->where);
        else
            plugin_section(st, name, 1);
    }
}

static int plugin_key(struct parse_state *st, const char *instance, const char *name,
                      const char *value)
{
    struct conf_plugin *p = plugin_section(st, instance, 1);
    if (!p)
        return 1;
    if (strcmp(name, "module") == 0) {
        free(p->module);
        p->module = strdup(value);
        return 1;
    }
    for (int i = 0; i < p->nkv; i++) {
        if (strcmp(p->kv[i].key, name) == 0) {
            add_error(st->errs, st->file, st->line, "key '%s' is set twice in [plugin \"%s\"]",
                      name, instance);
            return 1;
        }
    }
    struct conf_kv *nk = realloc(p->kv, sizeof *nk * (size_t)(p->nkv + 1));
    if (!nk)
        return 1;
    p->kv = nk;
    p->kv[p->nkv].key = strdup(name);
    p->kv[p->nkv].value = strdup(value);
    p->kv[p->nkv].where = where_of(st);
    p->nkv++;
    return 1;
}

static int flag_key(struct parse_state *st, const char *env, const char *name, const char *value)
{
    struct llmops_conf *c = st->conf;
    char cat[64];
    const char *dot = strchr(name, '.');
    const char *attr = dot ? dot + 1 : "";
    size_t cl = dot ? (size_t)(dot - name) : strlen(name);
    if (cl >= sizeof cat)
        cl = sizeof cat - 1;
    memcpy(cat, name, cl);
    cat[cl] = '\0';
    int category = category_from_string(cat);
    if (category < 0) {
        add_error(st->errs, st->file, st->line, "unknown category '%s' (known: %s)", cat,
                  category_list());
        return 1;
    }
    struct conf_flag *f = NULL;
    for (int i = 0; i < c->nflags; i++)
        if (strcmp(c->flags[i].env, env) == 0 && c->flags[i].category == category)
            f = &c->flags[i];
    if (!f) {
        struct conf_flag *nf = realloc(c->flags, sizeof *nf * (size_t)(c->nflags + 1));
        if (!nf)
            return 1;
        c->flags = nf;
        f = &c->flags[c->nflags++];
        memset(f, 0, sizeof *f);
        size_t el = strnlen(env, CONF_ENV_NAME_MAX); /* checked by valid_env_name */
        memcpy(f->env, env, el);
        f->env[el] = '\0';
        f->category = category;
        f->where = where_of(st);
    }
    char **slot = NULL;
    if (!*attr)
        slot = &f->active;
    else if (strcmp(attr, "fallback") == 0)
        slot = &f->fallback;
    else if (strcmp(attr, "candidate") == 0)
        slot = &f->candidate;
    else if (strcmp(attr, "rollout") == 0) {
        long long v;
        const char *why;
        if (util_parse_int(value, 0, 100, &v, &why) < 0)
            add_error(st->errs, st->file, st->line, "%s: '%s' %s (a percentage 0-100)", name, value,
                      why);
        else
            f->rollout = (int)v;
        return 1;
    } else {
        add_error(st->errs, st->file, st->line,
                  "unknown key '%s' (a category, or CATEGORY.fallback, .candidate, .rollout)",
                  name);
        return 1;
    }
    if (!valid_instance_name(value)) {
        add_error(st->errs, st->file, st->line, "%s: '%s' is not an instance name", name, value);
        return 1;
    }
    free(*slot);
    *slot = strdup(value);
    return 1;
}

/* An ini_reader that counts lines and refuses (rather than splits) an over-long line. */
static char *line_reader(char *str, int num, void *stream)
{
    struct parse_state *st = stream;
    const char *line;
    size_t len;
    if (st->fp) {
        ssize_t r = getline(&st->linebuf, &st->linecap, st->fp);
        if (r < 0)
            return NULL;
        line = st->linebuf;
        len = (size_t)r;
    } else {
        if (!st->text[st->pos])
            return NULL;
        line = st->text + st->pos;
        const char *nl = strchr(line, '\n');
        len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        st->pos += len;
    }
    st->line++;
    size_t content = len;
    while (content > 0 && (line[content - 1] == '\n' || line[content - 1] == '\r'))
        content--;
    if (memchr(line, '\0', content)) {
        add_error(st->errs, st->file, st->line, "line contains a NUL byte");
        str[0] = '\n';
        str[1] = '\0';
        return str;
    }
    note_section(st, line, content);
    if (content > (size_t)num - 2) {
        add_error(st->errs, st->file, st->line,
                  "line is %zu characters long; at most %d are allowed", content, num - 2);
        /* Hand inih an empty line so the rest of the file is still checked. */
        str[0] = '\n';
        str[1] = '\0';
        return str;
    }
    memcpy(str, line, content);
    str[content] = '\n';
    str[content + 1] = '\0';
    return str;
}

static int valid_env_name(const char *s)
{
    return valid_name(s, CONF_ENV_NAME_MAX, 0);
}

static int set_envs(struct parse_state *st, const char *value)
{
    struct llmops_conf *c = st->conf;
    char buf[256];
    if (util_fmt(buf, sizeof buf, "%s", value) < 0) {
        add_error(st->errs, st->file, st->line, "environments: list too long");
        return 0;
    }
    int n = 0, ok = 1;
    char names[CONF_MAX_ENVS][CONF_ENV_NAME_MAX + 1];
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
        if (!valid_env_name(tok)) {
            add_error(st->errs, st->file, st->line,
                      "environments: '%s' is not a valid name (lowercase letter, then up to 31 "
                      "of a-z 0-9 _ -)",
                      tok);
            ok = 0;
            continue;
        }
        if (n == CONF_MAX_ENVS) {
            add_error(st->errs, st->file, st->line, "environments: at most %d are allowed",
                      CONF_MAX_ENVS);
            ok = 0;
            break;
        }
        for (int i = 0; i < n; i++) {
            if (strcmp(names[i], tok) == 0) {
                add_error(st->errs, st->file, st->line, "environments: '%s' is listed twice", tok);
                ok = 0;
            }
        }
        strcpy(names[n++], tok);
    }
    if (n == 0 && ok) {
        add_error(st->errs, st->file, st->line, "environments: the list is empty");
        ok = 0;
    }
    if (ok) {
        memcpy(c->envs, names, sizeof names);
        c->n_envs = n;
    }
    return ok;
}

static int check_listen(const char *v)
{
    if (!*v)
        return 1;
    if (strncmp(v, "unix:", 5) == 0)
        return v[5] == '/';
    const char *colon = strrchr(v, ':');
    long long port;
    if (!colon || colon == v)
        return 0;
    return util_parse_int(colon + 1, 1, 65535, &port, NULL) == 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    struct llmops_conf *c = st->conf;
    if (!name) /* a section header alone (inih INI_CALL_HANDLER_ON_NEW_SECTION) */
        return 1;
    char qname[128];
    int q = quoted_section(section, "plugin", qname, sizeof qname);
    if (q != 0) {
        if (q < 0 || !valid_instance_name(qname)) {
            add_error(st->errs, st->file, st->line,
                      "[%s]: an instance name is 1-63 of a-z 0-9 _ -, in double quotes", section);
            return 1;
        }
        return plugin_key(st, qname, name, value);
    }
    q = quoted_section(section, "flags", qname, sizeof qname);
    if (q != 0) {
        if (q < 0 || !valid_env_name(qname)) {
            add_error(st->errs, st->file, st->line,
                      "[%s]: expected [flags \"ENV\"] with an environment name", section);
            return 1;
        }
        return flag_key(st, qname, name, value);
    }
    const struct key_def *def = NULL;
    int section_known = 0;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(keys); i++) {
        if (strcmp(keys[i].section, section) == 0) {
            section_known = 1;
            if (strcmp(keys[i].key, name) == 0) {
                def = &keys[i];
                break;
            }
        }
    }
    if (!section_known) {
        if (!*section)
            add_error(st->errs, st->file, st->line, "key '%s' is outside any section", name);
        else
            add_error(st->errs, st->file, st->line,
                      "unknown section [%s] (known: server, database, auth, gpu_types, breaker, "
                      "outbox, background, metrics, plugin \"NAME\", flags \"ENV\")",
                      section);
        return 1;
    }
    if (!def) {
        char known[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < UTIL_ARRAY_LEN(keys); i++) {
            if (strcmp(keys[i].section, section) != 0)
                continue;
            int w =
                snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", keys[i].key);
            if (w > 0 && (size_t)w < sizeof known - used)
                used += (size_t)w;
        }
        add_error(st->errs, st->file, st->line, "unknown key '%s' in [%s] (known: %s)", name,
                  section, known);
        return 1;
    }
    char *field = (char *)c + def->offset;
    switch (def->type) {
    case KT_STRING:
    case KT_URLPATH:
    case KT_NETS:
    case KT_LISTEN: {
        if (def->type == KT_LISTEN && !check_listen(value)) {
            add_error(st->errs, st->file, st->line, "%s: '%s' is neither unix:/PATH nor HOST:PORT",
                      name, value);
            return 1;
        }
        if (def->type == KT_URLPATH && (value[0] != '/' || strpbrk(value, "?# \t"))) {
            add_error(st->errs, st->file, st->line,
                      "%s: '%s' is not an absolute URL path such as /llm-ops/metrics", name, value);
            return 1;
        }
        char why[200];
        if (def->type == KT_NETS && util_cidr_match(value, NULL, why, sizeof why) < 0) {
            add_error(st->errs, st->file, st->line, "%s: %s", name, why);
            return 1;
        }
        char **sp = (char **)(void *)field;
        free(*sp);
        *sp = strdup(value);
        break;
    }
    case KT_INT: {
        long long v;
        const char *why;
        if (util_parse_int(value, def->min, def->max, &v, &why) < 0) {
            add_error(st->errs, st->file, st->line, "%s: '%s' %s (expected an integer %lld-%lld)",
                      name, value, why, def->min, def->max);
            return 1;
        }
        *(long long *)(void *)field = v;
        break;
    }
    case KT_OCTAL: {
        char *end = NULL;
        long long v = *value ? strtoll(value, &end, 8) : -1;
        if (!*value || *end || v < def->min || v > def->max) {
            add_error(st->errs, st->file, st->line,
                      "%s: '%s' is not an octal file mode such as 0660", name, value);
            return 1;
        }
        *(long long *)(void *)field = v;
        break;
    }
    case KT_BOOL: {
        int *ip = (int *)(void *)field;
        if (strcmp(value, "on") == 0 || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
            *ip = 1;
        else if (strcmp(value, "off") == 0 || strcmp(value, "false") == 0 ||
                 strcmp(value, "no") == 0)
            *ip = 0;
        else
            add_error(st->errs, st->file, st->line, "%s: '%s' is not on or off", name, value);
        break;
    }
    case KT_LOG_FORMAT:
        if (strcmp(value, "text") == 0 || strcmp(value, "json") == 0)
            *(int *)(void *)field = strcmp(value, "json") == 0;
        else
            add_error(st->errs, st->file, st->line, "%s: '%s' is not text or json", name, value);
        break;
    case KT_LOG_LEVEL:
        if (log_level_from_string(value, (enum log_level *)(void *)field) < 0)
            add_error(st->errs, st->file, st->line,
                      "%s: '%s' is not one of debug, info, warning, error", name, value);
        break;
    case KT_ENVS:
        set_envs(st, value);
        break;
    case KT_ENV_NAME:
        if (!valid_env_name(value)) {
            add_error(st->errs, st->file, st->line, "%s: '%s' is not a valid environment name",
                      name, value);
            return 1;
        }
        strcpy(field, value);
        st->default_env_line = st->line;
        st->default_env_file = st->file;
        break;
    }
    return 1;
}

static void set_defaults(struct llmops_conf *c)
{
    memset(c, 0, sizeof *c);
    const char *def_envs[] = {"dev", "stg", "prod"};
    for (int i = 0; i < 3; i++)
        strcpy(c->envs[i], def_envs[i]);
    c->n_envs = 3;
    c->workers = 2;
    c->listen_mode = 0660;
    c->shutdown_timeout = 10;
    c->max_body_bytes = 1048576;
    c->access_log = 1;
    c->access_log_flush_ms = 100;
    c->fastcgi_keep_max = 64;
    c->fastcgi_keep_timeout = 75;
    c->fastcgi_io_timeout_ms = 1000;
    c->log_level = LOG_LVL_INFO;
    c->plugin_dir = strdup(LLMOPS_DEFAULT_PLUGIN_DIR);
    c->db_conninfo = strdup("dbname=llmops");
    c->db_connect_timeout_ms = 1000;
    c->db_query_timeout_ms = 5000;
    c->migrations_dir = strdup(LLMOPS_DEFAULT_MIGRATIONS_DIR);
    c->token_cache_seconds = 60;
    c->seed_file = strdup(LLMOPS_DEFAULT_SEED_FILE);
    c->breaker_window_seconds = 60;
    c->breaker_min_calls = 20;
    c->breaker_error_percent = 50;
    c->breaker_open_seconds = 30;
    c->breaker_auto_close = 0;
    c->outbox_max_attempts = 12;
    c->outbox_base_delay_ms = 1000;
    c->outbox_max_delay_ms = 300000;
    c->outbox_keep_done_hours = 168;
    c->bg_prune_interval_seconds = 60;
    c->bg_prune_batch = 1000;
    c->bg_keep_watches_hours = 168;
    c->bg_keep_operations_hours = 168;
    c->bg_keep_alert_events_days = 90;
    c->bg_keep_deleted_deployments_days = 0;
    c->metrics_enabled = 1;
    c->metrics_path = strdup("/llm-ops/metrics");
    c->metrics_shm_file = strdup("/run/llm-ops/metrics");
    c->metrics_require_token = 0;
    c->metrics_allow = strdup("127.0.0.0/8 ::1/128");
    c->metrics_probe_interval = 30;
}

static void parse_one(struct parse_state *st)
{
    int first_errors = st->errs->n;
    int r = ini_parse_stream(line_reader, st, handler, st);
    if (r == -2)
        add_error(st->errs, st->file, 0, "out of memory");
    else if (r > 0) {
        /* inih reports the first line it could not parse (or whose handler failed). Only
         * add it if we have not said something about that line already. */
        char prefix[600];
        snprintf(prefix, sizeof prefix, "%s:%d: ", st->file, r);
        int said = 0;
        for (int i = first_errors; i < st->errs->n; i++)
            if (strncmp(st->errs->msgs[i], prefix, strlen(prefix)) == 0)
                said = 1;
        if (!said)
            add_error(st->errs, st->file, r,
                      "syntax error (expected [section], key = value, or a ; or # comment)");
    }
}

static void check_flag_instance(struct parse_state *st, const struct conf_flag *f, const char *role,
                                const char *inst)
{
    if (inst && !conf_plugin_find(st->conf, inst))
        conf_error(st->errs, f->where,
                   "[flags \"%s\"] %s%s%s names instance '%s', but there is "
                   "no [plugin \"%s\"] section",
                   f->env, category_name(f->category), *role ? "." : "", role, inst, inst);
}

static void finish(struct parse_state *st)
{
    struct llmops_conf *c = st->conf;
    for (int i = 0; i < c->nplugins; i++)
        if (!c->plugins[i].module)
            conf_error(st->errs, c->plugins[i].where,
                       "[plugin \"%s\"] has no module key (the module's file name without .so)",
                       c->plugins[i].name);
    for (int i = 0; i < c->nflags; i++) {
        const struct conf_flag *f = &c->flags[i];
        if (conf_env_index(c, f->env) < 0) {
            char list[600];
            conf_env_list(c, list, sizeof list);
            conf_error(st->errs, f->where,
                       "[flags \"%s\"]: '%s' is not one of the environments (%s)", f->env, f->env,
                       list);
        }
        if (!f->active)
            conf_error(st->errs, f->where, "[flags \"%s\"] sets no active instance for %s", f->env,
                       category_name(f->category));
        check_flag_instance(st, f, "", f->active);
        check_flag_instance(st, f, "fallback", f->fallback);
        check_flag_instance(st, f, "candidate", f->candidate);
        if (f->rollout > 0 && !f->candidate)
            conf_error(st->errs, f->where, "[flags \"%s\"] %s.rollout is set without a candidate",
                       f->env, category_name(f->category));
    }
    if (!c->default_env[0]) {
        strcpy(c->default_env, c->envs[0]);
    } else if (conf_env_index(c, c->default_env) < 0) {
        char list[600];
        conf_env_list(c, list, sizeof list);
        add_error(
            st->errs, st->default_env_file ? st->default_env_file : c->path, st->default_env_line,
            "default_environment: '%s' is not one of the environments (%s)", c->default_env, list);
    }
}

int conf_load_buffer(const char *name, const char *text, struct llmops_conf *conf,
                     struct conf_errors *errs)
{
    set_defaults(conf);
    conf->path = strdup(name);
    struct parse_state st = {.conf = conf, .errs = errs, .file = conf->path, .text = text};
    int before = errs->n;
    parse_one(&st);
    finish(&st);
    return errs->n - before;
}

int conf_load(const char *path, struct llmops_conf *conf, struct conf_errors *errs)
{
    set_defaults(conf);
    conf->path = strdup(path);
    int before = errs->n;
    struct parse_state st = {.conf = conf, .errs = errs};

    FILE *fp = fopen(path, "r");
    if (!fp) {
        add_error(errs, path, 0, "cannot open: %s", strerror(errno));
        return errs->n - before;
    }
    st.fp = fp;
    st.file = conf->path;
    parse_one(&st);
    fclose(fp);

    /* Drop-ins: the conf.d .conf files beside the main file, in sorted order. The file names must
     * outlive parsing (errors found in finish() point at them), so keep them until the end. */
    char *copy = strdup(path);
    char pattern[4096];
    glob_t g;
    memset(&g, 0, sizeof g);
    int have_glob = 0;
    if (copy && util_fmt(pattern, sizeof pattern, "%s/conf.d/*.conf", dirname(copy)) >= 0) {
        int gr = glob(pattern, 0, NULL, &g);
        have_glob = (gr == 0);
        for (size_t i = 0; have_glob && i < g.gl_pathc; i++) {
            FILE *df = fopen(g.gl_pathv[i], "r");
            if (!df) {
                add_error(errs, g.gl_pathv[i], 0, "cannot open: %s", strerror(errno));
                continue;
            }
            st.fp = df;
            st.file = g.gl_pathv[i];
            st.line = 0;
            parse_one(&st);
            fclose(df);
        }
    }
    finish(&st);
    free(st.linebuf);
    if (have_glob)
        globfree(&g);
    free(copy);
    return errs->n - before;
}

void conf_free(struct llmops_conf *c)
{
    free(c->path);
    free(c->listen);
    free(c->listen_group);
    free(c->pid_file);
    free(c->plugin_dir);
    free(c->db_conninfo);
    free(c->migrations_dir);
    free(c->seed_file);
    free(c->metrics_path);
    free(c->metrics_shm_file);
    free(c->metrics_allow);
    for (int i = 0; i < c->nplugins; i++) {
        struct conf_plugin *p = &c->plugins[i];
        for (int k = 0; k < p->nkv; k++) {
            free(p->kv[k].key);
            free(p->kv[k].value);
            free(p->kv[k].where);
        }
        free(p->kv);
        free(p->name);
        free(p->module);
        free(p->where);
    }
    free(c->plugins);
    for (int i = 0; i < c->nflags; i++) {
        free(c->flags[i].active);
        free(c->flags[i].fallback);
        free(c->flags[i].candidate);
        free(c->flags[i].where);
    }
    free(c->flags);
    memset(c, 0, sizeof *c);
}

void conf_errors_free(struct conf_errors *errs)
{
    for (int i = 0; i < errs->n; i++)
        free(errs->msgs[i]);
    free(errs->msgs);
    errs->msgs = NULL;
    errs->n = 0;
}

const struct conf_plugin *conf_plugin_find(const struct llmops_conf *conf, const char *name)
{
    for (int i = 0; i < conf->nplugins; i++)
        if (strcmp(conf->plugins[i].name, name) == 0)
            return &conf->plugins[i];
    return NULL;
}

const struct conf_flag *conf_flag_find(const struct llmops_conf *conf, const char *env,
                                       int category)
{
    for (int i = 0; i < conf->nflags; i++)
        if (conf->flags[i].category == category && strcmp(conf->flags[i].env, env) == 0)
            return &conf->flags[i];
    return NULL;
}

int conf_env_index(const struct llmops_conf *conf, const char *env)
{
    for (int i = 0; i < conf->n_envs; i++)
        if (strcmp(conf->envs[i], env) == 0)
            return i;
    return -1;
}

void conf_env_list(const struct llmops_conf *conf, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < conf->n_envs; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", conf->envs[i]);
        if (w < 0 || (size_t)w >= size - used)
            break;
        used += (size_t)w;
    }
}
