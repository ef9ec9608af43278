//! The replication connection: a thin I/O layer that moves PostgreSQL protocol frames.
//!
//! `tokio-postgres` cannot open a *replication* connection (it rejects the
//! `replication=database` startup option and has no CopyBoth mode), so this module speaks the
//! frontend/backend protocol itself, using `postgres-protocol` to encode and parse messages:
//!
//! ```text
//! client                                   server
//! StartupMessage(user, database, replication=database) ->
//!                                          <- Authentication (SASL SCRAM-SHA-256 | MD5 | cleartext | ok)
//!                                          <- ParameterStatus*, BackendKeyData, ReadyForQuery
//! Query("IDENTIFY_SYSTEM")              ->
//!                                          <- RowDescription, DataRow*, CommandComplete, ReadyForQuery
//! Query("START_REPLICATION SLOT ...")   ->
//!                                          <- CopyBothResponse ('W')
//!                                          <- CopyData('d', XLogData | keepalive) ...
//! CopyData('d', standby status update)  ->
//! ```
//!
//! `postgres-protocol` does not parse CopyBothResponse ('W'), so frames are cut here: one tag
//! byte, an Int32 length that counts itself, the body. The CopyData payloads (XLogData,
//! keepalives) are decoded by [`super::protocol`], which does no I/O.

use std::io;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::{backend, frontend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Where and how to connect, taken from a `postgres://` URL.
#[derive(Debug, Clone)]
pub struct ConnectionTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
}

impl ConnectionTarget {
    /// Parses a `postgres://user:password@host:port/database` URL (or key=value string).
    pub fn from_url(url: &str) -> Result<Self, ConnectionError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| ConnectionError::BadUrl(format!("{e}")))?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            Some(_) => {
                return Err(ConnectionError::BadUrl(
                    "unix sockets are not supported; use a TCP host".into(),
                ))
            }
            None => "127.0.0.1".to_string(),
        };
        let user = config
            .get_user()
            .ok_or_else(|| ConnectionError::BadUrl("the URL names no user".into()))?
            .to_string();
        Ok(ConnectionTarget {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            database: config.get_dbname().unwrap_or(&user).to_string(),
            password: config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            user,
        })
    }

    /// `host:port/database`, for messages (never the password).
    pub fn describe(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }
}

/// What can go wrong on the replication connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    #[error("connection to PostgreSQL failed: {0}")]
    Io(#[from] io::Error),
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("{}", .0)]
    Server(ServerError),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("the server closed the connection")]
    Closed,
    /// Nothing arrived for too long: the server (or the network to it) is silently gone.
    #[error("no answer from the server: {0}")]
    Timeout(String),
}

/// An ErrorResponse from the server, with its SQLSTATE code so callers can branch on it.
#[derive(Debug, Clone, Default)]
pub struct ServerError {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " (detail: {detail})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl ServerError {
    fn from_fields(fields: backend::ErrorFields<'_>) -> Self {
        let mut error = ServerError::default();
        let mut fields = fields;
        while let Ok(Some(field)) = fields.next() {
            let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
            match field.type_() {
                b'S' => error.severity = value,
                b'C' => error.code = value,
                b'M' => error.message = value,
                b'D' => error.detail = Some(value),
                b'H' => error.hint = Some(value),
                _ => {}
            }
        }
        error
    }
}

/// One row of a simple-query result: column names and text values.
#[derive(Debug, Clone, Default)]
pub struct SimpleRow {
    pub columns: Vec<String>,
    pub values: Vec<Option<String>>,
}

impl SimpleRow {
    /// The value of column `name` (None when absent or NULL).
    pub fn get(&self, name: &str) -> Option<&str> {
        let index = self.columns.iter().position(|c| c == name)?;
        self.values.get(index)?.as_deref()
    }
}

const COPY_BOTH_RESPONSE_TAG: u8 = b'W';
const HEADER_LEN: usize = 5;

/// The receiving half: reads frames into a buffer. Reading is cancel-safe (bytes that arrived
/// stay in the buffer), so it can sit in a `tokio::select!` next to timers and acks.
pub struct FrameReader {
    socket: OwnedReadHalf,
    buffer: BytesMut,
}

