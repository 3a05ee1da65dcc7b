# Reads what diskq wrote and prints a JSON report; exits 1 on a mismatch.
import json
import sys
import diskcache

cache = diskcache.Cache(sys.argv[1])
expected = {
    "text": "héllo wörld",
    "bytes": b"\x00\x01binary\xff",
    "int": -1234567890123,
    "float": 2.5,
    -42: "int key",
    -1.5: "float key",
    b"\x00bin": "bytes key",
    "big-bytes": bytes(range(256)) * 200,
    "big-text": "ü" * 40000,
    "expiring": "soon",
    "tagged": 7,
}
problems = []
for key, want in expected.items():
    got = cache.get(key, default="<missing>")
    if got != want or type(got) is not type(want):
        problems.append("key %r: got %r" % (key, got if len(repr(got)) < 80 else repr(got)[:80]))
value, expire_time = cache.get("expiring", expire_time=True)
if expire_time is None:
    problems.append("expiring has no expire_time")
value, tag = cache.get("tagged", tag=True)
if tag != "group-a":
    problems.append("tag of 'tagged' is %r" % (tag,))
warnings = [str(w.message) for w in cache.check()]
queue = []
while True:
    key, value = cache.pull()
    if key is None:
        break
    queue.append([key, value])
jobs = []
while True:
    key, value = cache.pull(prefix="jobs")
    if key is None:
        break
    jobs.append([key, value])
report = {"problems": problems, "warnings": warnings, "queue": queue, "jobs": jobs, "len": len(cache)}
print(json.dumps(report))
sys.exit(1 if problems or warnings else 0)
