"""An S3-compatible server for the brain's tests: moto's server (PyPI `moto[server]`, installed
by scripts/setup-s3) on 127.0.0.1, on a port the OS picks.

Prints the port on one line once the socket listens (so the caller needs no polling), then
serves until its stdin closes: the test binary that started it holds the pipe, so the server
exits with it and never outlives a test run.

`--iam`: a server that enforces AWS credentials and IAM policies (moto's IAM simulation), for
the tests of a store the brain may not use. Before turning enforcement on it creates, over its
own S3 and IAM APIs, one user `edgebrain-brain` with an access key and three buckets:
`edgebrain-open` (the user may do anything in it), `edgebrain-read-only` (it may only list and
read) and `edgebrain-locked` (no permission at all). It then prints one JSON line instead of the
port: `{"port": ..., "access_key_id": ..., "secret_access_key": ..., "buckets": {...}}`.
"""

import json
import logging
import sys

from moto import settings
from moto.server import ThreadedMotoServer

USER = "edgebrain-brain"
BUCKETS = {
    "open": "edgebrain-open",
    "read_only": "edgebrain-read-only",
    "locked": "edgebrain-locked",
}


def bucket_arns(bucket: str) -> list[str]:
    return [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


def with_iam(endpoint: str) -> dict:
    # boto3 comes with moto; setup runs while enforcement is still off (moto's default).
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="setup", aws_secret_access_key="setup", region_name="us-east-1"
    )
    s3 = session.client("s3", endpoint_url=endpoint)
    iam = session.client("iam", endpoint_url=endpoint)
    for bucket in BUCKETS.values():
        s3.create_bucket(Bucket=bucket)
    iam.create_user(UserName=USER)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": bucket_arns(BUCKETS["open"])},
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": bucket_arns(BUCKETS["read_only"]),
            },
        ],
    }
    iam.put_user_policy(UserName=USER, PolicyName="edgebrain", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=USER)["AccessKey"]

    # From here on every request must be signed by a known key and allowed by its policy.
    # The server runs in this process, so its settings are these.
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    refused = s3.list_objects_v2  # signed with the unknown "setup" key
    try:
        refused(Bucket=BUCKETS["open"])
    except s3.exceptions.ClientError:
        pass
    else:
        raise SystemExit("moto did not turn IAM enforcement on: the tests would prove nothing")
    return {
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
        "buckets": BUCKETS,
    }


def main() -> None:
    # One log line per request would drown the test output; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    if "--iam" in sys.argv[1:]:
        ready = {"port": port, **with_iam(f"http://127.0.0.1:{port}")}
        print(json.dumps(ready), flush=True)
    else:
        print(port, flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