/// One backend frame: its tag and its body (without the 5-byte header).
pub struct Frame {
    pub tag: u8,
    pub body: Bytes,
}

impl FrameReader {
    /// The next whole frame from the server.
    pub async fn next_frame(&mut self) -> Result<Frame, ConnectionError> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(frame);
            }
            self.buffer.reserve(64 * 1024);
            let read = self.socket.read_buf(&mut self.buffer).await?;
            if read == 0 {
                return Err(ConnectionError::Closed);
            }
        }
    }

    fn take_frame(&mut self) -> Result<Option<Frame>, ConnectionError> {
        if self.buffer.len() < HEADER_LEN {
            return Ok(None);
        }
        let tag = self.buffer[0];
        let len = i32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]);
        if len < 4 {
            return Err(ConnectionError::Protocol(format!(
                "frame '{}' with invalid length {len}",
                tag as char
            )));
        }
        let total = 1 + len as usize;
        if self.buffer.len() < total {
            self.buffer.reserve(total - self.buffer.len());
            return Ok(None);
        }
        let mut frame = self.buffer.split_to(total);
        frame.advance(HEADER_LEN);
        Ok(Some(Frame {
            tag,
            body: frame.freeze(),
        }))
    }
}

/// Parses a whole frame with `postgres-protocol` (which wants the 5-byte header back);
/// an ErrorResponse becomes [`ConnectionError::Server`].
fn parse_backend(frame: &Frame) -> Result<backend::Message, ConnectionError> {
    let mut whole = BytesMut::with_capacity(frame.body.len() + HEADER_LEN);
    whole.extend_from_slice(&[frame.tag]);
    whole.extend_from_slice(&((frame.body.len() + 4) as i32).to_be_bytes());
    whole.extend_from_slice(&frame.body);
    match backend::Message::parse(&mut whole)? {
        Some(backend::Message::ErrorResponse(body)) => Err(ConnectionError::Server(
            ServerError::from_fields(body.fields()),
        )),
        Some(message) => Ok(message),
        None => Err(ConnectionError::Protocol("incomplete message".into())),
    }
}

/// The sending half.
pub struct FrameWriter {
    socket: OwnedWriteHalf,
    buffer: BytesMut,
}

impl FrameWriter {
    /// Sends one CopyData message carrying `payload` (e.g. a standby status update).
    pub async fn send_copy_data(&mut self, payload: &[u8]) -> Result<(), ConnectionError> {
        self.buffer.clear();
        frontend::CopyData::new(payload)?.write(&mut self.buffer);
        self.socket.write_all(&self.buffer).await?;
        Ok(())
    }

    /// Ends the copy stream (CopyDone) and the session (Terminate).
    pub async fn finish(&mut self) -> Result<(), ConnectionError> {
        self.buffer.clear();
        frontend::copy_done(&mut self.buffer);
        frontend::terminate(&mut self.buffer);
        self.socket.write_all(&self.buffer).await?;
        self.socket.flush().await?;
        Ok(())
    }

    async fn send_buffer(&mut self) -> Result<(), ConnectionError> {
        self.socket.write_all(&self.buffer).await?;
        self.buffer.clear();
        Ok(())
    }
}

/// TCP keepalives: probe after 10 s of silence, every 5 s, give up after 3 unanswered probes;
/// and (Linux) drop the connection when sent data stays unacknowledged for `user_timeout`.
fn set_keepalives(socket: &TcpStream, user_timeout: Duration) -> io::Result<()> {
    let socket = socket2::SockRef::from(socket);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(5))
        .with_retries(3);
    socket.set_tcp_keepalive(&keepalive)?;
    #[cfg(target_os = "linux")]
    socket.set_tcp_user_timeout(Some(user_timeout))?;
    #[cfg(not(target_os = "linux"))]
    let _ = user_timeout;
    Ok(())
}

/// A replication connection in its command phase (before START_REPLICATION).
pub struct ReplicationConnection {
    reader: FrameReader,
    writer: FrameWriter,
    target: ConnectionTarget,
}

/// What arrives while streaming.
pub enum StreamFrame {
    /// A CopyData payload: XLogData or a primary keepalive, for [`super::protocol`].
    CopyData(Bytes),
    /// The server ended the copy stream.
    CopyDone,
}

