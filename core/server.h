/* The process model: a FastCGI worker loop, and a master that pre-forks workers. */
#ifndef LLMOPS_SERVER_H
#define LLMOPS_SERVER_H

struct server_opts {
    const char *config_path;
    const char *listen;   /* overrides [server] listen */
    long long workers;    /* > 0 overrides [server] workers */
    const char *pid_file; /* overrides [server] pid_file */
    int foreground;
};

/* Runs until told to stop. Returns the process exit code. */
int server_run(const struct server_opts *opts);

#endif
