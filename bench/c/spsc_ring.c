/*
 * The limit for the `queue` benchmark: a single-producer single-consumer ring in shared memory between two
 * processes (fork), fixed-size slots, busy-waiting on both sides (no futex, no framing, no serialization): what the
 * hardware allows for moving messages through memory from one process to another.
 *
 * Usage:
 *   spsc_ring <windows> <messages per window> <message bytes>
 *       The parent produces, the forked child consumes (memcpy out of the slot into its own buffer). Per window the
 *       parent writes <messages per window> messages, then waits until the child has consumed all of them.
 *       Prints {"samples_msgs_per_s": [...]}: one figure per window (CLOCK_MONOTONIC), after one warm-up window.
 *
 * Built by the bench harness: gcc -O2 -o bench/c/bin/spsc_ring bench/c/spsc_ring.c
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct control {
    _Alignas(64) volatile uint64_t tail; /* written by the producer */
    _Alignas(64) volatile uint64_t head; /* written by the consumer */
    _Alignas(64) volatile uint64_t stop;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: spsc_ring <windows> <messages per window> <message bytes>\n");
        return 2;
    }
    int windows = atoi(argv[1]);
    uint64_t per_window = strtoull(argv[2], NULL, 10);
    size_t size = strtoull(argv[3], NULL, 10);
    size_t slot = (size + 63) & ~(size_t)63;
    uint64_t slots = 1;
    while (slots * slot < (8u << 20) || slots < 1024) /* a ring of at least 8 MiB and 1024 slots */
        slots <<= 1;
    if (slots * slot > (64u << 20) && slots > 8)
        slots = 8;

    struct control *c = mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *ring = mmap(NULL, slots * slot, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED || ring == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    memset(ring, 0, slots * slot);
    char *message = malloc(size);
    memset(message, 'x', size);

    pid_t child = fork();
    if (child == 0) {
        char *into = malloc(size);
        uint64_t head = 0;
        for (;;) {
            uint64_t tail;
            while ((tail = __atomic_load_n(&c->tail, __ATOMIC_ACQUIRE)) == head)
                if (c->stop)
                    _exit(0);
            while (head < tail) {
                memcpy(into, ring + (head & (slots - 1)) * slot, size);
                __asm__ volatile("" : : "r"(into) : "memory"); /* the copy is the work: do not let the compiler drop it */
                head++;
                if ((head & 63) == 0 || head == tail) /* publish progress every 64 messages and when caught up */
                    __atomic_store_n(&c->head, head, __ATOMIC_RELEASE);
            }
        }
    }

    uint64_t tail = 0, head_cached = 0;
    printf("{\"samples_msgs_per_s\": [");
    for (int w = -1; w < windows; w++) {
        double start = now_s();
        uint64_t end = tail + per_window;
        while (tail < end) {
            while (tail - head_cached == slots)
                head_cached = __atomic_load_n(&c->head, __ATOMIC_ACQUIRE);
            memcpy(ring + (tail & (slots - 1)) * slot, message, size);
            tail++;
            __atomic_store_n(&c->tail, tail, __ATOMIC_RELEASE);
        }
        while (__atomic_load_n(&c->head, __ATOMIC_ACQUIRE) != end)
            ;
        head_cached = end;
        double seconds = now_s() - start;
        if (w >= 0)
            printf("%s%.1f", w ? ", " : "", per_window / seconds);
    }
    printf("]}\n");
    c->stop = 1;
    waitpid(child, NULL, 0);
    return 0;
}
