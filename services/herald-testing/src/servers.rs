//! Servers of a test's own, which the test may kill and restart on the same port with the same
//! data: an Apache Kafka node or cluster, a PostgreSQL cluster, a Redis.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::{free_port, wait_for_port};

pub(crate) fn scratch_directory(kind: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!("herald-{kind}-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

/// `scripts/kafka.sh`, the one way Herald installs, configures and runs a broker.
fn kafka_script() -> PathBuf {
    std::env::var("HERALD_TEST_KAFKA_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka.sh"))
}

/// A test broker's heap: a few of them share the machine with everything else a test runs.
const TEST_BROKER_HEAP: &str = "-Xms192m -Xmx512m";

/// Apache Kafka of a test's own: one KRaft node, or a cluster of several, each broker and
/// controller at once (scripts/kafka.sh; with three nodes, topics have three replicas and
/// `min.insync.replicas` 2, as in production). Storage is on disk: records and committed offsets
/// survive a kill.
pub struct KafkaCluster {
    nodes: Vec<KafkaNode>,
    directory: PathBuf,
}

struct KafkaNode {
    id: i32,
    port: u16,
    directory: PathBuf,
    process: Option<Child>,
}

impl KafkaCluster {
    /// Formats and starts `nodes` nodes (ids 1..=nodes) and waits until every one is a broker of
    /// the cluster.
    pub async fn start(nodes: usize) -> KafkaCluster {
        KafkaCluster::start_with_format_arguments(nodes, Vec::new()).await
    }

    /// Like [`KafkaCluster::start`], with more options for `scripts/kafka.sh format` (listeners,
    /// properties, SCRAM users) for every node.
    async fn start_with_format_arguments(
        nodes: usize,
        extra_format_arguments: Vec<String>,
    ) -> KafkaCluster {
        assert!(nodes >= 1);
        let directory = scratch_directory("kafka");
        let ports: Vec<(u16, u16)> = (0..nodes).map(|_| (free_port(), free_port())).collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(index, (_, controller))| format!("{}@127.0.0.1:{controller}", index + 1))
            .collect::<Vec<_>>()
            .join(",");
        let cluster_id = script_output(&["cluster-id"]).await;
        let mut formats = tokio::task::JoinSet::new();
        for (index, (port, controller_port)) in ports.iter().enumerate() {
            let node_directory = directory.join(format!("node-{}", index + 1));
            let mut arguments: Vec<String> = vec![
                "format".into(),
                "--dir".into(),
                node_directory.display().to_string(),
                "--cluster-id".into(),
                cluster_id.clone(),
                "--node-id".into(),
                (index + 1).to_string(),
                "--port".into(),
                port.to_string(),
                "--controller-port".into(),
                controller_port.to_string(),
                "--voters".into(),
                voters.clone(),
            ];
            arguments.extend(extra_format_arguments.iter().cloned());
            formats.spawn(async move {
                let status = Command::new(kafka_script())
                    .args(&arguments)
                    .stdout(Stdio::null())
                    .status()
                    .await
                    .expect("running scripts/kafka.sh format");
                assert!(status.success(), "scripts/kafka.sh {arguments:?}: {status}");
            });
        }
        while let Some(formatted) = formats.join_next().await {
            formatted.unwrap();
        }
        let mut cluster = KafkaCluster {
            nodes: ports
                .iter()
                .enumerate()
                .map(|(index, (port, _))| KafkaNode {
                    id: index as i32 + 1,
                    port: *port,
                    directory: directory.join(format!("node-{}", index + 1)),
                    process: None,
                })
                .collect(),
            directory,
        };
        cluster.restart().await;
        cluster
    }

    /// The bootstrap list: every node.
    pub fn brokers(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|node| node.id).collect()
    }

    fn node(&mut self, id: i32) -> &mut KafkaNode {
        self.nodes
            .iter_mut()
            .find(|node| node.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// `kill -9` of one node: it disappears without a goodbye.
    pub async fn kill_node(&mut self, id: i32) {
        if let Some(mut process) = self.node(id).process.take() {
            process.kill().await.unwrap();
        }
    }

    /// Starts one stopped node again on its port and storage, and waits until it is a broker of
    /// the cluster again.
    pub async fn restart_node(&mut self, id: i32) {
        self.node(id).spawn();
        self.wait_until_brokers_are_listed().await;
    }

    /// `kill -9` of every node.
    pub async fn kill(&mut self) {
        for id in self.node_ids() {
            self.kill_node(id).await;
        }
    }

    /// Starts every stopped node again and waits until all are brokers of the cluster.
    pub async fn restart(&mut self) {
        for node in &mut self.nodes {
            if node.process.is_none() {
                node.spawn();
            }
        }
        self.wait_until_brokers_are_listed().await;
    }

    /// `kill -STOP` of every node: the cluster stops answering (requests sent meanwhile wait,
    /// unanswered, in its sockets) but keeps its connections, as a cluster stuck in a long pause
    /// would.
    pub fn pause(&self) {
        for node in &self.nodes {
            node.signal("-STOP");
        }
    }

    /// `kill -CONT`: a paused cluster answers again, the requests that waited first.
    pub fn resume(&self) {
        for node in &self.nodes {
            node.signal("-CONT");
        }
    }

    /// The node leading `partition` of `topic`, as the cluster's metadata says.
    pub async fn leader_of(&self, topic: &str, partition: i32) -> i32 {
        let consumer = self.metadata_client();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let metadata = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .expect("the cluster's metadata");
            metadata.topics()[0]
                .partitions()
                .iter()
                .find(|candidate| candidate.id() == partition)
                .map(|found| found.leader())
                .unwrap_or_else(|| panic!("{topic} has no partition {partition}"))
        })
        .await
        .unwrap()
    }

    fn metadata_client(&self) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .create()
            .expect("a metadata client")
    }

    /// Waits until the metadata lists every running node as a broker (a node's port opens before
    /// it has joined the cluster).
    async fn wait_until_brokers_are_listed(&self) {
        let running: Vec<i32> = self
            .nodes
            .iter()
            .filter(|node| node.process.is_some())
            .map(|node| node.id)
            .collect();
        for node in self.nodes.iter().filter(|node| node.process.is_some()) {
            wait_for_port(node.port).await;
        }
        let consumer = self.metadata_client();
        let listed = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while std::time::Instant::now() < deadline {
                if let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(2)) {
                    let brokers: Vec<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
                    if running.iter().all(|id| brokers.contains(id)) {
                        return true;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        })
        .await
        .unwrap();
        assert!(
            listed,
            "the Kafka nodes did not form a cluster within 60 s; see {}",
            self.directory.display()
        );
    }
}

