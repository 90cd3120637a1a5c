"""py-polars in-process, driven line by line from scripts/bench-data (a coprocess):

  in:  "answer NAME"            out: {"rows": [...]}                      (for the cross-check)
  in:  "load NAME CONC SECONDS" out: {"p50_ms", "p99_ms", "rps", "n"}     (CONC threads, closed loop)

Each timed call is what the brain does for a query minus HTTP and rendering: the SQL through
`pl.SQLContext` (parse, plan, optimise, execute) over frames already in memory.
"""

import json
import sys
import threading
import time

import polars as pl

from queries import load_frames, sql_of

frames = load_frames(json.loads(sys.argv[1]), "polars")
context = pl.SQLContext(frames=frames)


def run(name):
    return context.execute(sql_of(name)).collect()


def load(name, concurrency, seconds):
    latencies = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker():
        mine = []
        while True:
            started = time.perf_counter()
            if started >= deadline:
                break
            run(name)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    begun = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begun
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "rps": len(latencies) / elapsed,
            "n": len(latencies)}


for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == "answer":
        reply = {"rows": run(words[1]).to_dicts()}
    elif words[0] == "load":
        reply = load(words[1], int(words[2]), float(words[3]))
    else:
        reply = {"error": f"unknown command {words[0]}"}
    print(json.dumps(reply), flush=True)
