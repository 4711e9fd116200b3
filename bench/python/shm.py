"""CPython side of the `shm` benchmark: Value increments by two processes, bulk Array copies, SharedMemory creation.

Usage: python3 shm.py <increments per process> <runs> <array bytes> <copy windows> <seconds per window>
Prints one JSON document:
  {"python": ..., "start_method": ...,
   "locked_ms": [...],     wall time of 2 processes each doing `with v.get_lock(): v.value += 1` n times (Value('i'))
   "raw_ms": [...],        the same, racing `v.value += 1` on a RawValue('i') (lost updates: "raw_lost")
   "raw_lost": [...],
   "copy_gbps": [...],     RawArray('d') bulk copy in and out through memoryviews (the fastest CPython way), per window
   "first_create_us": x,   the first SharedMemory(create=True) of this process (starts the resource tracker)
   "create_us": [...]}     later SharedMemory(create=True, size=4096) + close() + unlink(), per call
Each process times its own loop after a start signal (perf_counter, CLOCK_MONOTONIC on Linux, shared by all
processes); a run's wall time is the last end minus the first start, so process start-up and exit are excluded.
"""
import json
import multiprocessing as mp
import sys
import time
from multiprocessing import shared_memory


def locked_worker(v, n, go, times):
    go.wait()
    lock = v.get_lock()
    t0 = time.perf_counter()
    for _ in range(n):
        with lock:
            v.value += 1
    times.put((t0, time.perf_counter()))


def raw_worker(v, n, go, times):
    go.wait()
    t0 = time.perf_counter()
    for _ in range(n):
        v.value += 1
    times.put((t0, time.perf_counter()))


def two_processes(worker, value, n):
    go = mp.Event()
    times = mp.Queue()
    ps = [mp.Process(target=worker, args=(value, n, go, times)) for _ in range(2)]
    for p in ps:
        p.start()
    go.set()
    spans = [times.get() for _ in ps]
    for p in ps:
        p.join()
    return (max(e for _, e in spans) - min(s for s, _ in spans)) * 1000.0


def copy_bandwidth(nbytes, windows, seconds):
    import array
    n = nbytes // 8
    shared = mp.RawArray('d', n)
    source = array.array('d', range(n))
    back = array.array('d', bytes(nbytes))
    dst = memoryview(shared).cast('B')
    src = memoryview(source).cast('B')
    out = memoryview(back).cast('B')
    dst[:] = src  # touch every page first
    out[:] = dst
    samples = []
    for _ in range(windows):
        copied = 0
        t0 = time.perf_counter()
        while True:
            dst[:] = src
            out[:] = dst
            copied += 2 * nbytes
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
        samples.append(copied / elapsed / 1e9)
    return samples


def create_costs(count):
    t0 = time.perf_counter()
    first = shared_memory.SharedMemory(create=True, size=4096)
    first_us = (time.perf_counter() - t0) * 1e6
    first.close()
    first.unlink()
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        s = shared_memory.SharedMemory(create=True, size=4096)
        s.close()
        s.unlink()
        samples.append((time.perf_counter() - t0) * 1e6)
    return first_us, samples


def main():
    n = int(sys.argv[1])
    runs = int(sys.argv[2])
    nbytes = int(sys.argv[3])
    windows = int(sys.argv[4])
    seconds = float(sys.argv[5])
    first_create_us, create_us = create_costs(200)
    locked, raw, lost = [], [], []
    for _ in range(runs):
        v = mp.Value('i', 0)
        locked.append(two_processes(locked_worker, v, n))
        if v.value != 2 * n:
            raise RuntimeError(f"locked increments lost updates: {v.value}")
        r = mp.RawValue('i', 0)
        raw.append(two_processes(raw_worker, r, n))
        lost.append(2 * n - r.value)
    json.dump({
        "python": sys.version.split()[0],
        "start_method": mp.get_start_method(),
        "locked_ms": locked,
        "raw_ms": raw,
        "raw_lost": lost,
        "copy_gbps": copy_bandwidth(nbytes, windows, seconds),
        "first_create_us": first_create_us,
        "create_us": create_us,
    }, sys.stdout)


if __name__ == "__main__":
    main()
