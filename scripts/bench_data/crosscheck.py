"""Do the brain, py-polars and pandas give the same numbers? Reads one JSON answer file per
system and query (ANSWERS_DIR/{brain,polars,pandas}-NAME.json, each with "rows", and
brain-b-NAME.json when a second brain ran) and compares them as sets of rows
(order-insensitive; integers exactly, floats to 1e-9 relative).

  python crosscheck.py ANSWERS_DIR NAME...        exits 1 on the first difference
"""

import json
import math
import os
import sys


def normalise(rows):
    if not rows:
        return []
    names = sorted(rows[0])
    out = []
    for row in rows:
        if sorted(row) != names:
            raise SystemExit(f"inconsistent columns: {sorted(row)} vs {names}")
        out.append(tuple(row[name] for name in names))
    # Sort by the exact (non-float) columns first, then by floats rounded, so that float sums
    # differing in the last bits (another summation order) cannot reorder the rows.
    def key(row):
        exact = tuple((v is None, str(type(v)), v) for v in row if not isinstance(v, float))
        rounded = tuple(float(f"{v:.6g}") for v in row if isinstance(v, float))
        return exact + rounded

    return names, sorted(out, key=key)


def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def main():
    folder, names = sys.argv[1], sys.argv[2:]
    for name in names:
        answers = {}
        systems = ["brain", "polars", "pandas"]
        if os.path.exists(f"{folder}/brain-b-{name}.json"):
            systems.append("brain-b")
        for system in systems:
            with open(f"{folder}/{system}-{name}.json") as f:
                answers[system] = normalise(json.load(f)["rows"])
        (cols, ref) = answers["polars"]
        for system in (s for s in systems if s != "polars"):
            (their_cols, rows) = answers[system]
            if their_cols != cols:
                raise SystemExit(f"{name}: {system} columns {their_cols} != polars {cols}")
            if len(rows) != len(ref):
                raise SystemExit(f"{name}: {system} has {len(rows)} rows, polars {len(ref)}")
            for mine, theirs in zip(ref, rows):
                if not all(same(a, b) for a, b in zip(mine, theirs)):
                    raise SystemExit(f"{name}: {system} row {theirs} != polars {mine}")
        print(f"{name}: {', '.join(systems)} agree ({len(ref)} rows)")


main()