impl ReplicationConnection {
    /// Connects with `replication=database` and authenticates (at most 60 s).
    pub async fn connect(
        target: &ConnectionTarget,
        application_name: &str,
    ) -> Result<Self, ConnectionError> {
        Self::connect_with_timeout(target, application_name, Duration::from_secs(60)).await
    }

    /// Connects and authenticates within `timeout`. The socket gets TCP keepalives (and a TCP
    /// user timeout of `timeout`), so a peer that vanished without a word is noticed even while
    /// the reader only waits (the stream loop adds its own check: a frame within `timeout`).
    pub async fn connect_with_timeout(
        target: &ConnectionTarget,
        application_name: &str,
        timeout: Duration,
    ) -> Result<Self, ConnectionError> {
        tokio::time::timeout(
            timeout,
            Self::connect_now(target, application_name, timeout),
        )
        .await
        .map_err(|_| {
            ConnectionError::Timeout(format!(
                "{} did not complete the login within {timeout:?}",
                target.describe()
            ))
        })?
    }

    async fn connect_now(
        target: &ConnectionTarget,
        application_name: &str,
        timeout: Duration,
    ) -> Result<Self, ConnectionError> {
        let socket = TcpStream::connect((target.host.as_str(), target.port)).await?;
        socket.set_nodelay(true)?;
        set_keepalives(&socket, timeout)?;
        let (read, write) = socket.into_split();
        let mut connection = ReplicationConnection {
            reader: FrameReader {
                socket: read,
                buffer: BytesMut::with_capacity(256 * 1024),
            },
            writer: FrameWriter {
                socket: write,
                buffer: BytesMut::with_capacity(1024),
            },
            target: target.clone(),
        };
        let params = [
            ("user", target.user.as_str()),
            ("database", target.database.as_str()),
            ("replication", "database"),
            ("application_name", application_name),
            ("client_encoding", "UTF8"),
        ];
        frontend::startup_message(params.iter().copied(), &mut connection.writer.buffer)?;
        connection.writer.send_buffer().await?;
        connection.authenticate().await?;
        connection.wait_until_ready().await?;
        Ok(connection)
    }

    /// The target this connection talks to.
    pub fn target(&self) -> &ConnectionTarget {
        &self.target
    }

    async fn next_message(&mut self) -> Result<backend::Message, ConnectionError> {
        let frame = self.reader.next_frame().await?;
        if frame.tag == COPY_BOTH_RESPONSE_TAG {
            return Err(ConnectionError::Protocol(
                "unexpected CopyBothResponse".into(),
            ));
        }
        parse_backend(&frame)
    }

    async fn authenticate(&mut self) -> Result<(), ConnectionError> {
        let target = self.target.clone();
        let password = || {
            target.password.clone().ok_or_else(|| {
                ConnectionError::Auth(format!(
                    "the server asks for a password for user {} but DATABASE_URL has none",
                    target.user
                ))
            })
        };
        match self.next_message().await? {
            backend::Message::AuthenticationOk => return Ok(()),
            backend::Message::AuthenticationCleartextPassword => {
                let password = password()?;
                frontend::password_message(password.as_bytes(), &mut self.writer.buffer)?;
                self.writer.send_buffer().await?;
            }
            backend::Message::AuthenticationMd5Password(body) => {
                let password = password()?;
                let hash = md5_hash(
                    self.target.user.as_bytes(),
                    password.as_bytes(),
                    body.salt(),
                );
                frontend::password_message(hash.as_bytes(), &mut self.writer.buffer)?;
                self.writer.send_buffer().await?;
            }
            backend::Message::AuthenticationSasl(body) => {
                let password = password()?;
                let mut mechanisms = body.mechanisms();
                let mut has_scram = false;
                while let Some(mechanism) = mechanisms.next()? {
                    has_scram |= mechanism == sasl::SCRAM_SHA_256;
                }
                if !has_scram {
                    return Err(ConnectionError::Auth(
                        "the server offers no SCRAM-SHA-256 (TLS-only methods are not supported)"
                            .into(),
                    ));
                }
                let mut scram = sasl::ScramSha256::new(
                    password.as_bytes(),
                    sasl::ChannelBinding::unsupported(),
                );
                frontend::sasl_initial_response(
                    sasl::SCRAM_SHA_256,
                    scram.message(),
                    &mut self.writer.buffer,
                )?;
                self.writer.send_buffer().await?;
                match self.next_message().await? {
                    backend::Message::AuthenticationSaslContinue(body) => {
                        scram.update(body.data())?
                    }
                    _ => return Err(ConnectionError::Auth("expected SASL continue".into())),
                }
                frontend::sasl_response(scram.message(), &mut self.writer.buffer)?;
                self.writer.send_buffer().await?;
                match self.next_message().await? {
                    backend::Message::AuthenticationSaslFinal(body) => {
                        scram.finish(body.data()).map_err(|e| {
                            ConnectionError::Auth(format!("server signature rejected: {e}"))
                        })?
                    }
                    _ => return Err(ConnectionError::Auth("expected SASL final".into())),
                }
            }
            _ => {
                return Err(ConnectionError::Auth(
                    "unsupported authentication method".into(),
                ))
            }
        }
        match self.next_message().await? {
            backend::Message::AuthenticationOk => Ok(()),
            _ => Err(ConnectionError::Auth("expected AuthenticationOk".into())),
        }
    }

