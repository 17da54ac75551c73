//! Coordinator processes (`xaynet serve`) for tests that kill and restart them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A TOML config for fast test rounds: storage in `data_dir`, listening on `bind`.
pub fn test_config(data_dir: &Path, bind: &str, model_length: usize) -> String {
    format!(
        r#"[api]
bind_address = "{bind}"
[storage]
data_dir = "{dir}"
[model]
length = {model_length}
[log]
filter = "warn"
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
