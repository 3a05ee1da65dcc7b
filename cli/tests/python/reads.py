# Reads what the diskq tool wrote into a python-diskcache directory; prints
# a problem a line and exits 1 on any.
import sys
import diskcache

cache = diskcache.Cache(sys.argv[1])
problems = []
def expect(key, want):
    got = cache.get(key, default="<missing>")
    if got != want or type(got) is not type(want):
        problems.append("key %r: got %r" % (key, repr(got)[:80]))
expect("from-cli", "written by diskq")
expect("stdin", bytes(range(256)) * 4)
expect(41, "int key from diskq")
key, value = cache.pull(prefix="cli")
if value != b"pushed bytes":
    problems.append("pulled %r, %r" % (key, value))
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