    async fn wait_until_ready(&mut self) -> Result<(), ConnectionError> {
        loop {
            if let backend::Message::ReadyForQuery(_) = self.next_message().await? {
                return Ok(());
            }
        }
    }

    /// Runs one command with the simple-query protocol and returns its rows as text.
    /// Replication commands (IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT, ...) and SQL both work.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleRow>, ConnectionError> {
        frontend::query(sql, &mut self.writer.buffer)?;
        self.writer.send_buffer().await?;
        let mut columns: Vec<String> = Vec::new();
        let mut rows = Vec::new();
        let mut failure = None;
        loop {
            match self.next_message().await {
                Ok(backend::Message::RowDescription(body)) => {
                    columns = body.fields().map(|f| Ok(f.name().to_string())).collect()?;
                }
                Ok(backend::Message::DataRow(body)) => {
                    let buffer = body.buffer();
                    let values: Vec<Option<String>> = body
                        .ranges()
                        .map(|range| {
                            Ok(range.map(|r| String::from_utf8_lossy(&buffer[r]).into_owned()))
                        })
                        .collect()?;
                    rows.push(SimpleRow {
                        columns: columns.clone(),
                        values,
                    });
                }
                Ok(backend::Message::ReadyForQuery(_)) => break,
                Ok(_) => {}
                // The server still sends ReadyForQuery after an error: read up to it.
                Err(ConnectionError::Server(error)) => failure = Some(error),
                Err(other) => return Err(other),
            }
        }
        match failure {
            Some(error) => Err(ConnectionError::Server(error)),
            None => Ok(rows),
        }
    }

    /// Sends START_REPLICATION (`command`) and waits for CopyBothResponse; from then on the
    /// connection is two halves: frames in, status updates out.
    pub async fn start_streaming(
        mut self,
        command: &str,
    ) -> Result<(FrameReader, FrameWriter), ConnectionError> {
        frontend::query(command, &mut self.writer.buffer)?;
        self.writer.send_buffer().await?;
        loop {
            let frame = self.reader.next_frame().await?;
            match frame.tag {
                COPY_BOTH_RESPONSE_TAG => return Ok((self.reader, self.writer)),
                backend::ERROR_RESPONSE_TAG => {
                    parse_backend(&frame)?;
                }
                _ => {}
            }
        }
    }
}

impl FrameReader {
    /// The next CopyData payload (or the end of the stream) while streaming.
    pub async fn next_stream_frame(&mut self) -> Result<StreamFrame, ConnectionError> {
        loop {
            let frame = self.next_frame().await?;
            match frame.tag {
                backend::COPY_DATA_TAG => return Ok(StreamFrame::CopyData(frame.body)),
                backend::COPY_DONE_TAG => return Ok(StreamFrame::CopyDone),
                backend::ERROR_RESPONSE_TAG => {
                    parse_backend(&frame)?;
                    return Err(ConnectionError::Protocol(
                        "unparsable error response".into(),
                    ));
                }
                // Notices and parameter changes may arrive mid-stream: skip them.
                _ => continue,
            }
        }
    }
}
