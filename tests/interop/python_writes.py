# Writes every scalar kind python-diskcache stores natively, for diskq to read.
import sys
import diskcache

cache = diskcache.Cache(sys.argv[1])
cache.set("text", "héllo wörld")
cache.set("bytes", b"\x00\x01binary\xff")
cache.set("int", -1234567890123)
cache.set("float", 2.5)
cache.set(-42, "int key")  # outside the queue range 0 < key < 999999999999999
cache.set(-1.5, "float key")
cache.set(b"\x00bin", "bytes key")
cache.set("big-bytes", bytes(range(256)) * 200)      # 51,200 bytes: a value file, mode 2
cache.set("big-text", "ü" * 40000)                   # 80,000 UTF-8 bytes: a value file, mode 3
cache.set("expiring", "soon", expire=3600)
cache.set("tagged", 7, tag="group-a")
cache.set("pickled", {"a": (1, 2)})                  # a pickle: diskq must refuse it
for item in ["first", "second", "third"]:
    cache.push(item)
cache.push("zeroth", side="front")
cache.push(b"job-1", prefix="jobs")
cache.push(b"job-2", prefix="jobs")
print(len(cache))
