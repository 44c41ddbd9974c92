//! One SMTP connection: the RFC 5321 dialogue, bounded in line length, message size,
//! recipients, errors and idle time. Replies are written in the order the commands arrive, so
//! pipelined clients work.

use std::io;
use std::sync::Arc;

use base64::Engine;
use chrono::Utc;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;

use crate::behaviour::FaultKind;
use crate::config::SmtpConfig;
use crate::provider::Provider;
use crate::records::DeliveryRecord;
use crate::simulation::Admission;
use crate::state::SimulatorState;

use super::message;

/// The longest line read, in bytes without CRLF; RFC 5321 allows 998 in a message and 510 in a
/// command, so only a broken or hostile client reaches it.
pub const MAX_LINE_BYTES: usize = 4096;
/// Syntax errors and refused commands tolerated per connection before it is closed with `421`.
pub const MAX_ERRORS: u32 = 20;
/// The name the simulator greets with.
const HOSTNAME: &str = "herald-provider-sim";
/// The local part of a recipient that is refused with `550 5.1.1`.
pub const BOUNCE_LOCAL_PART: &str = "bounce";
/// The user name `AUTH` refuses with `535 5.7.8`.
pub const INVALID_USER: &str = "invalid";

enum Input {
    Line(Vec<u8>),
    TooLong,
}

enum Flow {
    Continue,
    Close,
}

pub struct Session<R, W> {
    reader: BufReader<R>,
    writer: W,
    state: Arc<SimulatorState>,
    config: Arc<SmtpConfig>,
    shutdown: watch::Receiver<()>,
    greeted: bool,
    authenticated: bool,
    sender: Option<String>,
    recipients: Vec<String>,
    errors: u32,
}

/// Reads one line, without its line ending (CRLF or a bare LF), keeping at most `max` bytes;
/// `None` at end of input.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> io::Result<Option<Input>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            // End of input: a partial last line is dropped, as a line was never finished.
            return Ok(None);
        }
        let (chunk, found) = match buffer.iter().position(|&byte| byte == b'\n') {
            Some(position) => (&buffer[..position], Some(position + 1)),
            None => (buffer, None),
        };
        if !too_long {
            if line.len() + chunk.len() > max + 1 {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = found.unwrap_or(buffer.len());
        reader.consume(consumed);
        if found.is_some() {
            if too_long {
                return Ok(Some(Input::TooLong));
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.len() > max {
                return Ok(Some(Input::TooLong));
            }
            return Ok(Some(Input::Line(line)));
        }
    }
}

/// The address in `FROM:<address> params` (after the keyword) and the parameters.
fn parse_path<'a>(arguments: &'a str, keyword: &str) -> Option<(String, &'a str)> {
    let arguments = arguments.trim_start();
    let head = arguments.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arguments[keyword.len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        Some((inner[..end].trim().to_owned(), &inner[end + 1..]))
    } else {
        // Lenient: a bare address, as some clients send.
        let mut parts = rest.splitn(2, char::is_whitespace);
        let address = parts.next().filter(|address| !address.is_empty())?;
        Some((address.to_owned(), parts.next().unwrap_or_default()))
    }
}

fn is_bounce(address: &str) -> bool {
    let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
    local.eq_ignore_ascii_case(BOUNCE_LOCAL_PART)
}

/// A Postfix-like queue id: 16 upper-case hexadecimal digits.
fn queue_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}