impl KafkaNode {
    fn spawn(&mut self) {
        assert!(self.process.is_none(), "node {} is running", self.id);
        let process = Command::new(kafka_script())
            .args(["run", "--dir"])
            .arg(&self.directory)
            .env("HERALD_KAFKA_HEAP", TEST_BROKER_HEAP)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting scripts/kafka.sh run");
        self.process = Some(process);
    }

    fn signal(&self, signal: &str) {
        let process = self.process.as_ref().expect("the node is running");
        let pid = process.id().expect("the node has not exited").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }
}

/// A user of a [`SecureKafka`]'s SASL_SSL listener: known to SCRAM-SHA-256, SCRAM-SHA-512 and
/// PLAIN alike.
pub const SECURE_KAFKA_USER: &str = "herald";

/// Apache Kafka of a test's own (one KRaft node, scripts/kafka.sh) with TLS listeners beside its
/// PLAINTEXT one, all three with the server certificate of `certificates`: SSL, which requires a
/// client certificate its CA signed (mutual TLS), and SASL_SSL, which takes SCRAM-SHA-256,
/// SCRAM-SHA-512 and PLAIN logins of [`SECURE_KAFKA_USER`] with `password`, and OAUTHBEARER
/// tokens: Kafka's default validator of unsecured tokens, which takes an unsigned JWT with a `sub`
/// and an unexpired `exp` (what [`crate::TokenEndpoint`] issues: a test's identity provider needs
/// no signing key, and the broker no JWKS). It checks the token's form, not who issued it.
pub struct SecureKafka {
    pub cluster: KafkaCluster,
    ssl_port: u16,
    sasl_ssl_port: u16,
}

