//! `redis-server` processes for the tests of the shared token store: one per test on a free
//! loopback port, stopped by pid when dropped. Used by `redis_store` (the store's contract) and
//! `fleet_processes` (replica processes sharing one server). Without `redis-server`/`redis-cli`
//! the tests say they are skipped; with `CI` set they fail instead (`.ci/run` installs them).
//!
//! Only the standard library: test binaries built without the `redis` feature compile it too.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether `redis-server` and `redis-cli` are installed; if not, says so (and fails under CI).
pub fn redis_installed() -> bool {
    let found = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found("redis-server") && found("redis-cli") {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("redis-server and redis-cli are needed (.ci/run installs them)");
    }
    eprintln!(
        "SKIPPED: redis-server/redis-cli not installed \
         (apt-get install -y --no-install-recommends redis-server redis-tools)"
    );
    false
}

/// A loopback port that is free, and whose cluster bus port (+10000) is free too.
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tower-bearer-redis-{label}-{}-{:016x}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One `redis-server`, stopped by pid when dropped.
pub struct Server {
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    password: Option<String>,
    child: Option<Child>,
}

impl Server {
    /// A server with `extra` arguments, no password.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with(extra, None)
    }

    /// A server whose default user needs `password` (`--requirepass`).
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(&["--requirepass", password], Some(password))
    }

    fn start_with(extra: &[&str], password: Option<&str>) -> Self {
        let port = free_port();
        let mut server = Self {
            port,
            dir: temp_dir(&port.to_string()),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            password: password.map(str::to_owned),
            child: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        self.wait_for_pong();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `redis://[:password@]127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Sends `signal` (`-STOP`, `-CONT`, ...) to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port, empty (no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// `redis-cli` against this server (with its password), trimmed stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string()]);
        if let Some(password) = &self.password {
            // Through the environment, not the command line.
            command.env("REDISCLI_AUTH", password);
        }
        let output = command.args(args).output().unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn wait_for_pong(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.cli(&["ping"]) == "PONG"
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-cli -p <port> <args>` (no password), trimmed stdout.
pub fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
