//! Servers of a test's own, which the test may kill and restart on the same port with the same
//! data: a tansu broker, a PostgreSQL cluster, a Redis.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::{env, free_port, wait_for_port};

fn scratch_directory(kind: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!("herald-{kind}-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

/// A tansu broker of the test's own (SQLite storage: records and offsets survive a kill).
pub struct TansuBroker {
    pub port: u16,
    directory: PathBuf,
    process: Option<Child>,
}

impl TansuBroker {
    pub async fn start() -> TansuBroker {
        let mut broker = TansuBroker {
            port: free_port(),
            directory: scratch_directory("tansu"),
            process: None,
        };
        broker.restart().await;
        broker
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn restart(&mut self) {
        assert!(self.process.is_none(), "the broker is running");
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let process = Command::new(env("HERALD_TEST_TANSU_BIN"))
            .args([
                "broker",
                "--listener-url",
                &listener,
                "--advertised-listener-url",
                &listener,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.directory)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting tansu");
        self.process = Some(process);
        wait_for_port(self.port).await;
    }

    /// `kill -STOP`: the broker stops answering (requests sent meanwhile wait, unanswered, in its
    /// sockets) but keeps its connections, as a broker stuck in a long pause would.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// `kill -CONT`: a paused broker answers again, the requests that waited first.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let process = self.process.as_ref().expect("the broker is running");
        let pid = process.id().expect("the broker has not exited").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }

    /// `kill -9`: the broker disappears without a goodbye.
    pub async fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().await.unwrap();
        }
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `command` as the `postgres` system user when we are root (PostgreSQL refuses to run as root).
fn as_postgres(program: &Path) -> std::process::Command {
    if is_root() {
        let mut command = std::process::Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        std::process::Command::new(program)
    }
}

fn pg_bin_directory() -> PathBuf {
    if let Ok(directory) = std::env::var("HERALD_TEST_PG_BIN_DIR") {
        return PathBuf::from(directory);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").exists())
        .collect();
    candidates.sort();
    candidates.pop().expect("a PostgreSQL bin directory")
}

/// A PostgreSQL cluster of the test's own, on its own port, with a `herald` superuser.
pub struct PostgresServer {
    pub port: u16,
    directory: PathBuf,
    bin: PathBuf,
    running: bool,
}

impl PostgresServer {
    pub async fn start() -> PostgresServer {
        let directory = scratch_directory("pg");
        let bin = pg_bin_directory();
        let server = tokio::task::spawn_blocking(move || {
            if is_root() {
                let status = std::process::Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&directory)
                    .status()
                    .unwrap();
                assert!(status.success(), "chown of the test cluster directory");
            }
            let status = as_postgres(&bin.join("initdb"))
                .args(["-D"])
                .arg(directory.join("data"))
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "initdb");
            PostgresServer {
                port: free_port(),
                directory,
                bin,
                running: false,
            }
        })
        .await
        .unwrap();
        let mut server = server;
        server.start_again().await;
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
        let connection = sea_orm::Database::connect(&admin).await.unwrap();
        sea_orm::ConnectionTrait::execute_unprepared(
            &connection,
            "CREATE ROLE herald LOGIN SUPERUSER",
        )
        .await
        .unwrap();
        connection.close().await.ok();
        server
    }

    /// The URL tests create their databases from.
    pub fn admin_url(&self) -> String {
        format!("postgres://herald@127.0.0.1:{}/postgres", self.port)
    }

    pub async fn start_again(&mut self) {
        assert!(!self.running, "the cluster is running");
        let (bin, data, port) = (self.bin.clone(), self.directory.join("data"), self.port);
        let log = self.directory.join("postgres.log");
        tokio::task::spawn_blocking(move || {
            let status = as_postgres(&bin.join("pg_ctl"))
                .args(["-D"])
                .arg(&data)
                .args(["-l"])
                .arg(&log)
                .args(["-w", "start", "-o"])
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
                    data.display()
                ))
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "pg_ctl start");
        })
        .await
        .unwrap();
        self.running = true;
        wait_for_port(self.port).await;
    }

    /// Stops the cluster the way a crash would (`pg_ctl stop -m immediate`): every connection is
    /// cut, nothing is flushed politely.
    pub async fn stop_immediately(&mut self) {
        if !self.running {
            return;
        }
        let (bin, data) = (self.bin.clone(), self.directory.join("data"));
        tokio::task::spawn_blocking(move || stop(&bin, &data))
            .await
            .unwrap();
        self.running = false;
    }
}

fn stop(bin: &Path, data: &Path) {
    let _ = as_postgres(&bin.join("pg_ctl"))
        .args(["-D"])
        .arg(data)
        .args(["-m", "immediate", "-w", "stop"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.running {
            stop(&self.bin, &self.directory.join("data"));
        }
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// A Redis of the test's own (no persistence: a cache).
pub struct RedisServer {
    pub port: u16,
    process: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            process: None,
        };
        server.start_again().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub async fn start_again(&mut self) {
        assert!(self.process.is_none(), "redis is running");
        let process = Command::new("redis-server")
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
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting redis-server");
        self.process = Some(process);
        wait_for_port(self.port).await;
    }

    pub async fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().await.unwrap();
        }
    }
}
