# python-diskcache's Deque and Index on directories diskq reads or wrote.
#   write DEQUE_DIR INDEX_DIR: fill a Deque and an Index for diskq to read.
#   read DEQUE_DIR INDEX_DIR: print what diskq wrote (JSON), then take from both.
import json
import sys

from diskcache import Deque, Index

mode, deque_dir, index_dir = sys.argv[1:4]

if mode == "write":
    d = Deque(directory=deque_dir)
    d.extend(["b", "c", "d"])
    d.appendleft("a")
    d.rotate(1)  # d a b c
    d.append("big-" + "y" * 40000)  # over min_file_size: a value file
    ix = Index(index_dir)
    ix["z"] = 1
    ix["y"] = 2
    ix["x"] = 3
    ix["y"] = 20  # keeps its place
    del ix["z"]
    ix["w"] = 4
    ix["big"] = 2**62
elif mode == "read":
    d = Deque(directory=deque_dir)
    ix = Index(index_dir)
    report = {
        "deque": [v if len(v) < 100 else "big:%d" % len(v) for v in d],
        "deque_reversed": list(reversed(d)),
        "deque_len": len(d),
        "index": [[k, v] for k, v in ix.items()],
        "index_keys_reversed": list(reversed(ix)),
        "deque_popleft": d.popleft(),
        "deque_pop": d.pop() if len(d) < 100 else None,
        "index_popitem": list(ix.popitem(last=True)),
        "index_popfirst": list(ix.popitem(last=False)),
        "deque_after": list(d),
        "index_after": [[k, v] for k, v in ix.items()],
    }
    print(json.dumps(report))
else:
    sys.exit("unknown mode " + mode)
