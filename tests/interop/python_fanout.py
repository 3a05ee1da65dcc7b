# python-diskcache's FanoutCache on directories diskq reads or wrote.
#   write DIR SHARDS: store the keys below (each value names its key) and
#                     print where each went as JSON [[repr, shard], ...].
#   read DIR SHARDS:  print JSON {repr: value-or-null} of those keys as
#                     python-diskcache finds them, then its len, then named
#                     collections diskq filled.
import json
import sys

from diskcache import FanoutCache

KEYS = [
    "hello", "héllo wörld", "", "a", b"\x00bin", b"", bytes([0xFF] * 10),
    16, 1, 7, -1, -42, 2**63 - 1, -(2**63), 4294967295, 4294967296,
    1.5, -1.5, 0.25, 1e300, 2.5,
]

mode, directory, shards = sys.argv[1], sys.argv[2], int(sys.argv[3])
cache = FanoutCache(directory, shards=shards)


def name(key):
    if isinstance(key, bytes):
        return "b:" + key.hex()
    return type(key).__name__ + ":" + repr(key)


if mode == "write":
    for key in KEYS:
        assert cache.set(key, name(key))
    cache.cache("named").set("inside", "named cache")
    cache.deque("jobs").extend(["j1", "j2"])
    cache.index("ix")["k"] = 7
    shards_of = [[name(k), cache._hash(k) % shards] for k in KEYS]
    print(json.dumps(shards_of))
elif mode == "read":
    found = {name(k): cache.get(k) for k in KEYS}
    report = {
        "found": found,
        "len": len(cache),
        "named": cache.cache("named").get("inside"),
        "jobs": list(cache.deque("jobs")),
        "ix": dict(cache.index("ix")),
    }
    print(json.dumps(report))
else:
    sys.exit("unknown mode " + mode)
