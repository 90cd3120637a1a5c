"""Serves a GGUF model over llama.cpp's OpenAI-compatible HTTP API on 127.0.0.1 (xllamacpp).

Usage: llm-server.py --model FILE --port N [--ctx 4096] [--threads 1] [--chat-template FILE]
       [--alias NAME] [--temperature T] [--seed N]

--temperature/--seed set the defaults for requests that do not choose their own (tests use 0
for repeatable tool calls).

Runs until SIGTERM/SIGINT, or until the process that started it exits (tests and scripts/run
start it; it must never outlive them, even after a kill -9 of its parent).
Endpoints: /health, /v1/chat/completions (SSE streaming, usage, tools, response_format),
/tokenize, /v1/models.
"""

import argparse
import os
import signal
import sys
import time

import xllamacpp


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--chat-template", default=None)
    parser.add_argument("--alias", default=None)
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = ["127.0.0.1"] if isinstance(params.hostnames, list) else "127.0.0.1"
    params.port = args.port
    params.n_ctx = args.ctx * args.parallel
    params.n_parallel = args.parallel
    # One thread: two threads on two busy cores collapse throughput (offline-setup notes).
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.use_jinja = True
    params.offline = True
    params.ui = False
    params.warmup = False
    if args.temperature is not None:
        params.sampling.temp = args.temperature
    if args.seed is not None:
        params.sampling.seed = args.seed
    if args.alias:
        params.model_alias = args.alias if isinstance(params.model_alias, str) else [args.alias]
    if args.chat_template:
        with open(args.chat_template, encoding="utf-8") as template:
            params.chat_template = template.read()

    server = xllamacpp.Server(params)  # serves on its own threads until the object is dropped
    print(f"llm-server listening on 127.0.0.1:{args.port}", flush=True)

    stop = False

    def request_stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    parent = os.getppid()
    while not stop and os.getppid() == parent:
        time.sleep(0.5)  # parent-death watch; no readiness waiting involved
    del server
    # The server's native threads may hold the interpreter open; leave at once.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
