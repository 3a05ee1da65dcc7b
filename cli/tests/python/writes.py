# Fills a python-diskcache directory for the diskq command-line tests:
# one value of each kind, value files, a pickle, and two queues.
import sys
import diskcache

cache = diskcache.Cache(sys.argv[1])
cache.set("text", "héllo wörld")
cache.set("bytes", b"\x00\x01binary\xff")
cache.set("int", -1234567890123)
cache.set("float", 2.5)
cache.set(-7, "int key")  # outside the queue range (0, 10^15)
cache.set("big-bytes", bytes(range(256)) * 200)   # 51,200 bytes: a value file
cache.set("big-text", "ü" * 40000)                # a text value file
cache.set("pickled", (1, "two", 3.0))              # a pickle: never to be read
cache.set("tagged", 1, tag="group-a")
for item in ["first", "second"]:
    cache.push(item)
cache.push("zeroth", side="front")
cache.push(b"job-1", prefix="jobs")
cache.push(("a", "tuple"), prefix="pickles")
print(len(cache))