impl SecureKafka {
    pub async fn start(certificates: &crate::TestCertificates, password: &str) -> SecureKafka {
        let (ssl_port, sasl_ssl_port) = (free_port(), free_port());
        let keystore = certificates.server_keystore_file();
        let ca = certificates.ca_file();
        let properties = format!(
            "listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location={keystore}
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location={ca}
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location={keystore}
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN,OAUTHBEARER
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_{SECURE_KAFKA_USER}=\"{password}\";
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;
"
        );
        let properties_file = certificates.directory().join("kafka-listeners.properties");
        std::fs::write(&properties_file, properties).unwrap();
        let mut arguments = vec![
            "--listener".to_owned(),
            format!("SSL:SSL:{ssl_port}"),
            "--listener".to_owned(),
            format!("SASL_SSL:SASL_SSL:{sasl_ssl_port}"),
            "--properties".to_owned(),
            properties_file.display().to_string(),
        ];
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
            arguments.push("--scram".to_owned());
            arguments.push(format!(
                "{mechanism}=[name={SECURE_KAFKA_USER},password={password}]"
            ));
        }
        let cluster = KafkaCluster::start_with_format_arguments(1, arguments).await;
        wait_for_port(ssl_port).await;
        wait_for_port(sasl_ssl_port).await;
        SecureKafka {
            cluster,
            ssl_port,
            sasl_ssl_port,
        }
    }

    /// The PLAINTEXT listener, for what a test sets up unsecured (topics).
    pub fn plaintext_brokers(&self) -> String {
        self.cluster.brokers()
    }

    pub fn ssl_brokers(&self) -> String {
        format!("127.0.0.1:{}", self.ssl_port)
    }

    pub fn sasl_ssl_brokers(&self) -> String {
        format!("127.0.0.1:{}", self.sasl_ssl_port)
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                let _ = process.start_kill();
            }
        }
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// What `scripts/kafka.sh ARGUMENTS` prints, trimmed.
async fn script_output(arguments: &[&str]) -> String {
    let output = Command::new(kafka_script())
        .args(arguments)
        .output()
        .await
        .expect("running scripts/kafka.sh");
    assert!(
        output.status.success(),
        "scripts/kafka.sh {arguments:?}: {output:?}"
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
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
    tls: Option<RedisTls>,
}

/// Whether a TLS Redis asks its clients for a certificate (`tls-auth-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisClientCertificates {
    /// `no`: any client that trusts the server's certificate.
    NotAsked,
    /// `yes`: only a client with a certificate the CA of the test's certificates signed; the
    /// handshake of any other fails.
    Required,
}

/// A TLS-only Redis's files: its certificate and key, and the CA its clients' certificates are
/// checked against.
struct RedisTls {
    certificate: String,
    key: String,
    client_ca: String,
    client_certificates: RedisClientCertificates,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            process: None,
            tls: None,
        };
        server.start_again().await;
        server
    }

    /// A Redis that speaks TLS only (`--port 0 --tls-port`), with the server certificate of
    /// `certificates`; client certificates are not asked for.
    pub async fn start_tls(certificates: &crate::TestCertificates) -> RedisServer {
        RedisServer::start_tls_with(certificates, RedisClientCertificates::NotAsked).await
    }

    /// Like [`RedisServer::start_tls`], asking for client certificates or not.
    pub async fn start_tls_with(
        certificates: &crate::TestCertificates,
        client_certificates: RedisClientCertificates,
    ) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            process: None,
            tls: Some(RedisTls {
                certificate: certificates.server_certificate_file(),
                key: certificates.server_key_file(),
                client_ca: certificates.ca_file(),
                client_certificates,
            }),
        };
        server.start_again().await;
        server
    }

    /// `redis://`, or `rediss://` for a TLS Redis.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    pub async fn start_again(&mut self) {
        assert!(self.process.is_none(), "redis is running");
        let port = self.port.to_string();
        let listening: Vec<&str> = match &self.tls {
            None => vec!["--port", &port],
            Some(tls) => vec![
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-cert-file",
                &tls.certificate,
                "--tls-key-file",
                &tls.key,
                "--tls-ca-cert-file",
                &tls.client_ca,
                "--tls-auth-clients",
                match tls.client_certificates {
                    RedisClientCertificates::NotAsked => "no",
                    RedisClientCertificates::Required => "yes",
                },
            ],
        };
        let process = Command::new("redis-server")
            .args(listening)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
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
