//! The S3-compatible server of the object-store tests: moto (`scripts/s3-server.py`; PyPI
//! `moto[server]`, pinned and installed by `scripts/setup-s3` into `$EDGEBRAIN_CACHE/s3/venv`),
//! started once per test binary, lazily, on a port the OS picks on 127.0.0.1, and shared by
//! every test (each test uses buckets of its own). The launcher prints its port once its
//! socket listens (no polling) and serves until its stdin closes, so it exits with the test
//! binary. A server that cannot start fails the tests that need it; they never skip.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use brain::config::ObjectStoreOptions;
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
    SERVER.get_or_init(start)
}

fn start() -> S3Server {
    let python = venv_python();
    assert!(
        python.is_file(),
        "the S3 test server is not installed ({}): run `scripts/setup-s3`",
        python.display()
    );
    let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/s3-server.py");
    let mut child = Command::new(python)
        .arg(launcher)
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
    let Ok(port) = line.trim().parse::<u16>() else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the S3 test server (moto) did not report a port within {READY_DEADLINE:?} (said \
             {line:?}); its errors are above"
        );
    };
    S3Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        _child: Mutex::new(child),
    }
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

    /// The brain's settings for this server (path-style requests over plain HTTP; moto takes
    /// any credentials).
    pub(crate) fn options(&self) -> ObjectStoreOptions {
        ObjectStoreOptions(
            [
                ("aws_endpoint", self.endpoint.as_str()),
                ("aws_allow_http", "true"),
                ("aws_region", "us-east-1"),
                ("aws_access_key_id", "edgebrain-test"),
                ("aws_secret_access_key", "edgebrain-test-secret"),
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
