# A python-diskcache FanoutCache for the diskq tool: `write` fills one with
# 4 shards, `read` checks what the tool wrote into it; prints a problem a
# line and exits 1 on any.
import sys
import diskcache

cache = diskcache.FanoutCache(sys.argv[1], shards=4)
problems = []
if sys.argv[2] == "write":
    for i in range(10):
        cache.set("text-%d" % i, "value %d" % i)
        cache.set(i, i * 10)
    cache.incr("hits", 5)
else:
    for i in range(10):
        got = cache.get("from-cli-%d" % i)
        if got != "cli %d" % i:
            problems.append("from-cli-%d: got %r" % (i, got))
    if cache.get("hits") != 8:
        problems.append("hits: got %r" % cache.get("hits"))
    if cache.get(3) is not None:
        problems.append("3 was not deleted")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
