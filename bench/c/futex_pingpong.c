/*
 * The limits for the `sync` benchmark: two processes (fork) taking turns through futex words in shared memory, the
 * least any cross-process Event/Semaphore/Condition ping-pong can cost here.
 *
 * Usage:
 *   futex_pingpong blocking <round trips> <warm-up round trips>
 *       Each side sleeps in FUTEX_WAIT until the other flips the word and calls FUTEX_WAKE (always a kernel call).
 *   futex_pingpong spin <round trips> <warm-up round trips> [spins]
 *       Each side first spins (checking the word, with a pause) up to <spins> times (default 2000), then sleeps in
 *       FUTEX_WAIT; the waker calls FUTEX_WAKE only when the sleeper announced it sleeps.
 * Prints {"samples_us": [...]}: one figure per round trip (CLOCK_MONOTONIC), after the warm-up.
 *
 * Built by the bench harness: gcc -O2 -o bench/c/bin/futex_pingpong bench/c/futex_pingpong.c
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct turn {
    _Atomic int word;      /* 0: not yet, 1: your turn */
    _Atomic int sleeping;  /* the waiter is (about to be) in FUTEX_WAIT */
    char pad[56];
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void futex_wait(_Atomic int *word, int expected)
{
    syscall(SYS_futex, word, FUTEX_WAIT, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic int *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static long spins = 2000;
static int blocking;

/* Waits until it is our turn, then consumes it. */
static void await_turn(struct turn *t)
{
    if (!blocking) {
        for (long i = 0; i < spins; i++) {
            if (atomic_load_explicit(&t->word, memory_order_acquire)) {
                atomic_store_explicit(&t->word, 0, memory_order_relaxed);
                return;
            }
            __builtin_ia32_pause();
        }
    }
    while (1) {
        atomic_store(&t->sleeping, 1);
        if (atomic_load(&t->word))
            break;
        futex_wait(&t->word, 0);
        if (atomic_load(&t->word))
            break;
    }
    atomic_store(&t->sleeping, 0);
    atomic_store_explicit(&t->word, 0, memory_order_relaxed);
}

static void give_turn(struct turn *t)
{
    atomic_store(&t->word, 1);
    if (blocking || atomic_load(&t->sleeping))
        futex_wake(&t->word);
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "blocking") != 0 && strcmp(argv[1], "spin") != 0)) {
        fprintf(stderr, "usage: %s blocking|spin <round trips> <warm-up> [spins]\n", argv[0]);
        return 2;
    }
    blocking = strcmp(argv[1], "blocking") == 0;
    long rounds = atol(argv[2]), warmup = atol(argv[3]);
    if (argc > 4)
        spins = atol(argv[4]);
    struct turn *turns = mmap(NULL, 2 * sizeof(struct turn), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    double *samples = malloc(sizeof(double) * (size_t)rounds);
    if (turns == MAP_FAILED || !samples) {
        perror("mmap");
        return 2;
    }
    memset(turns, 0, 2 * sizeof(struct turn));
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        for (long i = 0; i < warmup + rounds; i++) {
            await_turn(&turns[0]);
            give_turn(&turns[1]);
        }
        _exit(0);
    }
    for (long i = 0; i < warmup + rounds; i++) {
        double t0 = now_us();
        give_turn(&turns[0]);
        await_turn(&turns[1]);
        if (i >= warmup)
            samples[i - warmup] = now_us() - t0;
    }
    waitpid(pid, NULL, 0);
    printf("{\"samples_us\": [");
    for (long i = 0; i < rounds; i++)
        printf(i ? ",%.3f" : "%.3f", samples[i]);
    printf("]}\n");
    return 0;
}
