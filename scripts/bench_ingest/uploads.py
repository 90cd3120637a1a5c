"""Hostile uploads against a running brain, with its RSS sampled (scripts/bench-ingest).

Usage: uploads.py BASE_URL BRAIN_PID WORK_DIR LIMIT_BYTES LARGE_MB

Generates each file into WORK_DIR, uploads it raw (POST /api/v1/datasets?name=…), and while
the request runs reads the brain's VmRSS every ~20 ms; VmHWM (reset before each upload through
/proc/PID/clear_refs when the kernel allows) gives the peak between samples. After each upload
it checks that the process lives and /health answers. Prints a markdown table on stdout and
exits 1 if the brain died or any peak exceeded LIMIT_BYTES × 1.1.
"""

import http.client
import json
import os
import random
import re
import sys
import threading
import time
import urllib.request
from urllib.parse import quote, urlsplit

BASE, PID, WORK, LIMIT, LARGE_MB = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
TARGET = LIMIT * 1.1
SAMPLE_SECONDS = 0.02
HEADERS = {"x-edgebrain-session": "bench-ingest"}
CHUNK = 1 << 20
MIB = 1024 * 1024


def estimator_constant(name):
    """PER_CELL_BYTES / PER_COLUMN_BYTES of the brain's estimate (brain/src/data/precheck.rs),
    so the near- and over-limit files keep their meaning when the estimate changes; overridable
    (BENCH_INGEST_PER_CELL_BYTES, …) for a binary built from other sources."""
    override = os.environ.get(f"BENCH_INGEST_{name}")
    if override:
        return int(override)
    source = os.path.join(os.path.dirname(__file__), "..", "..", "brain", "src", "data", "precheck.rs")
    match = re.search(rf"const {name}: u64 = ([0-9_ *]+);", open(source).read())
    if not match:
        sys.exit(f"error: {name} not found in {source}; set BENCH_INGEST_{name}")
    value = 1
    for factor in match.group(1).replace("_", "").split("*"):
        value *= int(factor)
    return value


PER_CELL_BYTES = estimator_constant("PER_CELL_BYTES")
PER_COLUMN_BYTES = estimator_constant("PER_COLUMN_BYTES")


