"""Medians of scripts/bench-data's interleaved rounds, as the Markdown tables of BENCHMARKS.md,
with the issue's targets checked per query.

  python summarise.py RESULTS_TSV      (columns: round conc query system p50_ms p99_ms rps)
"""

import collections
import statistics
import sys

rows = collections.defaultdict(list)
with open(sys.argv[1]) as f:
    for line in f:
        r, conc, query, system, p50, p99, rps = line.split()
        rows[(int(conc), query, system)].append((float(p50), float(p99), float(rps)))


def median(conc, query, system, index):
    values = [sample[index] for sample in rows.get((conc, query, system), [])]
    return statistics.median(values) if values else float("nan")


queries = list(dict.fromkeys(q for (_, q, _) in rows))
rounds = max(len(v) for v in rows.values())
print(f"Medians of {rounds} interleaved rounds.\n")
for conc in (1, 16):
    print(f"| query, {conc} concurrent | brain HTTP p50 ms | py-polars p50 ms | FastAPI+pandas p50 ms "
          f"| brain p99 ms | pandas p99 ms | brain req/s | py-polars req/s | pandas req/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for q in queries:
        b, p, d = (median(conc, q, s, 0) for s in ("brain", "polars", "pandas"))
        b99, d99 = median(conc, q, "brain", 1), median(conc, q, "pandas", 1)
        br, pr, dr = (median(conc, q, s, 2) for s in ("brain", "polars", "pandas"))
        print(f"| {q} | {b:.2f} | {p:.2f} | {d:.2f} | {b99:.2f} | {d99:.2f} | {br:.1f} | {pr:.1f} | {dr:.1f} |")
    print()

print("| query | p50 ≤ 1.3 × py-polars + 1 ms (c=1) | ≥ 5 × faster than pandas (c=1) "
      "| ≥ 10 × pandas throughput (c=16) | brain c=16 ≥ 1.5 × c=1 throughput |")
print("|---|---|---|---|---|")
verdict = lambda ok: "met" if ok else "**not met**"
for q in queries:
    b1, p1, d1 = (median(1, q, s, 0) for s in ("brain", "polars", "pandas"))
    bound = 1.3 * p1 + 1
    speedup = d1 / b1
    tput = median(16, q, "brain", 2) / median(16, q, "pandas", 2)
    scale = median(16, q, "brain", 2) / median(1, q, "brain", 2)
    print(f"| {q} | {b1:.2f} vs {bound:.2f} ms: {verdict(b1 <= bound)} | {speedup:.1f}×: {verdict(speedup >= 5)} "
          f"| {tput:.1f}×: {verdict(tput >= 10)} | {scale:.2f}×: {verdict(scale >= 1.5)} |")

if any(system == "brain-b" for (_, _, system) in rows):
    print()
    print("Second brain (brain-b: BENCH_BRAIN_B_ARGS / BENCH_BRAIN_B_BIN) against the first, same rounds:\n")
    print("| query | c | brain p50 ms | brain-b p50 ms | b ÷ a p50 | brain req/s | brain-b req/s | b ÷ a req/s |")
    print("|---|---|---|---|---|---|---|---|")
    for conc in (1, 16):
        for q in queries:
            a, b = median(conc, q, "brain", 0), median(conc, q, "brain-b", 0)
            ar, br = median(conc, q, "brain", 2), median(conc, q, "brain-b", 2)
            print(f"| {q} | {conc} | {a:.2f} | {b:.2f} | {b / a:.2f} | {ar:.1f} | {br:.1f} | {br / ar:.2f} |")
