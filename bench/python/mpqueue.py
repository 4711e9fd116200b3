"""CPython side of the `queue` benchmark: multiprocessing.Queue between processes.

Workloads (each with its own Queue and its own spawned children):
  ints      1 producer process -> this process: <ints> small ints, q.put(i) / q.get()
  kib       1 producer process -> this process: <kib> messages of 1 KiB (bytes)
  mib       1 producer process -> this process: <mib> messages of 1 MiB (bytes)
  four      4 producer processes -> 4 consumer processes: <ints> small ints in all
Each producer waits on an Event, so process start-up is not timed; the clock runs from setting the Event until the
last item was received (for `four`: until every consumer reported its count).

Usage: python3 mpqueue.py [ints] [kib] [mib] [repeats]   (defaults: 200000 100000 500 3)
Prints one JSON document: {"python": ..., "start_method": ..., "samples_msgs_per_s": {"ints": [...], "kib": [...],
"mib": [...], "four": [...]}}: one figure per repeat.
"""
import json
import multiprocessing as mp
import sys
import time


def produce(q, go, n, payload):
    go.wait()
    if payload is None:
        for i in range(n):
            q.put(i)
    else:
        for _ in range(n):
            q.put(payload)


def consume(q, done):
    count = 0
    while True:
        item = q.get()
        if item is None:
            break
        count += 1
    done.put(count)


def one_to_one(ctx, n, size):
    q = ctx.Queue()
    go = ctx.Event()
    payload = None if size == 0 else b"x" * size
    p = ctx.Process(target=produce, args=(q, go, n, payload))
    p.start()
    time.sleep(0.2 if size < (1 << 20) else 0.3)  # let the child finish starting
    start = time.perf_counter()
    go.set()
    for _ in range(n):
        q.get()
    seconds = time.perf_counter() - start
    p.join()
    return n / seconds


def four_by_four(ctx, n):
    q = ctx.Queue()
    go = ctx.Event()
    done = ctx.Queue()
    producers = [ctx.Process(target=produce, args=(q, go, n // 4, None)) for _ in range(4)]
    consumers = [ctx.Process(target=consume, args=(q, done)) for _ in range(4)]
    for p in producers + consumers:
        p.start()
    time.sleep(0.5)
    start = time.perf_counter()
    go.set()
    for p in producers:
        p.join()
    for _ in consumers:
        q.put(None)
    total = sum(done.get() for _ in consumers)
    seconds = time.perf_counter() - start
    for p in consumers:
        p.join()
    assert total == n // 4 * 4, total
    return total / seconds


def main():
    ints = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    kib = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    mib = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    ctx = mp.get_context()
    samples = {"ints": [], "kib": [], "mib": [], "four": []}
    for _ in range(repeats):
        samples["ints"].append(one_to_one(ctx, ints, 0))
        samples["kib"].append(one_to_one(ctx, kib, 1024))
        samples["mib"].append(one_to_one(ctx, mib, 1 << 20))
        samples["four"].append(four_by_four(ctx, ints))
    print(json.dumps({"python": sys.version.split()[0], "start_method": ctx.get_start_method(), "samples_msgs_per_s": samples}))


if __name__ == "__main__":
    main()
