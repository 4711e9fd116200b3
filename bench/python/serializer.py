"""CPython side of the `serializer` benchmark: pickle round trip of 1,000 small records.

The records match the C# side's `record Item(int Id, string Name, double Price, bool Active)` value for value:
Item(i, f"item-{i}", i * 1.25 + 0.5, i % 3 != 0) for i in range(1000).

Variants: a @dataclass (the idiomatic Python record, attributes in a __dict__), a class with __slots__,
and plain tuples (an anchor: no type information at all, the cheapest thing pickle can do).
Protocol: pickle.DEFAULT_PROTOCOL (4), the one multiprocessing's ForkingPickler uses.

Usage: python3 serializer.py [samples] [batch]   (defaults: 200, 5)
Prints one JSON document: {"python": ..., "protocol": 4, "variants": {name: {"bytes": n,
"roundtrip_us": [...], "dumps_us": [...], "loads_us": [...]}}}, microseconds per call, one value per batch.
"""
import json
import pickle
import sys
import time
from dataclasses import dataclass

COUNT = 1000


@dataclass
class Item:
    id: int
    name: str
    price: float
    active: bool


class SlotItem:
    __slots__ = ("id", "name", "price", "active")

    def __init__(self, id, name, price, active):
        self.id = id
        self.name = name
        self.price = price
        self.active = active


def values():
    return [(i, f"item-{i}", i * 1.25 + 0.5, i % 3 != 0) for i in range(COUNT)]


def measure(variants, samples, batch, warmup=20):
    """Times every (variant, operation) pair; the pairs take turns sample by sample, so a burst of other work on the
    machine spreads over all of them instead of skewing one."""
    proto = pickle.DEFAULT_PROTOCOL
    timed = []  # (variant, key, fn)
    result = {}
    for name, obj in variants.items():
        data = pickle.dumps(obj, proto)
        back = pickle.loads(data)
        assert len(back) == COUNT and type(back[0]) is type(obj[0])
        result[name] = {"bytes": len(data), "roundtrip_us": [], "dumps_us": [], "loads_us": []}
        timed += [
            (name, "roundtrip_us", lambda obj=obj: pickle.loads(pickle.dumps(obj, proto))),
            (name, "dumps_us", lambda obj=obj: pickle.dumps(obj, proto)),
            (name, "loads_us", lambda data=data: pickle.loads(data)),
        ]
    for _, _, fn in timed:
        for _ in range(warmup):
            fn()
    clock = time.perf_counter_ns
    for _ in range(samples):
        for name, key, fn in timed:
            t0 = clock()
            for _ in range(batch):
                fn()
            result[name][key].append((clock() - t0) / batch / 1000.0)
    return result


def main():
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rows = values()
    variants = {
        "dataclass": [Item(*v) for v in rows],
        "slots": [SlotItem(*v) for v in rows],
        "tuple": rows,
    }
    result = measure(variants, samples, batch)
    json.dump({"python": sys.version.split()[0], "protocol": pickle.DEFAULT_PROTOCOL, "variants": result}, sys.stdout)


if __name__ == "__main__":
    main()
