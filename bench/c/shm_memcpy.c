/*
 * The floor for the `shm` benchmark's bulk copies: memcpy into and out of a shared mapping, as the C library does it.
 *
 * Usage: shm_memcpy <bytes> <windows> <seconds per window>
 *   A memfd of <bytes> is mapped MAP_SHARED (the same kind of memory as a SharedArray's); each iteration copies a
 *   private source buffer into it and copies it back out into a second private buffer (2 x <bytes> moved). Every page
 *   is touched before timing. Per window, iterations run until <seconds> have passed (CLOCK_MONOTONIC).
 *   Prints {"samples_gbps": [...]}: bytes moved / elapsed per window (GB = 10^9 bytes).
 *
 * Built by the bench harness: gcc -O2 -o bench/c/bin/shm_memcpy bench/c/shm_memcpy.c
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: shm_memcpy <bytes> <windows> <seconds per window>\n");
        return 2;
    }
    size_t n = strtoull(argv[1], NULL, 10);
    int windows = atoi(argv[2]);
    double seconds = atof(argv[3]);

    int fd = memfd_create("shm_memcpy", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)n) != 0) {
        perror("memfd");
        return 2;
    }
    char *shared = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *source = malloc(n);
    char *back = malloc(n);
    if (shared == MAP_FAILED || source == NULL || back == NULL) {
        perror("allocation");
        return 2;
    }
    for (size_t i = 0; i < n; i++)
        source[i] = (char)i;
    memcpy(shared, source, n);
    memcpy(back, shared, n);

    printf("{\"samples_gbps\": [");
    for (int w = 0; w < windows; w++) {
        double copied = 0, elapsed;
        double t0 = now_s();
        do {
            memcpy(shared, source, n);
            memcpy(back, shared, n);
            /* keep the copies from being optimized away */
            __asm__ __volatile__("" : : "r"(shared), "r"(back) : "memory");
            copied += 2.0 * (double)n;
            elapsed = now_s() - t0;
        } while (elapsed < seconds);
        printf("%s%.4f", w ? ", " : "", copied / elapsed / 1e9);
    }
    printf("]}\n");
    return 0;
}
