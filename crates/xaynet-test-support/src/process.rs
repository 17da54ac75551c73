//! Coordinator processes (`xaynet serve`) for tests that kill and restart them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A TOML config for fast test rounds: storage in `data_dir` (and in Redis at `redis_url`
/// if given), listening on `bind`.
pub fn test_config(
    data_dir: &Path,
    bind: &str,
    model_length: usize,
    redis_url: Option<&str>,
) -> String {
    let redis = match redis_url {
        Some(url) => format!("[redis]\nurl = \"{url}\"\nkey_prefix = \"test:\"\n"),
        None => String::new(),
    };
    let backend = if redis_url.is_some() {
        "redis"
    } else {
        "embedded"
    };
    format!(
        r#"{redis}[api]
bind_address = "{bind}"
[storage]
backend = "{backend}"
data_dir = "{dir}"
[model]
length = {model_length}
[log]
filter = "warn"
[limits]
commit_interval = 0.02
[pet.sum]
prob = 0.2
count = {{ min = 1, max = 100 }}
time = {{ min = 0.3, max = 30 }}
[pet.update]
prob = 0.9
count = {{ min = 3, max = 1000 }}
time = {{ min = 0.3, max = 30 }}
[pet.sum2]
count = {{ min = 1, max = 100 }}
time = {{ min = 0.3, max = 30 }}
"#,
        dir = data_dir.display()
    )
}

/// A running `xaynet serve`. Killed with SIGKILL when dropped.
pub struct ServeProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServeProcess {
    /// Starts `bin serve --config config` and waits (up to 60 s) for its "listening" line.
    pub fn start(bin: &Path, config: &Path) -> ServeProcess {
        let mut child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start xaynet serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("xaynet coordinator listening on http://") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("coordinator did not report its address")
            .parse()
            .expect("address");
        ServeProcess { child, addr }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `program` runs; when it does not, that is a panic under `CI=true` (where every
/// test must really run) and a skip message otherwise.
fn available(program: &str, probe: &str) -> bool {
    let ok = Command::new(program)
        .arg(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is not installed (scripts/test.sh installs it)"
        );
        eprintln!("{program} not installed: skipping (scripts/test.sh installs it)");
    }
    ok
}

/// A free loopback port.
fn free_port() -> Option<u16> {
    Some(
        std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port(),
    )
}

/// Waits until something accepts connections on `port`.
fn wait_for_port(port: u16, what: &str, limit: Duration) {
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < limit, "{what} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `redis-server` on a free loopback port, with its files in a temporary directory.
/// Stopped when dropped.
pub struct RedisServer {
    child: Child,
    /// `redis://127.0.0.1:PORT/`.
    pub url: String,
    _dir: std::path::PathBuf,
}

impl RedisServer {
    /// Starts one, or returns `None` when `redis-server` is not installed — which is an error
    /// (a panic) under `CI=true`, where every test must really run.
    pub fn start() -> Option<RedisServer> {
        if !available("redis-server", "--version") {
            return None;
        }
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("xaynet-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "yes",
            ])
            .args(["--appendfsync", "always", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
            _dir: dir,
        };
        wait_for_port(port, "redis-server", Duration::from_secs(20));
        Some(server)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

/// An S3-compatible server (moto's `moto_server`) on a free loopback port, with one empty
/// bucket. Stopped when dropped.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket created for the test.
    pub bucket: String,
}

impl S3Server {
    /// Starts one, or returns `None` when `moto_server` is not installed — a panic under
    /// `CI=true`.
    pub fn start() -> Option<S3Server> {
        if !available("moto_server", "--help") {
            return None;
        }
        let port = free_port()?;
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "global-models".into(),
        };
        wait_for_port(port, "moto_server", Duration::from_secs(60));
        // Create the bucket with a plain HTTP PUT (moto does not require signatures).
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        use std::io::{Read, Write};
        let req = format!("PUT /{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", server.bucket);
        stream.write_all(req.as_bytes()).ok()?;
        let mut resp = String::new();
        let _ = stream.read_to_string(&mut resp);
        assert!(
            resp.starts_with("HTTP/1.1 200"),
            "bucket creation failed: {resp}"
        );
        Some(server)
    }

    /// `[s3]` settings pointing at this server.
    pub fn settings(&self) -> xaynet_server::settings::S3Section {
        xaynet_server::settings::S3Section {
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
            region: "us-east-1".into(),
            access_key: "test".into(),
            secret_access_key: "test".into(),
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
