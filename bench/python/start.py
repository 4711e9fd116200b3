"""CPython side of the `start` benchmark: Process.start() + join() of an empty target.

Usage: python3 start.py [runs] [methods]   (defaults: 20, spawn,forkserver,fork)
Prints one JSON document: {"python": "3.11.7", "samples_ms": {"spawn": [...], ...}}.
Each start method is measured after one untimed warm-up start (for forkserver that
warm-up also starts the fork server, so its startup is excluded); the methods take turns.
"""
import json
import multiprocessing as mp
import sys
import time


def noop():
    pass


def once(method):
    p = mp.get_context(method).Process(target=noop)
    t0 = time.perf_counter()
    p.start()
    p.join()
    elapsed = (time.perf_counter() - t0) * 1000.0
    if p.exitcode != 0:
        raise RuntimeError(f"{method}: child exited with {p.exitcode}")
    return elapsed


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    methods = sys.argv[2].split(",") if len(sys.argv) > 2 else ["spawn", "forkserver", "fork"]
    for m in methods:
        once(m)  # warm-up
    # The methods take turns run by run, so a burst of other work on the machine spreads over all of them.
    samples = {m: [] for m in methods}
    for _ in range(runs):
        for m in methods:
            samples[m].append(once(m))
    json.dump({"python": sys.version.split()[0], "samples_ms": samples}, sys.stdout)


if __name__ == "__main__":
    main()
