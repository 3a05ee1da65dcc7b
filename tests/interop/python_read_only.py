# A python-diskcache directory for the read-only tests: statistics on and
# least-recently-used eviction (so that a get which counted or recorded
# anything would write), inline and file values, a queue, a pickle.
# With "crashed" the process ends without closing, leaving the write-ahead
# log of its last commits in place, as a killed process does.
import os
import sys
import diskcache

cache = diskcache.Cache(sys.argv[1], statistics=True, eviction_policy="least-recently-used")
cache.set("text", "héllo")
cache.set("int", 42)
cache.set("big-bytes", bytes(range(256)) * 200)      # a value file
cache.set("pickled", {"a": (1, 2)})
cache.set("gone", "soon", expire=-1)               # expired already
for item in ["first", "second"]:
    cache.push(item)
if sys.argv[2] == "crashed":
    # Commits after the last automatic checkpoint stay in cache.db-wal.
    cache._sql("PRAGMA wal_autocheckpoint = 0")
    cache.set("late", "in the log")
    sys.stdout.flush()
    os._exit(0)
cache.close()
