"""CPython side of the `sync` benchmark: multiprocessing's Lock, Event, Semaphore and Condition (spawn context).

Workloads:
  uncontended  lock.acquire(); lock.release() in one process, timed in batches (ns per pair)
  create       ctx.Lock(), each timed (µs; the lock is dropped after each)
  contended    this process and a child each run <n> acquire/release pairs on one Lock at the same time; the figure
               is wall time / (2 n), in µs per acquisition (both started by an Event; ended when both are done)
  event        ping-pong round trip through two Events: set(ping); pong.wait(); pong.clear() / the child the mirror
  semaphore    ping-pong round trip through two Semaphore(0): ping.release(); pong.acquire() / the mirror
  condition    ping-pong round trip through one Condition: with cond held, notify(); wait() on both sides in turn

Usage: python3 sync.py [round trips] [warm-up round trips] [contended pairs]   (defaults: 20000 2000 200000)
Prints one JSON document: {"python": ..., "uncontended_ns": [...], "create_us": [...], "contended_us": [...], "samples_us": {"event": [...],
"semaphore": [...], "condition": [...]}}.
"""
import json
import multiprocessing as mp
import sys
import time

clock = time.perf_counter_ns


def uncontended(ctx, batches=20, batch=100000):
    lock = ctx.Lock()
    acquire, release = lock.acquire, lock.release
    for _ in range(batch):
        acquire()
        release()
    samples = []
    for _ in range(batches):
        t0 = clock()
        for _ in range(batch):
            acquire()
            release()
        samples.append((clock() - t0) / batch)
    return samples


def create(ctx, count=2000):
    samples = []
    for _ in range(count):
        t0 = clock()
        lock = ctx.Lock()
        samples.append((clock() - t0) / 1000)
        del lock
    return samples


def contend(lock, go, done, n):
    go.wait()
    acquire, release = lock.acquire, lock.release
    for _ in range(n):
        acquire()
        release()
    done.set()


def contended(ctx, n, samples=5):
    result = []
    for _ in range(samples + 1):
        lock, go, done = ctx.Lock(), ctx.Event(), ctx.Event()
        # (CPython drops a Process's args once started: each primitive must stay referenced here until the child has it.)
        p = ctx.Process(target=contend, args=(lock, go, done, n))
        p.start()
        time.sleep(0.3)  # the child's interpreter starts and waits on go (its start is not what is measured)
        t0 = clock()
        go.set()
        acquire, release = lock.acquire, lock.release
        for _ in range(n):
            acquire()
            release()
        done.wait()
        result.append((clock() - t0) / 1000 / (2 * n))
    return result[1:]


def event_echo(ping, pong, rounds):
    for _ in range(rounds):
        ping.wait()
        ping.clear()
        pong.set()


def semaphore_echo(ping, pong, rounds):
    for _ in range(rounds):
        ping.acquire()
        pong.release()


def condition_echo(cond, ready, rounds):
    with cond:
        ready.set()
        for _ in range(rounds):
            cond.wait()
            cond.notify()


def ping_pong(ctx, kind, rounds, warmup):
    total = rounds + warmup
    samples = [0.0] * rounds
    if kind == "event":
        ping, pong = ctx.Event(), ctx.Event()
        p = ctx.Process(target=event_echo, args=(ping, pong, total))
        p.start()
        for i in range(total):
            t0 = clock()
            ping.set()
            pong.wait()
            pong.clear()
            if i >= warmup:
                samples[i - warmup] = (clock() - t0) / 1000
    elif kind == "semaphore":
        ping, pong = ctx.Semaphore(0), ctx.Semaphore(0)
        p = ctx.Process(target=semaphore_echo, args=(ping, pong, total))
        p.start()
        for i in range(total):
            t0 = clock()
            ping.release()
            pong.acquire()
            if i >= warmup:
                samples[i - warmup] = (clock() - t0) / 1000
    else:
        cond, ready = ctx.Condition(), ctx.Event()
        p = ctx.Process(target=condition_echo, args=(cond, ready, total))
        p.start()
        ready.wait()
        with cond:
            for i in range(total):
                t0 = clock()
                cond.notify()
                cond.wait()
                if i >= warmup:
                    samples[i - warmup] = (clock() - t0) / 1000
            cond.notify()
    p.join()
    return samples


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    warmup = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 200000
    ctx = mp.get_context("spawn")
    out = {
        "python": sys.version.split()[0],
        "start_method": ctx.get_start_method(),
        "uncontended_ns": uncontended(ctx),
        "create_us": create(ctx),
        "contended_us": contended(ctx, pairs),
        "samples_us": {kind: ping_pong(ctx, kind, rounds, warmup) for kind in ("event", "semaphore", "condition")},
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
