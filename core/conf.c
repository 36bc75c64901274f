#include "conf.h"

#include "build-config.h"
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

enum key_type { KT_STRING, KT_INT, KT_OCTAL, KT_BOOL, KT_ENVS, KT_ENV_NAME, KT_LOG_LEVEL, KT_LISTEN };

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
    {"server", "log_level", KT_LOG_LEVEL, OFF(log_level), 0, 0},
    {"server", "plugin_dir", KT_STRING, OFF(plugin_dir), 0, 0},
    {"database", "conninfo", KT_STRING, OFF(db_conninfo), 0, 0},
    {"database", "connect_timeout_ms", KT_INT, OFF(db_connect_timeout_ms), 100, 60000},
    {"database", "query_timeout_ms", KT_INT, OFF(db_query_timeout_ms), 100, 600000},
    {"database", "migrations_dir", KT_STRING, OFF(migrations_dir), 0, 0},
    {"auth", "token_cache_seconds", KT_INT, OFF(token_cache_seconds), 0, 3600},
    {"gpu_types", "seed_file", KT_STRING, OFF(seed_file), 0, 0},
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

static void add_error(struct conf_errors *errs, const char *file, int line, const char *fmt, ...)
{
    char msg[512], full[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(full, sizeof full, "%s:%d: %s", file, line, msg);
    else
        snprintf(full, sizeof full, "%s: %s", file, msg);
    char **nm = realloc(errs->msgs, sizeof(char *) * (size_t)(errs->n + 1));
    if (!nm)
        return;
    errs->msgs = nm;
    errs->msgs[errs->n] = strdup(full);
    if (errs->msgs[errs->n])
        errs->n++;
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
    size_t n = strlen(s);
    if (n == 0 || n > CONF_ENV_NAME_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
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
                      "unknown section [%s] (known: server, database, auth, gpu_types)", section);
        return 1;
    }
    if (!def) {
        char known[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < UTIL_ARRAY_LEN(keys); i++) {
            if (strcmp(keys[i].section, section) != 0)
                continue;
            int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "",
                             keys[i].key);
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
    case KT_LISTEN: {
        if (def->type == KT_LISTEN && !check_listen(value)) {
            add_error(st->errs, st->file, st->line,
                      "%s: '%s' is neither unix:/PATH nor HOST:PORT", name, value);
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
    c->log_level = LOG_LVL_INFO;
    c->plugin_dir = strdup(LLMOPS_DEFAULT_PLUGIN_DIR);
    c->db_conninfo = strdup("dbname=llmops");
    c->db_connect_timeout_ms = 1000;
    c->db_query_timeout_ms = 5000;
    c->migrations_dir = strdup(LLMOPS_DEFAULT_MIGRATIONS_DIR);
    c->token_cache_seconds = 60;
    c->seed_file = strdup(LLMOPS_DEFAULT_SEED_FILE);
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

static void finish(struct parse_state *st)
{
    struct llmops_conf *c = st->conf;
    if (!c->default_env[0]) {
        strcpy(c->default_env, c->envs[0]);
    } else if (conf_env_index(c, c->default_env) < 0) {
        char list[600];
        conf_env_list(c, list, sizeof list);
        add_error(st->errs, st->default_env_file ? st->default_env_file : c->path,
                  st->default_env_line,
                  "default_environment: '%s' is not one of the environments (%s)",
                  c->default_env, list);
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
