# Increments one counter, concurrently with a diskq process doing the same.
import sys
import time
import diskcache

cache = diskcache.Cache(sys.argv[1], timeout=60)
while cache.get("go") is None:
    time.sleep(0.001)
for _ in range(int(sys.argv[2])):
    cache.incr("counter", retry=True)