def status_kib(field):
    """One `kB` field of /proc/PID/status, in bytes; None when the process is gone."""
    try:
        with open(f"/proc/{PID}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def alive():
    try:
        with open(f"/proc/{PID}/status") as status:
            for line in status:
                if line.startswith("State:"):
                    return line.split()[1] not in ("Z", "X")
    except FileNotFoundError:
        return False
    return False


def reset_hwm():
    """Resets VmHWM to the current RSS (Linux >= 4.0: `echo 5 > clear_refs`)."""
    try:
        with open(f"/proc/{PID}/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def health_ok():
    try:
        with urllib.request.urlopen(f"{BASE}/health", timeout=10) as response:
            return response.status == 200
    except Exception:
        return False


# --- the files ------------------------------------------------------------------------------

def write(name, parts):
    path = os.path.join(WORK, name)
    with open(path, "w") as out:
        for part in parts:
            out.write(part)
    return path


def deep_json(depth):
    # One record whose only field is `depth` nested arrays: [{"a":[[[…]]]}].
    yield '[{"a":'
    yield "[" * depth
    yield "]" * depth
    yield "}]\n"


def deep_ndjson(depth, lines):
    for _ in range(lines):
        yield '{"a":' + "[" * depth + "]" * depth + "}\n"


def wide_csv(columns):
    yield ",".join(f"c{i:06d}" for i in range(columns)) + "\n"
    yield ",".join("1" for _ in range(columns)) + "\n"


def big_cell_csv(cell_bytes):
    yield "id,text\n1,"
    block = "x" * CHUNK
    for _ in range(cell_bytes // CHUNK):
        yield block
    yield "x" * (cell_bytes % CHUNK)
    yield "\n"


def big_quoted_cell_csv(cell_bytes, line_bytes=1000):
    # The same cell quoted and broken into short lines: past the line limit, the cell limit.
    yield 'id,text\n1,"'
    line = "x" * (line_bytes - 1) + "\n"
    block = line * (CHUNK // line_bytes)
    for _ in range(cell_bytes // len(block)):
        yield block
    yield '"\n'


def many_keys_json(keys):
    yield "[{" + ",".join(f'"k{i}":1' for i in range(keys)) + "}]\n"


def shaped_csv(columns, rows, cell=""):
    # Empty cells: the cheapest file for the most cells (rows × columns), by the brain's estimate.
    yield ",".join(f"c{i}" for i in range(columns)) + "\n"
    row = ",".join(cell for _ in range(columns)) + "\n"
    batch = row * 1000
    for _ in range(rows // 1000):
        yield batch
    yield row * (rows % 1000)


def estimated_memory(rows, columns, size, json_text=False):
    # brain/src/data/precheck.rs, Shape::estimated_memory.
    return size * (4 if json_text else 2) + rows * columns * PER_CELL_BYTES + columns * PER_COLUMN_BYTES


def legit_csv(target_bytes):
    rng = random.Random(42)
    yield "transaction_id,ts,store_id,product_id,quantity,unit_price,discount,payment,region,promotion\n"
    written, i = 0, 0
    payments, regions = ["card", "cash", "mobile"], ["north", "south", "east", "west"]
    while written < target_bytes:
        lines = []
        for _ in range(10_000):
            i += 1
            lines.append(
                f"{i},2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                f"{rng.randint(0, 59):02d}:00,store_{rng.randint(1, 50):03d},p{rng.randint(1, 500):04d},"
                f"{rng.randint(1, 9)},{rng.randint(100, 99_999) / 100:.2f},{rng.choice(('0', '0.1', '0.25'))},"
                f"{rng.choice(payments)},{rng.choice(regions)},{rng.choice(('true', 'false'))}\n"
            )
        chunk = "".join(lines)
        written += len(chunk)
        yield chunk


def shaped_rows(columns, cell, fraction):
    # Rows of `cell` values such that the brain's estimate is `fraction` × the limit.
    per_row = columns * (len(cell) + 1) * 2 + columns * PER_CELL_BYTES  # row bytes × 2, cells
    return int((LIMIT * fraction - columns * PER_COLUMN_BYTES) / per_row) + 1


OVER_COLUMNS = 1000
OVER_ROWS = shaped_rows(OVER_COLUMNS, "", 1.25)
NEAR_ROWS = shaped_rows(OVER_COLUMNS, "", 0.9)
NEAR_NUMERIC_ROWS = shaped_rows(OVER_COLUMNS, "1", 0.9)

CASES = [
    # name, what, content type, file name, generator
    ("deep_json", "JSON nested 100,000 levels", "application/json", "deep.json", lambda: deep_json(100_000)),
    ("deep_ndjson", "NDJSON, 2 lines nested 50,000 levels", "application/x-ndjson", "deep.ndjson",
     lambda: deep_ndjson(50_000, 2)),
    ("nested_500", "1 KB JSON nested 500 levels", "application/json", "nested500.json", lambda: deep_json(500)),
    ("wide_csv", "CSV, 1,000,000 columns (header + 1 row)", "text/csv", "wide.csv", lambda: wide_csv(1_000_000)),
    ("big_cell", "CSV, one 50 MB cell", "text/csv", "bigcell.csv", lambda: big_cell_csv(50 * 1000 * 1000)),
    ("big_cell_quoted", "CSV, one 50 MB quoted cell of 1,000-byte lines", "text/csv", "bigcellq.csv",
     lambda: big_quoted_cell_csv(50 * 1000 * 1000)),
    ("many_keys", "JSON, 100,000 distinct keys", "application/json", "keys.json", lambda: many_keys_json(100_000)),
    ("over_memory", f"CSV, {OVER_COLUMNS:,} columns × {OVER_ROWS:,} rows of empty cells "
     f"(estimate 1.25 × limit)", "text/csv", "overmem.csv", lambda: shaped_csv(OVER_COLUMNS, OVER_ROWS)),
    ("legit_csv", f"legitimate CSV, {LARGE_MB} MB, 10 columns", "text/csv", "legit.csv",
     lambda: legit_csv(LARGE_MB * 1000 * 1000)),
    ("near_limit", f"CSV, {OVER_COLUMNS:,} columns × {NEAR_ROWS:,} rows of empty cells "
     f"(estimate 0.9 × limit: accepted)", "text/csv", "nearlimit.csv", lambda: shaped_csv(OVER_COLUMNS, NEAR_ROWS)),
    ("near_limit_numeric", f"CSV, {OVER_COLUMNS:,} columns × {NEAR_NUMERIC_ROWS:,} rows of `1` "
     f"(estimate 0.9 × limit: accepted)", "text/csv", "nearnumeric.csv",
     lambda: shaped_csv(OVER_COLUMNS, NEAR_NUMERIC_ROWS, "1")),
]


# --- one upload -----------------------------------------------------------------------------

class Sampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.samples, self.done = 0, 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            rss = status_kib("VmRSS")
            if rss is None:
                return
            self.peak, self.samples = max(self.peak, rss), self.samples + 1
            time.sleep(SAMPLE_SECONDS)


def upload(name, content_type, path):
    url = urlsplit(BASE)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=3600)
    size = os.path.getsize(path)
    headers = dict(HEADERS, **{"content-type": content_type, "content-length": str(size)})
    created = None
    try:
        connection.putrequest("POST", f"/api/v1/datasets?name={quote(name)}")
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders()
        try:
            with open(path, "rb") as body:
                while chunk := body.read(CHUNK):
                    connection.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered before the end of the body: read the answer below
        response = connection.getresponse()
        text = response.read()
        code, message = "", ""
        try:
            parsed = json.loads(text)
            if "error" in parsed:
                code, message = parsed["error"]["code"], parsed["error"]["message"]
            else:
                code = "created"
                message = f"{parsed['row_count']:,} rows × {len(parsed['columns']):,} columns"
                created = parsed["id"]
        except (ValueError, KeyError, TypeError):
            message = text[:200].decode("utf-8", "replace")
        return response.status, code, message, created
    except Exception as error:  # the brain died mid-request, a timeout…
        return 0, "no answer", f"{type(error).__name__}: {error}", created
    finally:
        connection.close()


def delete(dataset_id):
    """Deletes an accepted upload, so its loaded frame does not weigh on the next one."""
    request = urllib.request.Request(f"{BASE}/api/v1/datasets/{quote(dataset_id)}", method="DELETE", headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except Exception as error:
        return f"{type(error).__name__}: {error}"


def settle(seconds=30):
    """Waits (at most `seconds`) until RSS stops falling: jemalloc gives freed pages back to the
    OS over its decay time (10 s by default), so the next upload starts from a fair baseline."""
    start, last = time.monotonic(), status_kib("VmRSS")
    while time.monotonic() < start + seconds and last is not None:
        time.sleep(2)
        now = status_kib("VmRSS")
        if now is None or (last - now < MIB and time.monotonic() > start + 12):
            return now
        last = now
    return last


def mib(value):
    return "—" if value is None else f"{value / MIB:,.0f}"


def main():
    only = set(filter(None, os.environ.get("BENCH_INGEST_CASES", "").split()))
    hwm_resettable = True
    rows, failures, warnings, overall = [], [], [], 0
    for name, what, content_type, file_name, generate in CASES:
        if only and name not in only:
            continue
        print(f"==> {name}: generating {file_name}", file=sys.stderr, flush=True)
        path = write(file_name, generate())
        size = os.path.getsize(path)
        hwm_resettable = reset_hwm() and hwm_resettable
        before = status_kib("VmRSS")
        sampler = Sampler()
        sampler.start()
        started = time.monotonic()
        status, code, message, created = upload(name, content_type, path)
        seconds = time.monotonic() - started
        sampler.done.set()
        sampler.join()
        hwm = status_kib("VmHWM")
        after = status_kib("VmRSS")
        lives = alive()
        healthy = lives and health_ok()
        peak = max(sampler.peak, hwm or 0)
        overall = max(overall, peak)
        print(f"    {status} {code} {seconds:.1f} s, peak {mib(peak)} MiB ({sampler.samples} samples): "
              f"{message[:160]}", file=sys.stderr, flush=True)
        rows.append((name, what, size, status, code, seconds, before, sampler.peak, hwm, after, healthy, message))
        if name.startswith(("legit", "near_limit")) and status != 201:
            warnings.append(f"`{name}`, an upload the limit should admit, was answered {status} {code}")
        if name == "over_memory" and (said := re.search(r"about (\d+) bytes", message)):
            # The file's own shape by the formula above, against the brain's figure.
            expected = estimated_memory(OVER_ROWS, OVER_COLUMNS, size)
            if int(said.group(1)) != expected:
                warnings.append(f"the brain estimated {int(said.group(1)):,} bytes for `over_memory`, the "
                                f"script {expected:,} (PER_CELL_BYTES {PER_CELL_BYTES}): the binary was "
                                f"built from other sources; set BENCH_INGEST_PER_CELL_BYTES")
        if not lives:
            failures.append(f"{name}: the brain died")
        elif not healthy:
            failures.append(f"{name}: /health did not answer 200")
        if peak > TARGET:
            failures.append(f"{name}: peak RSS {mib(peak)} MiB > {mib(TARGET)} MiB (limit + 10%)")
        os.remove(path)
        if not lives:
            break
        if created is not None:
            deleted = delete(created)
            settled = settle()
            print(f"    deleted {created}: {deleted}; RSS {mib(settled)} MiB once settled",
                  file=sys.stderr, flush=True)

    print(f"Ingest memory limit {mib(LIMIT)} MiB; target peak RSS ≤ {mib(TARGET)} MiB; files shaped by the "
          f"estimate's PER_CELL_BYTES {PER_CELL_BYTES}, PER_COLUMN_BYTES {PER_COLUMN_BYTES}. RSS in MiB: before the "
          f"upload, highest VmRSS sampled every {SAMPLE_SECONDS * 1000:.0f} ms during it, VmHWM at its end "
          + ("(reset before each upload)" if hwm_resettable else "(NOT resettable here: the process's lifetime peak)")
          + ", after (before an accepted upload is deleted again).\n")
    print("| upload | size | status | code | time (s) | RSS before | sampled peak | VmHWM | after | /health |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for name, what, size, status, code, seconds, before, peak, hwm, after, healthy, _ in rows:
        size_text = f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.1f} KB"
        print(f"| `{name}`: {what} | {size_text} | {status or '—'} | {code} | {seconds:.2f} | {mib(before)} | "
              f"{mib(peak)} | {mib(hwm)} | {mib(after)} | {'ok' if healthy else '**down**'} |")
    print(f"\nOverall peak RSS: {mib(overall)} MiB "
          f"({'within' if overall <= TARGET else 'OVER'} the target {mib(TARGET)} MiB).\n")
    print("Messages:\n")
    for name, *_, message in rows:
        print(f"- `{name}`: {message[:300]}")
    for warning in warnings:
        print(f"\n**Warning:** {warning}.")
        print(f"WARNING {warning}", file=sys.stderr)
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
