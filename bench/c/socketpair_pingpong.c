/*
 * The floor for the `pipe` benchmark: a raw AF_UNIX SOCK_STREAM socketpair between two processes (fork), no framing,
 * no serialization, blocking read/write, as the kernel allows it.
 *
 * Usage:
 *   socketpair_pingpong pingpong <round trips> <warm-up round trips> <bytes> [cpu]
 *       The parent writes <bytes>, the child reads them and writes them back, the parent reads them.
 *       Prints {"samples_us": [...]}: one figure per round trip (CLOCK_MONOTONIC), after the warm-up.
 *       With <cpu> (>= 0), both sides are pinned to that CPU; otherwise the scheduler places them.
 *   socketpair_pingpong pingpong-threads <round trips> <warm-up round trips> <bytes> [cpu]
 *       The same between two threads of one process (the echo runs on a second thread instead of a forked child).
 *   socketpair_pingpong bandwidth <windows> <seconds per window> <message bytes>
 *       One way: per window the parent writes an 8-byte count n, then n messages of <message bytes>; the child reads
 *       them all into one reused buffer and writes back one byte. n is calibrated from a warm-up window to last about
 *       <seconds per window>. Prints {"samples_gbps": [...]}: bytes / (ack received - window start) per window.
 *
 * Built by the bench harness: gcc -O2 -o bench/c/bin/socketpair_pingpong bench/c/socketpair_pingpong.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* 1: all read; 0: end of stream before the first byte. */
static int read_all(int fd, void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, (char *)buf + done, n - done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("read");
        }
        if (r == 0) {
            if (done == 0)
                return 0;
            fprintf(stderr, "end of stream inside a message\n");
            exit(2);
        }
        done += (size_t)r;
    }
    return 1;
}

static void write_all(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, (const char *)buf + done, n - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write");
        }
        done += (size_t)w;
    }
}

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        die("sched_setaffinity");
}

struct echo_args {
    int fd;
    char *buf;
    size_t size;
    int cpu;
};

static void *echo(void *p)
{
    struct echo_args *a = p;
    pin(a->cpu);
    while (read_all(a->fd, a->buf, a->size))
        write_all(a->fd, a->buf, a->size);
    return NULL;
}

static int pingpong(long rounds, long warmup, size_t size, int threads, int cpu)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair");
    char *buf = malloc(size);
    double *samples = malloc(sizeof(double) * (size_t)rounds);
    if (!buf || !samples)
        die("malloc");
    memset(buf, 'x', size);

    pid_t pid = 0;
    pthread_t thread;
    struct echo_args args = { sv[1], malloc(size), size, cpu };
    pin(cpu);
    if (threads) {
        if (!args.buf || pthread_create(&thread, NULL, echo, &args) != 0)
            die("pthread_create");
    } else {
        pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            close(sv[0]);
            echo(&args);
            _exit(0);
        }
        close(sv[1]);
    }
    for (long i = 0; i < warmup; i++) {
        write_all(sv[0], buf, size);
        read_all(sv[0], buf, size);
    }
    for (long i = 0; i < rounds; i++) {
        double t0 = now_us();
        write_all(sv[0], buf, size);
        read_all(sv[0], buf, size);
        samples[i] = now_us() - t0;
    }
    if (threads) {
        shutdown(sv[0], SHUT_WR);
        pthread_join(thread, NULL);
    } else {
        close(sv[0]);
        waitpid(pid, NULL, 0);
    }

    printf("{\"samples_us\": [");
    for (long i = 0; i < rounds; i++)
        printf(i ? ",%.3f" : "%.3f", samples[i]);
    printf("]}\n");
    return 0;
}

/* Sends one window of n messages and waits for the child's acknowledgement; returns the seconds it took. */
static double window(int fd, const char *buf, size_t size, uint64_t n)
{
    char ack;
    double t0 = now_us();
    write_all(fd, &n, sizeof n);
    for (uint64_t i = 0; i < n; i++)
        write_all(fd, buf, size);
    if (!read_all(fd, &ack, 1)) {
        fprintf(stderr, "no acknowledgement\n");
        exit(2);
    }
    return (now_us() - t0) / 1e6;
}

static int bandwidth(long windows, double seconds, size_t size)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair");
    char *buf = malloc(size);
    double *samples = malloc(sizeof(double) * (size_t)windows);
    if (!buf || !samples)
        die("malloc");
    memset(buf, 'x', size);

    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(sv[0]);
        uint64_t n;
        while (read_all(sv[1], &n, sizeof n)) {
            for (uint64_t i = 0; i < n; i++)
                read_all(sv[1], buf, size);
            write_all(sv[1], "k", 1);
        }
        _exit(0);
    }
    close(sv[1]);
    /* Warm-up and calibration: how many messages fill a window. */
    uint64_t probe = 64;
    double took = window(sv[0], buf, size, probe);
    uint64_t n = (uint64_t)(probe * seconds / (took > 0 ? took : 1e-6));
    if (n < 8)
        n = 8;
    for (long i = 0; i < windows; i++)
        samples[i] = (double)(n * size) / window(sv[0], buf, size, n) / 1e9;
    close(sv[0]);
    waitpid(pid, NULL, 0);

    printf("{\"messages_per_window\": %llu, \"samples_gbps\": [", (unsigned long long)n);
    for (long i = 0; i < windows; i++)
        printf(i ? ",%.4f" : "%.4f", samples[i]);
    printf("]}\n");
    return 0;
}

int main(int argc, char **argv)
{
    if ((argc == 5 || argc == 6) && strncmp(argv[1], "pingpong", 8) == 0 && (argv[1][8] == 0 || strcmp(argv[1] + 8, "-threads") == 0))
        return pingpong(atol(argv[2]), atol(argv[3]), (size_t)atol(argv[4]), argv[1][8] != 0, argc == 6 ? atoi(argv[5]) : -1);
    if (argc == 5 && strcmp(argv[1], "bandwidth") == 0)
        return bandwidth(atol(argv[2]), atof(argv[3]), (size_t)atol(argv[4]));
    fprintf(stderr, "usage: %s pingpong|pingpong-threads <round trips> <warm-up> <bytes> [cpu] | bandwidth <windows> <seconds per window> <message bytes>\n", argv[0]);
    return 2;
}
