//! The exporter's calls to its daemon: `getAllProcessInfo` within a deadline, one at a time,
//! over one connection per call (docs/supervisord.md §8) that is opened ahead, while the
//! exporter waits for the next scrape. A call on a fresh connection waits for one turn of
//! supervisord's main loop to accept it first; on the connection opened ahead that turn is
//! already taken (docs/monitoring.md, "Cost of a scrape"). Each connection is proven to reach
//! the daemon's own listening socket before the credentials are sent on it
//! ([`owner::connect_daemon`]): the daemon drops its port for a moment on a reload. The
//! request is written before the scrape reads /proc, and the answer is decoded piece by piece
//! as the daemon writes it.

use crate::deployment::owner;
use crate::supervisor::{self, Error, ProcessInfo};
use base64::Engine;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// How long opening a connection may take.
const CONNECT_WAIT: Duration = Duration::from_secs(1);

/// The largest answer read: `getAllProcessInfo` is about 1.4 KB per program.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The client side of this tree's daemon, proven before it was made (`Exporter::link`).
pub(super) struct Link {
    port: u16,
    /// The daemon's pid: every connection is proven to reach its listening socket.
    daemon: u32,
    authorization: HeaderValue,
    /// The daemon's descriptors last found holding its listening socket (the proof reads them
    /// first).
    listener_fds: std::sync::Mutex<Vec<u32>>,
    /// The connection for the next call; held while a call runs, so calls go one at a time.
    spare: Mutex<Option<TcpStream>>,
}

impl Link {
    pub(super) fn new(port: u16, daemon: u32, user: &str, password: &str) -> Link {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut authorization = HeaderValue::from_str(&format!("Basic {token}"))
            .expect("base64 is a valid header value");
        authorization.set_sensitive(true);
        Link {
            port,
            daemon,
            listener_fds: std::sync::Mutex::new(Vec::new()),
            authorization,
            spare: Mutex::new(None),
        }
    }

    /// `supervisor.getAllProcessInfo`, answered within `deadline` (waiting for a call still
    /// running included) or given up as a transport error.
    pub(super) async fn all_process_info(
        self: &Arc<Self>,
        deadline: Duration,
    ) -> supervisor::Result<Vec<ProcessInfo>> {
        let method = "supervisor.getAllProcessInfo";
        let answer = tokio::time::timeout(deadline, self.call(method)).await;
        // Whatever happened, the next call gets a connection opened now.
        let link = Arc::clone(self);
        tokio::spawn(async move { link.open_spare().await });
        answer.unwrap_or_else(|_| {
            Err(Error::Transport(format!(
                "no answer to {method} within {} s",
                deadline.as_secs()
            )))
        })
    }

    async fn call(&self, method: &str) -> supervisor::Result<Vec<ProcessInfo>> {
        let body = Bytes::from(supervisor::encode_call(method, Vec::new())?);
        let mut spare = self.spare.lock().await;
        if let Some(stream) = spare.take() {
            match self.exchange(stream, body.clone()).await {
                // A connection the daemon closed meanwhile (a reload): once more on a new one.
                Err(Exchange::Unsent(_)) => {}
                other => return other.map_err(Exchange::into_error).and_then(decode(method)),
            }
        }
        let stream = self.connect().await?;
        let answer = self.exchange(stream, body).await;
        drop(spare);
        answer
            .map_err(Exchange::into_error)
            .and_then(decode(method))
    }

    /// Keeps one connection open for the next call (nothing is sent on it until then). A
    /// loopback connect completes at once unless the daemon's accept queue is full (it has been
    /// stopped a long time): then there is no spare, nor when it is not proven the daemon's.
    async fn open_spare(&self) {
        let mut spare = self.spare.lock().await;
        if spare.is_none() {
            *spare = self.connect().await.ok();
        }
    }

    /// A new connection, proven to reach the daemon (on the blocking pool: the proof reads
    /// /proc and asks the kernel, off the thread that serves scrapes).
    async fn connect(&self) -> supervisor::Result<TcpStream> {
        let (daemon, port) = (self.daemon, self.port);
        let mut fds = self.listener_fds().clone();
        let (proven, fds) = tokio::task::spawn_blocking(move || {
            let stream =
                owner::connect_daemon(daemon, port, CONNECT_WAIT, &mut fds).and_then(|stream| {
                    stream
                        .set_nonblocking(true)
                        .map_err(|e| Error::Transport(e.to_string()))?;
                    Ok(stream)
                });
            (stream, fds)
        })
        .await
        .map_err(|e| Error::Transport(e.to_string()))?;
        *self.listener_fds() = fds;
        TcpStream::from_std(proven?).map_err(|e| Error::Transport(e.to_string()))
    }