/// Text from configuration put in a reply line: no line breaks or other control characters.
fn single_line(text: &str) -> String {
    text.chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .collect()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    pub fn new(
        reader: R,
        writer: W,
        state: Arc<SimulatorState>,
        config: Arc<SmtpConfig>,
        shutdown: watch::Receiver<()>,
    ) -> Self {
        Session {
            reader: BufReader::new(reader),
            writer,
            state,
            config,
            shutdown,
            greeted: false,
            authenticated: false,
            sender: None,
            recipients: Vec::new(),
            errors: 0,
        }
    }

    /// Runs the dialogue until the client quits, goes silent, misbehaves too often or the
    /// simulator stops; I/O errors end it quietly (the client went away).
    pub async fn run(mut self) {
        if let Err(error) = self.dialogue().await {
            tracing::debug!(%error, "SMTP connection ended");
        }
        let _ = self.writer.shutdown().await;
    }

    async fn dialogue(&mut self) -> io::Result<()> {
        self.reply(&format!("220 {HOSTNAME} ESMTP ready")).await?;
        loop {
            let line = match self.next_line().await? {
                None => return Ok(()),
                Some(Input::TooLong) => {
                    if let Flow::Close = self.error("500 5.5.2 Error: line too long").await? {
                        return Ok(());
                    }
                    continue;
                }
                Some(Input::Line(line)) => line,
            };
            if let Flow::Close = self.command(&String::from_utf8_lossy(&line)).await? {
                return Ok(());
            }
        }
    }

    /// The next line from the client, or `None` once the connection is to end: end of input,
    /// the idle timeout or the simulator stopping (those two are answered `421` first).
    async fn next_line(&mut self) -> io::Result<Option<Input>> {
        let idle_timeout = self.config.idle_timeout;
        let read = tokio::time::timeout(idle_timeout, read_line(&mut self.reader, MAX_LINE_BYTES));
        tokio::select! {
            result = read => match result {
                Ok(line) => line,
                Err(_elapsed) => {
                    self.reply(&format!("421 4.4.2 {HOSTNAME} Error: timeout exceeded")).await?;
                    Ok(None)
                }
            },
            _ = self.shutdown.changed() => {
                self.reply(&format!("421 4.3.2 {HOSTNAME} Service shutting down")).await?;
                Ok(None)
            }
        }
    }

    async fn reply(&mut self, line: &str) -> io::Result<()> {
        self.writer.write_all(line.as_bytes()).await?;
        self.writer.write_all(b"\r\n").await?;
        self.writer.flush().await
    }

    /// Answers a refused command, and closes the connection after too many.
    async fn error(&mut self, line: &str) -> io::Result<Flow> {
        self.errors += 1;
        if self.errors > MAX_ERRORS {
            self.reply("421 4.7.0 Error: too many errors").await?;
            return Ok(Flow::Close);
        }
        self.reply(line).await?;
        Ok(Flow::Continue)
    }

    fn reset_transaction(&mut self) {
        self.sender = None;
        self.recipients.clear();
    }

    async fn command(&mut self, line: &str) -> io::Result<Flow> {
        let (verb, arguments) = match line.split_once(' ') {
            Some((verb, arguments)) => (verb, arguments.trim()),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if arguments.is_empty() => {
                self.error("501 5.5.4 Syntax: EHLO hostname").await
            }
            "EHLO" => {
                self.greeted = true;
                self.reset_transaction();
                let size = self.config.max_message_bytes;
                for line in [
                    format!("250-{HOSTNAME}"),
                    "250-PIPELINING".to_owned(),
                    format!("250-SIZE {size}"),
                    "250-8BITMIME".to_owned(),
                    "250-SMTPUTF8".to_owned(),
                    "250-ENHANCEDSTATUSCODES".to_owned(),
                    "250 AUTH PLAIN LOGIN".to_owned(),
                ] {
                    self.reply(&line).await?;
                }
                Ok(Flow::Continue)
            }
            "HELO" => {
                self.greeted = true;
                self.reset_transaction();
                self.reply(&format!("250 {HOSTNAME}")).await?;
                Ok(Flow::Continue)
            }
            "MAIL" => self.mail(arguments).await,
            "RCPT" => self.rcpt(arguments).await,
            "DATA" => self.data(arguments).await,
            "AUTH" => self.auth(arguments).await,
            "RSET" => {
                self.reset_transaction();
                self.reply("250 2.0.0 Ok").await?;
                Ok(Flow::Continue)
            }
            "NOOP" => {
                self.reply("250 2.0.0 Ok").await?;
                Ok(Flow::Continue)
            }
            "QUIT" => {
                self.reply("221 2.0.0 Bye").await?;
                Ok(Flow::Close)
            }
            "VRFY" => {
                self.reply("252 2.0.0 Cannot VRFY user, but will accept message")
                    .await?;
                Ok(Flow::Continue)
            }
            "HELP" => {
                self.reply("214 2.0.0 See RFC 5321").await?;
                Ok(Flow::Continue)
            }
            "STARTTLS" | "EXPN" | "BDAT" | "ETRN" | "TURN" => {
                self.error("502 5.5.1 Error: command not implemented").await
            }
            _ => self.error("500 5.5.2 Error: command not recognized").await,
        }
    }

    async fn mail(&mut self, arguments: &str) -> io::Result<Flow> {
        if !self.greeted {
            return self.error("503 5.5.1 Error: send HELO/EHLO first").await;
        }
        if self.sender.is_some() {
            return self.error("503 5.5.1 Error: nested MAIL command").await;
        }
        let Some((sender, parameters)) = parse_path(arguments, "FROM:") else {
            return self.error("501 5.5.4 Syntax: MAIL FROM:<address>").await;
        };
        let declared_size = parameters.split_whitespace().find_map(|parameter| {
            let (key, value) = parameter.split_once('=')?;
            key.eq_ignore_ascii_case("SIZE")
                .then(|| value.parse::<u64>().ok())
                .flatten()
        });
        if declared_size.is_some_and(|size| size > self.config.max_message_bytes as u64) {
            self.state.simulation(Provider::Smtp).reject().await;
            return self
                .error("552 5.3.4 Message size exceeds fixed maximum message size")
                .await;
        }
        self.sender = Some(sender);
        self.reply("250 2.1.0 Ok").await?;
        Ok(Flow::Continue)
    }

    async fn rcpt(&mut self, arguments: &str) -> io::Result<Flow> {
        if self.sender.is_none() {
            return self.error("503 5.5.1 Error: need MAIL command").await;
        }
        let Some((recipient, _parameters)) = parse_path(arguments, "TO:") else {
            return self.error("501 5.5.4 Syntax: RCPT TO:<address>").await;
        };
        if recipient.is_empty() {
            return self.error("501 5.1.3 Bad recipient address syntax").await;
        }
        if self.recipients.len() >= self.config.max_recipients {
            return self.error("452 4.5.3 Error: too many recipients").await;
        }
        if is_bounce(&recipient) {
            self.state.simulation(Provider::Smtp).reject().await;
            let line = format!(
                "550 5.1.1 <{}>: mailbox unavailable",
                single_line(&recipient)
            );
            return self.error(&line).await;
        }
        self.recipients.push(recipient);
        self.reply("250 2.1.5 Ok").await?;
        Ok(Flow::Continue)
    }

    async fn data(&mut self, arguments: &str) -> io::Result<Flow> {
        if !arguments.is_empty() {
            return self.error("501 5.5.4 Syntax: DATA").await;
        }
        if self.sender.is_none() {
            return self.error("503 5.5.1 Error: need MAIL command").await;
        }
        if self.recipients.is_empty() {
            return self.error("503 5.5.1 Error: need RCPT command").await;
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
        let max = self.config.max_message_bytes;
        let mut message = Vec::new();
        let (mut too_big, mut too_long) = (false, false);
        loop {
            match self.next_line().await? {
                None => return Ok(Flow::Close),
                Some(Input::TooLong) => too_long = true,
                Some(Input::Line(line)) => {
                    if line == b"." {
                        break;
                    }
                    let line = line.strip_prefix(b".".as_slice()).unwrap_or(&line);
                    if too_big || too_long {
                        continue;
                    }
                    if message.len() + line.len() + 2 > max {
                        too_big = true;
                        message = Vec::new();
                    } else {
                        message.extend_from_slice(line);
                        message.extend_from_slice(b"\r\n");
                    }
                }
            }
        }
        if too_big || too_long {
            self.reset_transaction();
            self.state.simulation(Provider::Smtp).reject().await;
            let line = if too_big {
                "552 5.3.4 Message size exceeds fixed maximum message size"
            } else {
                "500 5.5.2 Error: message line too long"
            };
            return self.error(line).await;
        }
        let recipients = self.recipients.join(",");
        self.reset_transaction();
        self.deliver(&message, recipients).await
    }

    /// The end of DATA: the behaviour decides, an accepted message is recorded.
    async fn deliver(&mut self, message: &[u8], recipient: String) -> io::Result<Flow> {
        let parsed = message::parse(message);
        let queue_id = queue_id();
        let record = DeliveryRecord {
            subject: parsed.subject,
            body: Some(parsed.body),
            provider_message_id: Some(queue_id.clone()),
            ..DeliveryRecord::new(Provider::Smtp, parsed.delivery_id, recipient, Utc::now())
        };
        let admission = self
            .state
            .simulation(Provider::Smtp)
            .admit(move || vec![record])
            .await;
        let (line, flow) = match admission {
            Admission::Accepted => (format!("250 2.0.0 Ok: queued as {queue_id}"), Flow::Continue),
            Admission::Replayed {
                original_message_id,
            } => (
                format!(
                    "250 2.0.0 Ok: queued as {}",
                    original_message_id.unwrap_or(queue_id)
                ),
                Flow::Continue,
            ),
            Admission::Fault {
                kind: FaultKind::ServerError,
                ..
            } => (
                "451 4.3.0 Error: internal server error, try again later".to_owned(),
                Flow::Continue,
            ),
            Admission::Fault {
                kind: FaultKind::RateLimit,
                retry_after,
            } => (
                format!(
                    "421 4.7.0 {HOSTNAME} Error: too many messages, retry after {}; closing connection",
                    single_line(&retry_after)
                ),
                Flow::Close,
            ),
            Admission::Fault {
                kind: FaultKind::Timeout,
                ..
            } => (
                "451 4.4.2 Error: timeout while queueing the message, try again later".to_owned(),
                Flow::Continue,
            ),
        };
        self.reply(&line).await?;
        Ok(flow)
    }

    async fn auth(&mut self, arguments: &str) -> io::Result<Flow> {
        if !self.greeted {
            return self.error("503 5.5.1 Error: send HELO/EHLO first").await;
        }
        if self.authenticated {
            return self.error("503 5.5.1 Error: already authenticated").await;
        }
        if self.sender.is_some() {
            return self
                .error("503 5.5.1 Error: MAIL transaction in progress")
                .await;
        }
        let (mechanism, initial) = match arguments.split_once(' ') {
            Some((mechanism, initial)) => (mechanism, Some(initial.trim().to_owned())),
            None => (arguments, None),
        };
        let user = match mechanism.to_ascii_uppercase().as_str() {
            "PLAIN" => {
                let response = match initial {
                    Some(response) => response,
                    None => match self.challenge("334 ").await? {
                        Some(response) => response,
                        None => return Ok(Flow::Close),
                    },
                };
                if response == "*" {
                    return self.error("501 5.7.0 Authentication aborted").await;
                }
                // `authzid NUL authcid NUL password`
                decode_base64(&response).and_then(|decoded| {
                    let mut fields = decoded.split(|&byte| byte == 0);
                    let _authorization = fields.next()?;
                    let user = fields.next()?;
                    fields.next()?;
                    Some(String::from_utf8_lossy(user).into_owned())
                })
            }
            "LOGIN" => {
                let user = match initial {
                    Some(user) => user,
                    None => match self.challenge("334 VXNlcm5hbWU6").await? {
                        Some(user) => user,
                        None => return Ok(Flow::Close),
                    },
                };
                let Some(_password) = self.challenge("334 UGFzc3dvcmQ6").await? else {
                    return Ok(Flow::Close);
                };
                if user == "*" {
                    return self.error("501 5.7.0 Authentication aborted").await;
                }
                decode_base64(&user).map(|user| String::from_utf8_lossy(&user).into_owned())
            }
            _ => {
                return self
                    .error("504 5.5.4 Error: unrecognized authentication type")
                    .await
            }
        };
        match user {
            None => self.error("501 5.5.2 Error: cannot decode response").await,
            Some(user) if user == INVALID_USER => {
                self.error("535 5.7.8 Error: authentication failed").await
            }
            Some(_) => {
                self.authenticated = true;
                self.reply("235 2.7.0 Authentication successful").await?;
                Ok(Flow::Continue)
            }
        }
    }

    /// Sends an `AUTH` challenge and reads the answer line; `None` when the connection ends.
    async fn challenge(&mut self, line: &str) -> io::Result<Option<String>> {
        self.reply(line).await?;
        Ok(match self.next_line().await? {
            None => None,
            Some(Input::TooLong) => Some(String::new()),
            Some(Input::Line(line)) => Some(String::from_utf8_lossy(&line).into_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_on_lf_without_their_endings_and_bounded() {
        let mut input: &[u8] = b"EHLO a\r\nNOOP\n.\r\n";
        let mut reader = BufReader::with_capacity(3, &mut input);
        let mut lines = Vec::new();
        while let Some(line) = read_line(&mut reader, 10).await.unwrap() {
            match line {
                Input::Line(line) => lines.push(String::from_utf8(line).unwrap()),
                Input::TooLong => lines.push("<too long>".to_owned()),
            }
        }
        assert_eq!(lines, ["EHLO a", "NOOP", "."]);

        let mut input: &[u8] = b"0123456789\r\n0123456789A\r\nok\r\npartial";
        let mut reader = BufReader::with_capacity(4, &mut input);
        assert!(matches!(
            read_line(&mut reader, 10).await.unwrap(),
            Some(Input::Line(_))
        ));
        assert!(matches!(
            read_line(&mut reader, 10).await.unwrap(),
            Some(Input::TooLong)
        ));
        assert!(
            matches!(read_line(&mut reader, 10).await.unwrap(), Some(Input::Line(line)) if line == b"ok")
        );
        assert!(read_line(&mut reader, 10).await.unwrap().is_none());
    }

    #[test]
    fn paths_are_read_with_or_without_angle_brackets() {
        assert_eq!(
            parse_path("FROM:<a@b.c> SIZE=10 BODY=8BITMIME", "FROM:"),
            Some(("a@b.c".to_owned(), " SIZE=10 BODY=8BITMIME"))
        );
        assert_eq!(parse_path("from: <>", "FROM:"), Some((String::new(), "")));
        assert_eq!(parse_path("TO:x@y", "TO:"), Some(("x@y".to_owned(), "")));
        assert_eq!(parse_path("TO:<x@y", "TO:"), None);
        assert_eq!(parse_path("FROM:", "FROM:"), None);
        assert_eq!(parse_path("é", "FROM:"), None);
        assert!(is_bounce("bounce@example.com"));
        assert!(is_bounce("BOUNCE@example.com"));
        assert!(!is_bounce("bouncer@example.com"));
    }
}
