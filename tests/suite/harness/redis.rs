//! A real `redis-server` (Debian's package) per test: on a free loopback port, persistence off,
//! stopped when dropped; and a few commands spoken over RESP to look at what the sidecars wrote.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// A running redis-server.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Start one on a free port.
    pub fn start() -> Redis {
        let mut r = Redis {
            port: free_port(),
            child: None,
        };
        r.restart();
        r
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kill it (SIGKILL: an outage, not a shutdown).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-CONT", &c.id().to_string()]).status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freeze it (SIGSTOP): connections stay open and nothing answers, a store "slow" forever.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaw it (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let ok = Command::new("kill").args([sig, &pid]).status().expect("kill").success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// Start it again on the same port (empty: persistence is off) and wait for PONG.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: `apt-get install redis-server` (make test does it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cmd(&["PING"]).as_deref() != Some("PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One command; the reply as text (`None`: no connection). Integers and simple strings
    /// come back as their text, a nil as `nil`, an array's elements joined by spaces.
    pub fn cmd(&self, args: &[&str]) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(out.as_bytes()).ok()?;
        read_reply(&mut BufReader::new(s))
    }

    /// Poll `args` until it answers `want` (at most 10 s).
    pub fn wait_for(&self, args: &[&str], want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.cmd(args);
            if got.as_deref() == Some(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{args:?} answered {got:?}, wanted {want:?} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn read_reply(r: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" | ":" | "-" => Some(rest.to_string()),
        "$" if rest == "-1" => Some("nil".into()),
        "$" => {
            let mut body = String::new();
            r.read_line(&mut body).ok()?;
            Some(body.trim_end().to_string())
        }
        "*" => {
            let n: i64 = rest.parse().ok()?;
            let items: Option<Vec<String>> = (0..n.max(0)).map(|_| read_reply(r)).collect();
            Some(items?.join(" "))
        }
        _ => None,
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
