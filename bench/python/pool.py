"""CPython side of the `pool` benchmark: multiprocessing.Pool(2) overheads and a CPU-bound speedup.

Usage: python3 pool.py [method]   (default: the platform's default start method)
Prints one JSON document with:
  create_ms      Pool(2) constructed and one trivial apply_async answered (the workers are really up), median of 5
  map_default_us map of 100,000 trivial tasks, default chunking: µs per task, median of 3
  map_chunk1_us  map of 20,000 trivial tasks, chunksize=1: µs per task, median of 3
  apply_us       apply_async(f).get() round trip, median of 2,000 (after 200 warm-up)
  cpu_serial_ms, cpu_pool_ms  8 CPU-bound tasks run serially in this process, then through map on Pool(2)
"""
import json
import multiprocessing as mp
import statistics
import sys
import time


def trivial(x):
    return x


def burn(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


BURN = 2_000_000
CPU_REPEATS = 3


def main():
    method = sys.argv[1] if len(sys.argv) > 1 else mp.get_start_method()
    ctx = mp.get_context(method)

    create = []
    for _ in range(5):
        t0 = time.perf_counter()
        pool = ctx.Pool(2)
        pool.apply_async(trivial, (1,)).get()
        create.append((time.perf_counter() - t0) * 1000)
        pool.terminate()
        pool.join()

    with ctx.Pool(2) as pool:
        pool.map(trivial, range(1000))
        default = []
        for _ in range(3):
            t0 = time.perf_counter()
            pool.map(trivial, range(100_000))
            default.append((time.perf_counter() - t0) * 1e6 / 100_000)
        chunk1 = []
        for _ in range(3):
            t0 = time.perf_counter()
            pool.map(trivial, range(20_000), chunksize=1)
            chunk1.append((time.perf_counter() - t0) * 1e6 / 20_000)
        for _ in range(200):
            pool.apply_async(trivial, (1,)).get()
        apply = []
        for _ in range(2000):
            t0 = time.perf_counter_ns()
            pool.apply_async(trivial, (1,)).get()
            apply.append((time.perf_counter_ns() - t0) / 1000)

        # Serial and pooled take turns, three times each: one shot of each is at the mercy of this shared VM.
        pool.map(burn, [1000] * 2)
        serials, parallels = [], []
        for _ in range(CPU_REPEATS):
            t0 = time.perf_counter()
            for _ in range(8):
                burn(BURN)
            serials.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            pool.map(burn, [BURN] * 8, chunksize=1)
            parallels.append((time.perf_counter() - t0) * 1000)
        serial = sorted(serials)[len(serials) // 2]
        parallel = sorted(parallels)[len(parallels) // 2]

    json.dump({
        "python": sys.version.split()[0],
        "method": method,
        "create_ms": create,
        "map_default_us": default,
        "map_chunk1_us": chunk1,
        "apply_us": apply,
        "cpu_serial_ms": serial,
        "cpu_pool_ms": parallel,
    }, sys.stdout)


if __name__ == "__main__":
    main()
