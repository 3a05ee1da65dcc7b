# A python-diskcache directory for the tool's read-only commands: statistics
# on and least-recently-used eviction, so that a get which counted a hit or
# recorded an access would write; inline and file values, a queue.
import sys
import diskcache

cache = diskcache.Cache(sys.argv[1], statistics=True, eviction_policy="least-recently-used")
cache.set("text", "héllo")
cache.set("int", 42)
cache.set("big-bytes", bytes(range(256)) * 200)   # a value file
for item in ["first", "second"]:
    cache.push(item)
cache.close()
