"""CPython side of the `pipe` benchmark: multiprocessing.Pipe() between this process and a child.

Workloads (each with its own spawned child and its own duplex Pipe):
  tuple     round trip of (42, "hello", 3.5): conn.send(obj) + conn.recv(); the child echoes conn.send(conn.recv())
  dataclass the same with a @dataclass Small(i, s, d): the twin of the C# record
  bytes     round trip of 64 bytes: send_bytes + recv_bytes; the child echoes send_bytes(recv_bytes())
  bandwidth one way, 1 MiB messages: send_bytes from here, recv_bytes in the child; per window the sender sends for
            about <window seconds>, then a 1-byte marker; the child answers the marker, which ends the window
The three round-trip workloads run twice: with the scheduler placing both processes ("free"), and with both pinned
to one CPU ("pinned", os.sched_setaffinity in each; the CPU is the lowest this process may use).

Usage: python3 pipe.py [round trips] [warm-up round trips] [windows] [window seconds]   (defaults: 20000 2000 8 0.25)
Prints one JSON document: {"python": ..., "start_method": ..., "cpu": n, "samples_us": {"tuple": [...],
"dataclass": [...], "bytes": [...], "tuple_pinned": [...], ...}, "samples_gbps": [...], "messages": n}: one figure per
round trip (perf_counter_ns), one per window.
"""
import os
import json
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass

MESSAGE = 1 << 20


@dataclass
class Small:
    i: int
    s: str
    d: float


def pin(cpu):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def echo_objects(conn, cpu=None):
    pin(cpu)
    while True:
        obj = conn.recv()
        if obj is None:
            return
        conn.send(obj)


def echo_bytes(conn, cpu=None):
    pin(cpu)
    while True:
        data = conn.recv_bytes()
        if not data:
            return
        conn.send_bytes(data)


def sink(conn, cpu=None):
    while True:
        data = conn.recv_bytes()
        if not data:
            return
        if len(data) == 1:
            conn.send_bytes(b"k")


def with_child(ctx, target, work, cpu=None):
    parent, child = ctx.Pipe()
    p = ctx.Process(target=target, args=(child, cpu))
    p.start()
    child.close()
    mask = os.sched_getaffinity(0)
    try:
        pin(cpu)
        return work(parent)
    finally:
        os.sched_setaffinity(0, mask)
        parent.close()
        p.join(10)
        if p.exitcode != 0:
            raise RuntimeError(f"{target.__name__}: child exited with {p.exitcode}")


def round_trips(send, recv, value, rounds, warmup):
    for _ in range(warmup):
        send(value)
        recv()
    samples = [0.0] * rounds
    clock = time.perf_counter_ns
    for n in range(rounds):
        t0 = clock()
        send(value)
        recv()
        samples[n] = (clock() - t0) / 1000.0
    return samples


def objects(value, rounds, warmup):
    def work(conn):
        samples = round_trips(conn.send, conn.recv, value, rounds, warmup)
        conn.send(value)
        if conn.recv() != value:
            raise RuntimeError("the echo changed the value")
        conn.send(None)
        return samples
    return work


def bytes_round_trips(rounds, warmup):
    def work(conn):
        payload = bytes(range(64))
        samples = round_trips(conn.send_bytes, conn.recv_bytes, payload, rounds, warmup)
        conn.send_bytes(b"")
        return samples
    return work


def bandwidth(windows, seconds):
    def work(conn):
        payload = b"x" * MESSAGE
        clock = time.perf_counter

        def window(duration):
            sent = 0
            t0 = clock()
            end = t0 + duration
            while True:
                conn.send_bytes(payload)
                sent += 1
                if clock() >= end:
                    break
            conn.send_bytes(b"m")
            conn.recv_bytes()
            return sent * MESSAGE / (clock() - t0) / 1e9, sent

        window(seconds / 2)  # warm-up
        results = [window(seconds) for _ in range(windows)]
        conn.send_bytes(b"")
        return [gbps for gbps, _ in results], sum(n for _, n in results)
    return work


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    warmup = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    windows = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 0.25
    # spawn: a fresh interpreter in the child, like ours (a fresh runtime); the steady-state loops do not depend on it.
    ctx = mp.get_context("spawn")
    cpu = min(os.sched_getaffinity(0))
    samples = {}
    for suffix, where in (("", None), ("_pinned", cpu)):
        samples["tuple" + suffix] = with_child(ctx, echo_objects, objects((42, "hello", 3.5), rounds, warmup), where)
        samples["dataclass" + suffix] = with_child(ctx, echo_objects, objects(Small(42, "hello", 3.5), rounds, warmup), where)
        samples["bytes" + suffix] = with_child(ctx, echo_bytes, bytes_round_trips(rounds, warmup), where)
    gbps, messages = with_child(ctx, sink, bandwidth(windows, seconds))
    json.dump({"python": sys.version.split()[0], "start_method": ctx.get_start_method(), "cpu": cpu,
               "samples_us": samples, "samples_gbps": gbps, "messages": messages}, sys.stdout)


if __name__ == "__main__":
    main()
