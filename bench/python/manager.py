"""CPython side of the `manager` benchmark: proxy calls per second and manager start time.

Usage: python3 manager.py [calls]   (default 20000)
Prints one JSON document: start_ms (Manager() until the first proxy answers, median of 5) and calls per second
for list append, dict set and dict get through proxies, one caller (median of 3 runs of `calls` calls each).
"""
import json
import multiprocessing as mp
import statistics
import sys
import time


def rate(n, call):
    t0 = time.perf_counter()
    for i in range(n):
        call(i)
    return n / (time.perf_counter() - t0)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    ctx = mp.get_context("spawn")
    starts = []
    for _ in range(5):
        t0 = time.perf_counter()
        m = ctx.Manager()
        m.list().append(1)
        starts.append((time.perf_counter() - t0) * 1000)
        m.shutdown()

    with ctx.Manager() as m:
        lst = m.list()
        d = m.dict()
        for i in range(1000):
            lst.append(i)
            d[i] = i
        append = [rate(n, lst.append) for _ in range(3)]
        dset = [rate(n, lambda i: d.__setitem__(i, i)) for _ in range(3)]
        dget = [rate(n, lambda i: d.get(i % 1000)) for _ in range(3)]

    json.dump({"python": sys.version.split()[0], "start_ms": starts, "append": append, "set": dset, "get": dget}, sys.stdout)


if __name__ == "__main__":
    main()