    fn listener_fds(&self) -> std::sync::MutexGuard<'_, Vec<u32>> {
        self.listener_fds
            .lock()
            .expect("the descriptor list lock is never poisoned")
    }

    /// One POST on `stream`, then the connection is closed: the HTTP status and the answer.
    async fn exchange(&self, stream: TcpStream, body: Bytes) -> Result<Answer, Exchange> {
        stream.set_nodelay(true).map_err(Exchange::Unsent)?;
        let (mut sender, mut connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| Exchange::Unsent(std::io::Error::other(e)))?;
        let request = hyper::Request::post("/RPC2")
            .header(HOST, "127.0.0.1")
            .header(CONTENT_TYPE, "text/xml")
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONNECTION, "close")
            .body(Full::new(body))
            .expect("a static request is valid");
        // Queued now, so the connection's first turn writes it: what the scrape does next
        // (reading /proc) happens while the daemon works.
        let response = sender.send_request(request);
        let exchange = async {
            let response = response.await.map_err(|e| {
                if e.is_canceled() || e.is_incomplete_message() {
                    Exchange::Unsent(std::io::Error::other(e))
                } else {
                    Exchange::Failed(e.to_string())
                }
            })?;
            read_answer(response).await
        };
        tokio::pin!(exchange);
        // The connection is driven until the answer is read, then dropped (closed).
        tokio::select! {
            answer = &mut exchange => answer,
            _ = &mut connection => exchange.await,
        }
    }
}

/// The daemon's answer: its HTTP status, its body in the pieces it came in, and the process
/// infos decoded from them as they came (`None` when they are not a plain array of them).
struct Answer {
    status: u16,
    pieces: Vec<Bytes>,
    infos: Option<Vec<ProcessInfo>>,
}

/// Reads an answer of at most [`MAX_ANSWER`] bytes. supervisord writes it a few KiB per turn
/// of its main loop: a successful one is decoded piece by piece as it arrives, so little is
/// left to decode after its last piece.
async fn read_answer(response: hyper::Response<Incoming>) -> Result<Answer, Exchange> {
    let status = response.status().as_u16();
    let mut pieces = Vec::new();
    let mut failed = None;
    let body = Limited::new(response.into_body(), MAX_ANSWER)
        .into_data_stream()
        .inspect_ok(|piece| pieces.push(piece.clone()))
        .map_err(|e| {
            failed = Some(e.to_string());
            std::io::Error::other("the answer could not be read")
        });
    let mut reader = tokio_util::io::StreamReader::new(body);
    let infos = if status == 200 {
        supervisor::read_process_infos(&mut reader).await
    } else {
        None
    };
    // What the decoder left (all of an answer it does not decode) is read to its end.
    let drained = tokio::io::copy(&mut reader, &mut tokio::io::sink()).await;
    drop(reader);
    match (failed, drained) {
        (Some(e), _) => Err(Exchange::Failed(e)),
        (None, Err(e)) => Err(Exchange::Failed(e.to_string())),
        (None, Ok(_)) => Ok(Answer {
            status,
            pieces,
            infos,
        }),
    }
}

/// How an exchange failed: before the daemon answered anything (worth one more try on a new
/// connection: the call only reads), or after.
enum Exchange {
    Unsent(std::io::Error),
    Failed(String),
}

impl Exchange {
    fn into_error(self) -> Error {
        match self {
            Exchange::Unsent(e) => Error::Transport(e.to_string()),
            Exchange::Failed(m) => Error::Transport(m),
        }
    }
}

fn decode(method: &str) -> impl FnOnce(Answer) -> supervisor::Result<Vec<ProcessInfo>> + '_ {
    move |answer| {
        if let Some(infos) = answer.infos {
            return Ok(infos);
        }
        let body = answer.pieces.concat();
        let text = std::str::from_utf8(&body)
            .map_err(|e| Error::Transport(format!("answer to {method} is not UTF-8: {e}")))?;
        supervisor::all_process_info(method, answer.status, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A listener on the daemon's port that is not the daemon's gets no request: not even a
    /// byte, let alone the credentials.
    #[test]
    fn a_listener_not_the_daemons_gets_nothing() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // The daemon named is a process that holds no socket; this test holds the listener.
        let mut daemon = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .expect("sleep");
        let link = Arc::new(Link::new(port, daemon.id(), "user", "secret"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let answer = runtime.block_on(async {
            let answer = link.all_process_info(Duration::from_secs(2)).await;
            // Let the spare connection be tried too.
            tokio::time::sleep(Duration::from_millis(300)).await;
            answer
        });
        let _ = daemon.kill();
        let _ = daemon.wait();
        assert!(answer.is_err(), "{answer:?}");
        drop(runtime);
        listener.set_nonblocking(true).expect("nonblocking");
        let mut connections = 0;
        while let Ok((mut connection, _)) = listener.accept() {
            connections += 1;
            connection.set_nonblocking(false).expect("blocking");
            connection
                .set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            let mut received = Vec::new();
            let _ = connection.read_to_end(&mut received);
            assert_eq!(String::from_utf8_lossy(&received), "");
        }
        // The proof connects, then finds the listener is not the daemon's.
        assert!(connections > 0);
    }
}
