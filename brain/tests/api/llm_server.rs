//! The real local LLM for the tests: a llama.cpp server (`scripts/llm-server.py`, xllamacpp)
//! started once per test binary on a free loopback port and shared by every test. It exits
//! with the test binary (the launcher watches its parent). `scripts/setup-llm` installs the
//! server and models into `$EDGEBRAIN_CACHE/llm`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a model server may take to load (two busy cores, cold page cache).
const READY_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Debug)]
pub(crate) struct LocalLlm {
    /// `http://127.0.0.1:<port>/v1`
    pub(crate) base_url: String,
    _child: Mutex<Child>,
}

fn llm_dir() -> PathBuf {
    let cache = std::env::var_os("EDGEBRAIN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/edgebrain")
        });
    cache.join("llm")
}

/// SmolLM2-135M: the chat model (no tool support).
pub(crate) fn chat_llm() -> &'static LocalLlm {
    static SERVER: OnceLock<LocalLlm> = OnceLock::new();
    SERVER.get_or_init(|| start("SmolLM2-135M-Instruct.Q4_1.gguf", &[]))
}

/// Qwen2.5-Coder-0.5B with a template that renders tool calls as the fenced JSON the model
/// writes, so llama.cpp returns real `tool_calls`. Greedy sampling (temperature 0): whether a tiny model calls the
/// tool must not be a coin toss.
pub(crate) fn tool_llm() -> &'static LocalLlm {
    static SERVER: OnceLock<LocalLlm> = OnceLock::new();
    SERVER.get_or_init(|| {
        let template = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("llm/qwen-json-tools.jinja");
        start(
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            &[
                "--chat-template",
                template.to_str().expect("a UTF-8 path"),
                "--temperature",
                "0",
                "--seed",
                "7",
            ],
        )
    })
}

fn start(model: &str, extra_args: &[&str]) -> LocalLlm {
    let dir = llm_dir();
    let python = dir.join("venv/bin/python");
    let model_path = dir.join("models").join(model);
    assert!(
        python.is_file() && model_path.is_file(),
        "the local LLM is not installed ({} / {}): run `scripts/setup-llm`",
        python.display(),
        model_path.display()
    );
    let port = free_port();
    let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/llm-server.py");
    let mut command = Command::new(python);
    command
        .arg(launcher)
        .arg("--model")
        .arg(&model_path)
        .args([
            "--port",
            &port.to_string(),
            "--ctx",
            "2048",
            "--parallel",
            "4",
        ])
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("start the local LLM server");
    let deadline = Instant::now() + READY_DEADLINE;
    while !healthy(port) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the local LLM server exited before it was ready: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the local LLM server was not ready within {READY_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(200)); // poll interval, bounded by the deadline
    }
    LocalLlm {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        _child: Mutex::new(child),
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}
