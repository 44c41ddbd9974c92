//! The SMTP sink, spoken to over a raw TCP stream as Herald's fallback (lettre) speaks it.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::helpers::{spawn_simulator, spawn_simulator_with, TestSimulator};

const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SmtpClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl SmtpClient {
    /// Connects and returns the client with the greeting read.
    pub async fn connect(address: SocketAddr) -> (SmtpClient, String) {
        let stream = TcpStream::connect(address)
            .await
            .expect("connecting to SMTP");
        let (reader, writer) = stream.into_split();
        let mut client = SmtpClient {
            reader: BufReader::new(reader),
            writer,
        };
        let greeting = client.reply().await;
        (client, greeting)
    }

    /// Connects, greets with EHLO and returns the ready client.
    pub async fn ready(address: SocketAddr) -> SmtpClient {
        let (mut client, greeting) = SmtpClient::connect(address).await;
        assert!(greeting.starts_with("220 "), "{greeting}");
        let ehlo = client.command("EHLO client.example").await;
        assert!(ehlo.ends_with("250 AUTH PLAIN LOGIN"), "{ehlo}");
        client
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    /// One whole reply, its lines joined by `\n`; empty at end of stream.
    pub async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(READ_TIMEOUT, self.reader.read_line(&mut line))
                .await
                .expect("an SMTP reply in time")
                .unwrap_or(0);
            if read == 0 {
                return lines.join("\n");
            }
            assert!(line.ends_with("\r\n"), "replies end in CRLF: {line:?}");
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    pub async fn command(&mut self, line: &str) -> String {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// MAIL, RCPT for each recipient, DATA and `message` (dot-stuffed here); the final reply.
    pub async fn mail(&mut self, recipients: &[&str], message: &str) -> String {
        assert_eq!(
            self.command("MAIL FROM:<herald@example.com>").await,
            "250 2.1.0 Ok"
        );
        for recipient in recipients {
            let reply = self.command(&format!("RCPT TO:<{recipient}>")).await;
            assert_eq!(reply, "250 2.1.5 Ok");
        }
        assert!(self.command("DATA").await.starts_with("354 "));
        let mut data = String::new();
        for line in message.split("\r\n") {
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        self.send_raw(data.as_bytes()).await;
        self.reply().await
    }

    /// True when the server has closed the connection (EOF, or reset).
    pub async fn closed(&mut self) -> bool {
        let mut rest = String::new();
        matches!(
            tokio::time::timeout(READ_TIMEOUT, self.reader.read_line(&mut rest)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

/// Sends one message on a fresh connection and quits; the reply to the message.
pub async fn send_message(address: SocketAddr, recipients: &[&str], message: &str) -> String {
    let mut client = SmtpClient::ready(address).await;
    let reply = client.mail(recipients, message).await;
    if !reply.starts_with("421") {
        assert_eq!(client.command("QUIT").await, "221 2.0.0 Bye");
    }
    reply
}

async fn received(simulator: &TestSimulator) -> Vec<Value> {
    simulator.get_json("/_sim/received?provider=smtp").await["messages"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_message_is_queued_and_recorded_with_its_reference_subject_and_decoded_body() {
    let simulator = spawn_simulator().await;
    let mut client = SmtpClient::ready(simulator.smtp).await;
    let ehlo = client.command("EHLO again.example").await;
    for extension in ["250-PIPELINING", "250-SIZE 1048576", "250-8BITMIME"] {
        assert!(ehlo.lines().any(|line| line == extension), "{ehlo}");
    }
    let reply = client
        .mail(
            &["alex@example.com", "sam@example.com"],
            "From: Herald <herald@example.com>\r\n\
             To: alex@example.com, sam@example.com\r\n\
             Subject: =?utf-8?b?Q29tbWFuZGUgZXhww6lkacOpZQ==?=\r\n\
             X-Herald-Delivery-Id: 0192f5e1-7c3a-7b21-9a4e-3d5c6b7a8f90\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\
             \r\n\
             Votre commande a =C3=A9t=C3=A9 exp=C3=A9di=C3=A9e, elle arrive bient=\r\n\
             =C3=B4t.",
        )
        .await;
    let queue_id = reply
        .strip_prefix("250 2.0.0 Ok: queued as ")
        .unwrap_or_else(|| panic!("{reply}"))
        .to_owned();
    assert_eq!(client.command("NOOP").await, "250 2.0.0 Ok");
    assert_eq!(client.command("QUIT").await, "221 2.0.0 Bye");
    assert!(client.closed().await);

    let record = simulator
        .received_one("smtp", "0192f5e1-7c3a-7b21-9a4e-3d5c6b7a8f90")
        .await;
    assert_eq!(record["provider"], "smtp");
    assert_eq!(record["recipient"], "alex@example.com,sam@example.com");
    assert_eq!(record["subject"], "Commande expédiée");
    assert_eq!(
        record["body"],
        "Votre commande a été expédiée, elle arrive bientôt."
    );
    assert_eq!(record["provider_message_id"], queue_id);
    let stats = simulator.stats().await;
    assert_eq!(stats["smtp"]["accepted"], 1);
    assert_eq!(stats["smtp"]["messages"], 1);
    assert_eq!(
        simulator.get_json("/_sim/references?provider=smtp").await,
        json!({"counts": {"0192f5e1-7c3a-7b21-9a4e-3d5c6b7a8f90": 1}})
    );
}

#[tokio::test]
async fn several_messages_on_one_connection_with_rset_and_helo_and_pipelining() {
    let simulator = spawn_simulator().await;
    let (mut client, _) = SmtpClient::connect(simulator.smtp).await;
    assert_eq!(
        client.command("HELO client").await,
        "250 herald-provider-sim"
    );
    assert_eq!(
        client.command("MAIL FROM:<a@example.com>").await,
        "250 2.1.0 Ok"
    );
    assert_eq!(client.command("RSET").await, "250 2.0.0 Ok");
    // Pipelined: every command sent at once, the replies read in order.
    client
        .send_raw(
            b"MAIL FROM:<a@example.com> BODY=8BITMIME SIZE=100\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
        )
        .await;
    assert_eq!(client.reply().await, "250 2.1.0 Ok");
    assert_eq!(client.reply().await, "250 2.1.5 Ok");
    assert!(client.reply().await.starts_with("354 "));
    client
        .send_raw(b"X-Herald-Delivery-Id: p-1\r\n\r\nfirst\r\n.\r\n")
        .await;
    assert!(client.reply().await.starts_with("250 2.0.0 Ok: queued as "));
    let second = client
        .mail(
            &["c@example.com"],
            "X-Herald-Delivery-Id: p-2\r\n\r\nsecond",
        )
        .await;
    assert!(second.starts_with("250 2.0.0 Ok: queued as "), "{second}");
    let messages = received(&simulator).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["body"], "first");
    assert_eq!(messages[0]["subject"], Value::Null);
    assert_eq!(messages[1]["recipient"], "c@example.com");
}

#[tokio::test]
async fn leading_dots_are_unstuffed() {
    let simulator = spawn_simulator().await;
    let mut client = SmtpClient::ready(simulator.smtp).await;
    client.command("MAIL FROM:<a@example.com>").await;
    client.command("RCPT TO:<b@example.com>").await;
    client.command("DATA").await;
    client
        .send_raw(
            b"X-Herald-Delivery-Id: dots\r\n\r\n..\r\n...leading dots\r\nin .. the middle\r\n.\r\n",
        )
        .await;
    assert!(client.reply().await.starts_with("250 "));
    let record = simulator.received_one("smtp", "dots").await;
    assert_eq!(record["body"], ".\r\n..leading dots\r\nin .. the middle");
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_552_and_the_connection_stays_usable() {
    let simulator = spawn_simulator_with(|config| config.smtp.max_message_bytes = 1024).await;
    let mut client = SmtpClient::ready(simulator.smtp).await;
    assert!(client.command("EHLO x").await.contains("250-SIZE 1024"));
    assert_eq!(
        client.command("MAIL FROM:<a@example.com> SIZE=5000").await,
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    let big = format!(
        "X-Herald-Delivery-Id: big\r\n\r\n{}",
        "x".repeat(900) + "\r\n" + &"y".repeat(900)
    );
    assert_eq!(
        client.mail(&["b@example.com"], &big).await,
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    let small = client
        .mail(
            &["b@example.com"],
            "X-Herald-Delivery-Id: small\r\n\r\nsmall",
        )
        .await;
    assert!(small.starts_with("250 "), "{small}");
    let stats = simulator.stats().await;
    assert_eq!(stats["smtp"]["rejected"], 2);
    assert_eq!(stats["smtp"]["accepted"], 1);
    assert_eq!(
        simulator.get_json("/_sim/references?provider=smtp").await,
        json!({"counts": {"small": 1}})
    );
}

#[tokio::test]
async fn a_bounce_recipient_is_refused_550_and_the_others_still_get_the_message() {
    let simulator = spawn_simulator().await;
    let mut client = SmtpClient::ready(simulator.smtp).await;
    client.command("MAIL FROM:<a@example.com>").await;
    assert_eq!(
        client.command("RCPT TO:<bounce@example.com>").await,
        "550 5.1.1 <bounce@example.com>: mailbox unavailable"
    );
    assert_eq!(
        client.command("DATA").await,
        "503 5.5.1 Error: need RCPT command"
    );
    assert_eq!(
        client.command("RCPT TO:<alex@example.com>").await,
        "250 2.1.5 Ok"
    );
    assert!(client.command("DATA").await.starts_with("354 "));
    client
        .send_raw(b"X-Herald-Delivery-Id: b\r\n\r\nhi\r\n.\r\n")
        .await;
    assert!(client.reply().await.starts_with("250 "));
    let record = simulator.received_one("smtp", "b").await;
    assert_eq!(record["recipient"], "alex@example.com");
    let stats = simulator.stats().await;
    assert_eq!(stats["smtp"]["rejected"], 1);
    assert_eq!(stats["smtp"]["accepted"], 1);
}

#[tokio::test]
async fn too_many_recipients_get_452() {
    let simulator = spawn_simulator_with(|config| config.smtp.max_recipients = 2).await;
    let mut client = SmtpClient::ready(simulator.smtp).await;
    client.command("MAIL FROM:<a@example.com>").await;
    assert_eq!(
        client.command("RCPT TO:<1@example.com>").await,
        "250 2.1.5 Ok"
    );
    assert_eq!(
        client.command("RCPT TO:<2@example.com>").await,
        "250 2.1.5 Ok"
    );
    assert_eq!(
        client.command("RCPT TO:<3@example.com>").await,
        "452 4.5.3 Error: too many recipients"
    );
}

#[tokio::test]
async fn injected_faults_answer_451_and_421_and_are_counted() {
    let simulator = spawn_simulator().await;
    simulator
        .configure(
            "smtp",
            json!({"fail_next": 1, "fail_next_kind": "server_error"}),
        )
        .await;
    let message = "X-Herald-Delivery-Id: f\r\n\r\nhi";
    let mut client = SmtpClient::ready(simulator.smtp).await;
    assert_eq!(
        client.mail(&["a@example.com"], message).await,
        "451 4.3.0 Error: internal server error, try again later"
    );
    assert!(client
        .mail(&["a@example.com"], message)
        .await
        .starts_with("250 "));

    simulator
        .configure(
            "smtp",
            json!({"fail_next": 1, "fail_next_kind": "rate_limit", "retry_after": "30"}),
        )
        .await;
    assert_eq!(
        client.mail(&["a@example.com"], message).await,
        "421 4.7.0 herald-provider-sim Error: too many messages, retry after 30; closing connection"
    );
    assert!(client.closed().await, "421 closes the connection");

    simulator
        .configure(
            "smtp",
            json!({"fail_next": 1, "fail_next_kind": "timeout", "timeout_hold_ms": 200}),
        )
        .await;
    let started = std::time::Instant::now();
    assert_eq!(
        send_message(simulator.smtp, &["a@example.com"], message).await,
        "451 4.4.2 Error: timeout while queueing the message, try again later"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));

    let stats = simulator.stats().await;
    assert_eq!(stats["smtp"]["server_errors"], 1);
    assert_eq!(stats["smtp"]["rate_limited"], 1);
    assert_eq!(stats["smtp"]["timeouts"], 1);
    assert_eq!(stats["smtp"]["accepted"], 1);
    assert_eq!(
        simulator.get_json("/_sim/references?provider=smtp").await,
        json!({"counts": {"f": 1}})
    );
}

#[tokio::test]
async fn garbage_and_out_of_order_commands_get_5xx_answers_and_never_kill_the_server() {
    let simulator = spawn_simulator().await;
    let (mut client, _) = SmtpClient::connect(simulator.smtp).await;
    assert_eq!(
        client.command("MAIL FROM:<a@example.com>").await,
        "503 5.5.1 Error: send HELO/EHLO first"
    );
    assert_eq!(
        client.command("EHLO").await,
        "501 5.5.4 Syntax: EHLO hostname"
    );
    assert_eq!(
        client.command("FROBNICATE now").await,
        "500 5.5.2 Error: command not recognized"
    );
    assert_eq!(
        client.command("").await,
        "500 5.5.2 Error: command not recognized"
    );
    client.send_raw(b"\xff\xfe\x00\x01 \xc3\r\n").await;
    assert_eq!(
        client.reply().await,
        "500 5.5.2 Error: command not recognized"
    );
    assert_eq!(
        client.command(&"A".repeat(10_000)).await,
        "500 5.5.2 Error: line too long"
    );
    assert_eq!(
        client.command("STARTTLS").await,
        "502 5.5.1 Error: command not implemented"
    );
    client.command("EHLO x").await;
    assert_eq!(
        client.command("RCPT TO:<b@example.com>").await,
        "503 5.5.1 Error: need MAIL command"
    );
    assert_eq!(
        client.command("DATA").await,
        "503 5.5.1 Error: need MAIL command"
    );
    assert_eq!(
        client.command("MAIL TO:<a@example.com>").await,
        "501 5.5.4 Syntax: MAIL FROM:<address>"
    );
    assert_eq!(
        client.command("MAIL FROM:<a@example.com").await,
        "501 5.5.4 Syntax: MAIL FROM:<address>"
    );
    assert_eq!(
        client.command("MAIL FROM:<a@example.com>").await,
        "250 2.1.0 Ok"
    );
    assert_eq!(
        client.command("MAIL FROM:<a@example.com>").await,
        "503 5.5.1 Error: nested MAIL command"
    );
    assert_eq!(
        client.command("RCPT TO:<>").await,
        "501 5.1.3 Bad recipient address syntax"
    );
    assert_eq!(client.command("DATA now").await, "501 5.5.4 Syntax: DATA");
    assert_eq!(client.command("noop").await, "250 2.0.0 Ok");

    // Too many errors end the connection.
    let mut last = String::new();
    for _ in 0..30 {
        last = client.command("BOGUS").await;
        if !last.starts_with("500") {
            break;
        }
    }
    assert_eq!(last, "421 4.7.0 Error: too many errors");
    assert!(client.closed().await);

    // A client that disappears mid-DATA leaves nothing behind and the sink keeps serving.
    let mut quitter = SmtpClient::ready(simulator.smtp).await;
    quitter.command("MAIL FROM:<a@example.com>").await;
    quitter.command("RCPT TO:<b@example.com>").await;
    quitter.command("DATA").await;
    quitter
        .send_raw(b"X-Herald-Delivery-Id: gone\r\n\r\nhal")
        .await;
    drop(quitter);
    let reply = send_message(
        simulator.smtp,
        &["b@example.com"],
        "X-Herald-Delivery-Id: ok\r\n\r\nhi",
    )
    .await;
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(
        simulator.get_json("/_sim/references?provider=smtp").await,
        json!({"counts": {"ok": 1}})
    );
}

#[tokio::test]
async fn auth_plain_and_login_accept_any_user_but_invalid() {
    let simulator = spawn_simulator().await;
    let mut client = SmtpClient::ready(simulator.smtp).await;
    // base64("\0invalid\0secret")
    assert_eq!(
        client.command("AUTH PLAIN AGludmFsaWQAc2VjcmV0").await,
        "535 5.7.8 Error: authentication failed"
    );
    assert_eq!(client.command("AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(client.command("aGVyYWxk").await, "334 UGFzc3dvcmQ6");
    assert_eq!(
        client.command("c2VjcmV0").await,
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(
        client.command("AUTH PLAIN").await,
        "503 5.5.1 Error: already authenticated"
    );

    let mut other = SmtpClient::ready(simulator.smtp).await;
    assert_eq!(other.command("AUTH PLAIN").await, "334");
    // base64("\0herald\0secret")
    assert_eq!(
        other.command("AGhlcmFsZABzZWNyZXQ=").await,
        "235 2.7.0 Authentication successful"
    );
    let mut third = SmtpClient::ready(simulator.smtp).await;
    assert_eq!(
        third.command("AUTH CRAM-MD5").await,
        "504 5.5.4 Error: unrecognized authentication type"
    );
    assert_eq!(
        third.command("AUTH PLAIN !!!").await,
        "501 5.5.2 Error: cannot decode response"
    );
}

#[tokio::test]
async fn an_idle_client_is_cut_off_with_421() {
    let simulator =
        spawn_simulator_with(|config| config.smtp.idle_timeout = Duration::from_millis(200)).await;
    let mut client = SmtpClient::ready(simulator.smtp).await;
    client.command("MAIL FROM:<a@example.com>").await;
    client.command("RCPT TO:<b@example.com>").await;
    client.command("DATA").await;
    // A slow client: one line, then silence in the middle of the message.
    client.send_raw(b"Subject: slow\r\n").await;
    let started = std::time::Instant::now();
    assert_eq!(
        client.reply().await,
        "421 4.4.2 herald-provider-sim Error: timeout exceeded"
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(client.closed().await);
    assert!(received(&simulator).await.is_empty());
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_with_421() {
    let simulator = spawn_simulator_with(|config| config.smtp.max_connections = 1).await;
    let first = SmtpClient::ready(simulator.smtp).await;
    let (mut second, greeting) = SmtpClient::connect(simulator.smtp).await;
    assert_eq!(greeting, "421 4.3.2 Too many connections, try again later");
    assert!(second.closed().await);
    drop(first);
    // The slot is free again once the first connection has ended.
    let mut accepted = false;
    for _ in 0..50 {
        let (_client, greeting) = SmtpClient::connect(simulator.smtp).await;
        if greeting.starts_with("220 ") {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(accepted);
}

#[tokio::test]
async fn the_smtp_sink_stops_with_the_http_server() {
    let simulator = spawn_simulator().await;
    let mut open = SmtpClient::ready(simulator.smtp).await;
    simulator.server.stop(true).await;
    assert_eq!(
        open.reply().await,
        "421 4.3.2 herald-provider-sim Service shutting down"
    );
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(simulator.smtp).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the SMTP listener is closed");
}

#[tokio::test]
async fn run_binds_smtp_listen_and_an_empty_address_disables_it() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp_address = free.local_addr().unwrap();
    drop(free);
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = herald_provider_sim::SimulatorConfig {
        smtp_listen: Some(smtp_address.to_string()),
        workers: 1,
        ..Default::default()
    };
    let server = herald_provider_sim::run(http, config).unwrap();
    let handle = server.handle();
    tokio::spawn(server);
    let reply = send_message(smtp_address, &["a@example.com"], "Subject: x\r\n\r\nx").await;
    assert!(reply.starts_with("250 "), "{reply}");
    handle.stop(true).await;

    assert_eq!(
        herald_provider_sim::SimulatorConfig::default().smtp_listen,
        None
    );
    let config = herald_provider_sim::SimulatorConfig {
        smtp_listen: Some(" ".to_owned()),
        ..Default::default()
    };
    assert_eq!(config.smtp_listen_address(), None);
}

#[tokio::test]
async fn lettre_delivers_a_non_ascii_message_and_sees_transient_and_permanent_refusals() {
    use lettre::message::header::{ContentType, HeaderName, HeaderValue};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let simulator = spawn_simulator().await;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(simulator.smtp.port())
        .build();
    let message = |reference: &str, to: &str| {
        Message::builder()
            .from("Herald <herald@example.com>".parse().unwrap())
            .to(to.parse().unwrap())
            .subject("Votre commande est expédiée — merci ✓")
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Herald-Delivery-Id"),
                reference.to_owned(),
            ))
            .header(ContentType::TEXT_PLAIN)
            .body(String::from(
                "Bonjour Zoë,\nvotre colis arrive bientôt. ✓\n.une ligne avec un point",
            ))
            .unwrap()
    };

    let response = transport
        .send(message("lettre-1", "Zoë <zoe@example.com>"))
        .await
        .expect("lettre sends through the sink");
    assert_eq!(u16::from(response.code()), 250);
    let record = simulator.received_one("smtp", "lettre-1").await;
    assert_eq!(record["recipient"], "zoe@example.com");
    assert_eq!(record["subject"], "Votre commande est expédiée — merci ✓");
    assert_eq!(
        record["body"],
        "Bonjour Zoë,\r\nvotre colis arrive bientôt. ✓\r\n.une ligne avec un point"
    );
    let queued = response.message().collect::<Vec<_>>().join(" ");
    assert_eq!(
        queued,
        format!(
            "2.0.0 Ok: queued as {}",
            record["provider_message_id"].as_str().unwrap()
        )
    );

    simulator
        .configure(
            "smtp",
            json!({"fail_next": 1, "fail_next_kind": "server_error"}),
        )
        .await;
    let error = transport
        .send(message("lettre-2", "zoe@example.com"))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");

    let error = transport
        .send(message("lettre-3", "bounce@example.com"))
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{error}");
    assert_eq!(
        simulator.get_json("/_sim/references?provider=smtp").await,
        json!({"counts": {"lettre-1": 1}})
    );
}
