/* fcgi-min: the baseline llm-opsd is measured against (bench/gpu-types.sh).
 *
 * The least a libfcgi responder can do: accept, answer a fixed ~700-byte JSON body held in
 * memory, finish. No parsing, no routing, no logging, no allocation per request. Pre-forks
 * N processes on one unix socket, as llm-opsd does in standalone mode.
 *
 *   fcgi-min SOCKET_PATH [PROCESSES]      (PROCESSES 1-64, default 2)
 *
 * Runs in the foreground. SIGTERM/SIGINT: the parent stops its children, removes the socket
 * and exits 0. The children are the parent's direct children (pgrep -P PARENT).
 */
#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROCS 64

/* Same shape and about the same size as GET /llm-ops/v1/gpu-types?env=dev (three GPU types,
 * the envelope of doc/api.md). */
static const char body[] =
    "{\"status\":\"success\",\"message\":\"3 GPU types in dev\",\"data\":{\"environment\":\"dev\","
    "\"gpu_types\":[{\"name\":\"nvidia-t4\",\"vendor\":\"nvidia\",\"model\":\"Tesla T4\","
    "\"memory_gib\":16,\"resource_name\":\"nvidia.com/gpu\",\"node_selector\":{\"key\":"
    "\"nvidia.com/gpu.product\",\"value\":\"Tesla-T4\"},\"capacity\":8}"
    ",{\"name\":\"nvidia-l4\",\"vendor\":\"nvidia\",\"model\":\"L4\","
    "\"memory_gib\":24,\"resource_name\":\"nvidia.com/gpu\",\"node_selector\":{\"key\":"
    "\"nvidia.com/gpu.product\",\"value\":\"NVIDIA-L4\"},\"capacity\":4}"
    ",{\"name\":\"nvidia-a100-1g-10gb\",\"vendor\":\"nvidia\",\"model\":"
    "\"A100 80GB MIG 1g.10gb\",\"memory_gib\":10,\"resource_name\":\"nvidia.com/mig-1g.10gb\","
    "\"node_selector\":{\"key\":\"nvidia.com/mig.config\",\"value\":\"all-1g.10gb\"},"
    "\"mig_profile\":\"1g.10gb\",\"capacity\":14}]}}";

static volatile sig_atomic_t stop;
static int listen_fd = -1;
static int devnull_fd = -1;

/* As in llm-opsd: swapping the listening descriptor for /dev/null makes a pending accept()
 * fail, so a child blocked in accept leaves at once. */
static void on_term(int sig)
{
    (void)sig;
    stop = 1;
    if (devnull_fd >= 0 && listen_fd >= 0)
        dup2(devnull_fd, listen_fd);
}

/* The whole response, FastCGI headers included, when a file gives it (the bench passes the
 * exact bytes llm-opsd answers, so only the work behind them differs). */
static char *response;
static int response_len;

static int child_loop(const char *head, int head_len)
{
    FCGX_Request req;
    if (FCGX_InitRequest(&req, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0)
        return 1;
    while (!stop && FCGX_Accept_r(&req) >= 0) {
        if (response) {
            FCGX_PutStr(response, response_len, req.out);
        } else {
            FCGX_PutStr(head, head_len, req.out);
            FCGX_PutStr(body, (int)(sizeof body - 1), req.out);
        }
        FCGX_Finish_r(&req);
    }
    FCGX_Free(&req, 0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4 || argv[1][0] == '-') {
        fprintf(stderr, "usage: %s SOCKET_PATH [PROCESSES [RESPONSE_FILE]]\n", argv[0]);
        return 2;
    }
    if (argc == 4) {
        FILE *f = fopen(argv[3], "rb");
        static char buf[65536];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f)
            fclose(f);
        if (n == 0 || n == sizeof buf) {
            fprintf(stderr, "%s: cannot read a response from %s\n", argv[0], argv[3]);
            return 2;
        }
        response = buf;
        response_len = (int)n;
    }
    const char *path = argv[1];
    int nprocs = 2;
    if (argc >= 3) {
        char *end;
        long v = strtol(argv[2], &end, 10);
        if (*end || v < 1 || v > MAX_PROCS) {
            fprintf(stderr, "%s: PROCESSES must be 1-%d\n", argv[0], MAX_PROCS);
            return 2;
        }
        nprocs = (int)v;
    }

    /* Formatted once, with snprintf; written with FCGX_PutStr (FCGX_FPrintF with %zu was seen
     * to send nothing). */
    char head[160];
    int head_len = snprintf(head, sizeof head,
                            "Status: 200 OK\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\n\r\n",
                            sizeof body - 1);
    if (head_len < 0 || (size_t)head_len >= sizeof head)
        return 1;

    if (FCGX_Init() != 0) {
        fprintf(stderr, "%s: FCGX_Init failed\n", argv[0]);
        return 1;
    }
    unlink(path);
    listen_fd = FCGX_OpenSocket(path, 1024);
    if (listen_fd < 0) {
        fprintf(stderr, "%s: cannot listen on %s: %s\n", argv[0], path, strerror(errno));
        return 1;
    }
    chmod(path, 0666);
    devnull_fd = open("/dev/null", O_RDWR);
    signal(SIGPIPE, SIG_IGN);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term; /* no SA_RESTART: accept() and wait() must return */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    pid_t kids[MAX_PROCS];
    int nkids = 0;
    for (int i = 0; i < nprocs; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "%s: fork: %s\n", argv[0], strerror(errno));
            break;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() == 1)
                _exit(0);
            _exit(child_loop(head, head_len));
        }
        kids[nkids++] = pid;
    }

    /* The parent only waits: it never accepts. */
    int alive = nkids;
    while (alive > 0) {
        if (stop) {
            for (int i = 0; i < nkids; i++)
                if (kids[i] > 0)
                    kill(kids[i], SIGTERM);
        }
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < nkids; i++)
            if (kids[i] == pid) {
                kids[i] = 0;
                alive--;
            }
    }
    unlink(path);
    return nkids == nprocs ? 0 : 1;
}
