"""Where the time goes: mean time per query stage from the brain's
`brain_query_stage_seconds` histogram, as the difference of two /metrics scrapes.

  python stages.py BEFORE AFTER KIND      prints "stage mean_ms" lines for that query kind
"""

import re
import sys

PATTERN = re.compile(
    r'^brain_query_stage_seconds_(sum|count)\{kind="([a-z]+)",stage="([a-z]+)"\} (\S+)$')


def read(path):
    values = {}
    with open(path) as f:
        for line in f:
            match = PATTERN.match(line.strip())
            if match:
                what, kind, stage, value = match.groups()
                values[(what, kind, stage)] = float(value)
    return values


before, after, kind = read(sys.argv[1]), read(sys.argv[2]), sys.argv[3]
order = ["approve", "lookup", "admit", "load", "plan", "execute", "serialise"]
for stage in order:
    count = after.get(("count", kind, stage), 0) - before.get(("count", kind, stage), 0)
    total = after.get(("sum", kind, stage), 0) - before.get(("sum", kind, stage), 0)
    if count > 0:
        print(f"{stage} {total / count * 1000:.3f}")
