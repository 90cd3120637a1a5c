"""An S3-compatible server for the brain's tests: moto's server (PyPI `moto[server]`, installed
by scripts/setup-s3) on 127.0.0.1, on a port the OS picks.

Prints the port on one line once the socket listens (so the caller needs no polling), then
serves until its stdin closes: the test binary that started it holds the pipe, so the server
exits with it and never outlives a test run.
"""

import logging
import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    # One log line per request would drown the test output; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
