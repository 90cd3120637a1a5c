//! The S3-compatible server of the object-store tests: moto (`scripts/s3-server.py`; PyPI
//! `moto[server]`, pinned and installed by `scripts/setup-s3` into `$EDGEBRAIN_CACHE/s3/venv`),
//! started once per test binary, lazily, on a port the OS picks on 127.0.0.1, and shared by
//! every test (each test uses buckets of its own). The launcher prints its port once its
//! socket listens (no polling) and serves until its stdin closes, so it exits with the test
//! binary. A server that cannot start fails the tests that need it; they never skip.
//!
//! A second server, [`s3_server_with_iam`], enforces credentials and IAM policies (moto's IAM
//! simulation): the tests of a bucket the brain may not use.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use brain::config::ObjectStoreOptions;
use serde::Deserialize;
use uuid::Uuid;

/// How long moto may take to import and bind (two busy cores, cold page cache).
const READY_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(crate) struct S3Server {
    /// `http://127.0.0.1:<port>`
    pub(crate) endpoint: String,
    /// Holds the server's stdin open: it serves until the test binary exits.
    _child: Mutex<Child>,
}

/// The server that enforces IAM, and what `scripts/s3-server.py --iam` created before turning
/// enforcement on: one user's access key and three buckets.
#[derive(Debug)]
pub(crate) struct IamS3Server {
    pub(crate) server: S3Server,
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) buckets: IamBuckets,
}

#[derive(Debug, Deserialize)]
pub(crate) struct IamBuckets {
    /// The user may do anything here.
    pub(crate) open: String,
    /// The user may only list and read here.
    pub(crate) read_only: String,
    /// The user has no permission here at all.
    pub(crate) locked: String,
}

#[derive(Deserialize)]
struct IamReady {
    port: u16,
    access_key_id: String,
    secret_access_key: String,
    buckets: IamBuckets,
}

fn venv_python() -> PathBuf {
    let cache = std::env::var_os("EDGEBRAIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/edgebrain")
        });
    cache.join("s3/venv/bin/python")
}

/// The shared server, started on first use.
pub(crate) fn s3_server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (server, line) = start(&[]);
        let port = line.trim().parse::<u16>().unwrap_or_else(|_| {
            panic!("the S3 test server (moto) said {line:?} instead of its port")
        });
        server.at(port)
    })
}

/// The IAM-enforcing server, started on first use.
pub(crate) fn s3_server_with_iam() -> &'static IamS3Server {
    static SERVER: OnceLock<IamS3Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (server, line) = start(&["--iam"]);
        let ready: IamReady = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("the IAM S3 test server (moto) said {line:?}: {error}"));
        IamS3Server {
            server: server.at(ready.port),
            access_key_id: ready.access_key_id,
            secret_access_key: ready.secret_access_key,
            buckets: ready.buckets,
        }
    })
}

/// A launcher that has printed its first line (its port, or with `--iam` a JSON object).
struct Started(Child);

impl Started {
    fn at(self, port: u16) -> S3Server {
        S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            _child: Mutex::new(self.0),
        }
    }
}

fn start(arguments: &[&str]) -> (Started, String) {
    let python = venv_python();
    assert!(
        python.is_file(),
        "the S3 test server is not installed ({}): run `scripts/setup-s3`",
        python.display()
    );
    let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/s3-server.py");
    let mut child = Command::new(python)
        .arg(launcher)
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the S3 test server (moto)");
    let stdout = child.stdout.take().expect("the server's stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = receiver.recv_timeout(READY_DEADLINE).unwrap_or_default();
    if line.trim().is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the S3 test server (moto) did not report ready within {READY_DEADLINE:?}; its \
             errors are above"
        );
    }
    (Started(child), line)
}

impl S3Server {
    /// A new, empty bucket with a unique name.
    pub(crate) async fn bucket(&self) -> String {
        let name = format!("edgebrain-{}", &Uuid::new_v4().simple().to_string()[..16]);
        let response = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .expect("the S3 test server answers");
        assert!(
            response.status().is_success(),
            "creating bucket {name}: {}",
            response.text().await.unwrap_or_default()
        );
        name
    }

    /// The brain's settings for this server (path-style requests over plain HTTP; this server
    /// takes any credentials).
    pub(crate) fn options(&self) -> ObjectStoreOptions {
        self.options_with_key("edgebrain-test", "edgebrain-test-secret")
    }

    /// The brain's settings for this server, signing with the given key.
    pub(crate) fn options_with_key(&self, key_id: &str, secret: &str) -> ObjectStoreOptions {
        ObjectStoreOptions(
            [
                ("aws_endpoint", self.endpoint.as_str()),
                ("aws_allow_http", "true"),
                ("aws_region", "us-east-1"),
                ("aws_access_key_id", key_id),
                ("aws_secret_access_key", secret),
            ]
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .to_vec(),
        )
    }

    /// A client of `bucket` for the tests themselves (list, plant a damaged object).
    pub(crate) fn client(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        let mut builder = object_store::aws::AmazonS3Builder::new().with_bucket_name(bucket);
        for (key, value) in self.options().0 {
            builder = builder.with_config(key.parse().unwrap(), value);
        }
        builder.build().unwrap()
    }
}
