/* floor: the least work a plugin runner can do, the baseline picomon's
 * plugin throughput is measured against (BENCHMARKS.md).
 *
 *   floor PARALLELISM COUNT PROGRAM [ARG...]
 *
 * Runs PROGRAM with ARGs COUNT times on PARALLELISM threads (picomon's
 * config.workers), each thread taking the next run from a shared counter
 * and doing exactly what picomon's plugin runner must do and
 * nothing more: posix_spawn with stdin from /dev/null, stdout and stderr
 * each on its own pipe, a new process group, working directory "/", the
 * environment PATH=/usr/local/bin:/usr/bin:/bin LC_ALL=C; both pipes read
 * to EOF with poll(2); the child reaped with waitpid. No timeout, no
 * output kept, no parsing: whatever picomon does beyond this is its cost.
 *
 * One thread per worker, not one event loop: posix_spawn blocks its
 * caller until the child has exec'd, so a single thread would serialize
 * the spawns and make the floor slower than a pool.
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
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *child_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", NULL};
static char **cmd;
static long count;
static long next_run; /* taken with __atomic_fetch_add */
static long ok_runs;

static void die(const char *what, int err) {
    fprintf(stderr, "floor: %s: %s\n", what, strerror(err));
    exit(2);
}

/* One run: spawn, read both pipes to EOF, reap. Returns the wait status. */
static int run_once(void) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        die("pipe", errno);
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
    pid_t pid;
    int rc = posix_spawn(&pid, cmd[0], &fa, &at, cmd, child_env);
    if (rc != 0)
        die(cmd[0], rc);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]);
    close(err[1]);
    struct pollfd pfd[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    char buf[4096];
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll", errno);
        }
        for (int k = 0; k < 2; k++) {
            if (pfd[k].fd < 0 || !pfd[k].revents)
                continue;
            ssize_t got = read(pfd[k].fd, buf, sizeof buf);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                close(pfd[k].fd);
                pfd[k].fd = -1;
                open_fds--;
            }
        }
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid", errno);
    return status;
}

static void *worker(void *arg) {
    (void)arg;
    while (__atomic_fetch_add(&next_run, 1, __ATOMIC_RELAXED) < count) {
        int status = run_once();
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            __atomic_fetch_add(&ok_runs, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: floor PARALLELISM COUNT PROGRAM [ARG...]\n");
        return 2;
    }
    int par = atoi(argv[1]);
    count = atol(argv[2]);
    if (par < 1 || count < 0) {
        fprintf(stderr, "floor: PARALLELISM must be >= 1 and COUNT >= 0\n");
        return 2;
    }
    cmd = argv + 3;
    pthread_t *threads = calloc((size_t)par, sizeof *threads);
    if (!threads)
        die("calloc", errno);
    for (int i = 0; i < par; i++) {
        int rc = pthread_create(&threads[i], NULL, worker, NULL);
        if (rc != 0)
            die("pthread_create", rc);
    }
    for (int i = 0; i < par; i++)
        pthread_join(threads[i], NULL);
    printf("runs=%ld ok=%ld\n", count, ok_runs);
    return 0;
}
