"""Opens a queue the tool made (argv[1]) and a cache whose culls it counted
(argv[2]), and prints what python-diskcache makes of their Settings rows."""

import sys

import diskcache

queue = diskcache.Deque(directory=sys.argv[1])
print(queue._cache.eviction_policy)
queue.append('from python')
print(len(queue))

cache = diskcache.Cache(sys.argv[2])
print(cache.eviction_policy, cache.diskq_culled)
