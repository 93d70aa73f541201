/* floor: the least work a plugin runner can do, the baseline picomon's
 * plugin throughput is measured against (BENCHMARKS.md, SPEC section 11).
 *
 *   floor PARALLELISM COUNT PROGRAM [ARG...]
 *
 * Runs PROGRAM with ARGs COUNT times, at most PARALLELISM at once, doing
 * for each run exactly what the SPEC asks of picomon's plugin runner and
 * nothing more: posix_spawn with stdin from /dev/null, stdout and stderr
 * each on its own pipe, a new process group, working directory "/", the
 * environment PATH=/usr/local/bin:/usr/bin:/bin LC_ALL=C; both pipes read
 * to EOF; the child reaped with waitpid. One thread multiplexes all running
 * children with poll(2), so no thread cost is hidden in the baseline.
 *
 * It prints one line: "runs=N ok=M" (M = runs that exited 0), so the
 * driver can check the work was really done.
 *
 * Copyright the picomon authors. GPL-3.0-or-later.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
    pid_t pid;
    int fd[2];      /* stdout, stderr read ends; -1 once at EOF */
};

static char *child_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", NULL};

static void die(const char *what) {
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* Starts one run; returns 0 or dies. */
static void start(struct run *r, char **argv) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        die("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addchdir_np(&fa, "/");
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    int rc = posix_spawn(&r->pid, argv[0], &fa, &at, argv, child_env);
    if (rc != 0) {
        errno = rc;
        die(argv[0]);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]);
    close(err[1]);
    r->fd[0] = out[0];
    r->fd[1] = err[0];
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: floor PARALLELISM COUNT PROGRAM [ARG...]\n");
        return 2;
    }
    int par = atoi(argv[1]);
    long count = atol(argv[2]);
    if (par < 1 || count < 0) {
        fprintf(stderr, "floor: PARALLELISM must be >= 1 and COUNT >= 0\n");
        return 2;
    }
    char **cmd = argv + 3;
    struct run *runs = calloc((size_t)par, sizeof *runs);
    struct pollfd *pfd = calloc((size_t)par * 2, sizeof *pfd);
    if (!runs || !pfd)
        die("calloc");
    long started = 0, done = 0, ok = 0;
    int active = 0;
    char buf[65536];
    while (done < count) {
        while (active < par && started < count) {
            start(&runs[active++], cmd);
            started++;
        }
        nfds_t n = 0;
        for (int i = 0; i < active; i++)
            for (int k = 0; k < 2; k++) {
                pfd[n].fd = runs[i].fd[k];
                pfd[n].events = POLLIN;
                pfd[n].revents = 0;
                n++;
            }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        for (nfds_t j = 0; j < n; j++) {
            if (pfd[j].fd < 0 || !(pfd[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            struct run *r = &runs[j / 2];
            int k = (int)(j % 2);
            ssize_t got = read(r->fd[k], buf, sizeof buf);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                close(r->fd[k]);
                r->fd[k] = -1;
            }
        }
        /* Reap the runs whose pipes are both at EOF; compact the table. */
        for (int i = 0; i < active;) {
            if (runs[i].fd[0] >= 0 || runs[i].fd[1] >= 0) {
                i++;
                continue;
            }
            int status;
            while (waitpid(runs[i].pid, &status, 0) < 0)
                if (errno != EINTR)
                    die("waitpid");
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                ok++;
            done++;
            runs[i] = runs[--active];
        }
    }
    printf("runs=%ld ok=%ld\n", done, ok);
    return 0;
}
