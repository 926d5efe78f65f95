//! The exporter's calls to its daemon: `getAllProcessInfo` within a deadline, one at a time,
//! over one connection per call (docs/supervisord.md §8) that is opened ahead, while the
//! exporter waits for the next scrape. A call on a fresh connection waits for one turn of
//! supervisord's main loop to accept it first; on the connection opened ahead that turn is
//! already taken (docs/monitoring.md, "Cost of a scrape"). Each connection is proven to reach
//! the daemon's own listening socket before the credentials are sent on it
//! ([`owner::connect_daemon`]): the daemon drops its port for a moment on a reload. The
//! request is written before the scrape reads /proc, and the answer is decoded piece by piece
//! as the daemon writes it, on the blocking pool (the other core).

use crate::deployment::owner;
use crate::supervisor::{self, Error, ProcessInfo};
use base64::Engine;
use bytes::Bytes;
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

/// Answers of at most this size (about 25 programs) are decoded after their last piece, on
/// the exporter's thread: handing a few pieces to another thread costs about what decoding
/// them does (0.09 ms for the 15 KB of 12 programs).
const DECODE_AT_ONCE: u64 = 32 * 1024;

/// The one call the exporter makes.
const METHOD: &str = "supervisor.getAllProcessInfo";

/// The largest answer read: `getAllProcessInfo` is about 1.4 KB per program.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The client side of this tree's daemon, proven before it was made (`Exporter::link`).
pub(super) struct Link {
    port: u16,
    /// The daemon's pid: every connection is proven to reach its listening socket.
    daemon: u32,
    authorization: HeaderValue,
    /// The request's body, encoded once: the call is always the same.
    request: Bytes,
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
        let request =
            supervisor::encode_call(METHOD, Vec::new()).expect("a call without parameters encodes");
        Link {
            port,
            daemon,
            listener_fds: std::sync::Mutex::new(Vec::new()),
            authorization,
            request: Bytes::from(request),
            spare: Mutex::new(None),
        }
    }

    /// `supervisor.getAllProcessInfo`, answered within `deadline` (waiting for a call still
    /// running included) or given up as a transport error.
    pub(super) async fn all_process_info(
        self: &Arc<Self>,
        deadline: Duration,
    ) -> supervisor::Result<Vec<ProcessInfo>> {
        let method = METHOD;
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
        let body = self.request.clone();
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
/// of its main loop: a successful one is decoded piece by piece as it arrives (on the
/// blocking pool, the other core), so little is left to decode after its last piece.
async fn read_answer(response: hyper::Response<Incoming>) -> Result<Answer, Exchange> {
    let status = response.status().as_u16();
    let small = hyper::body::Body::size_hint(response.body())
        .exact()
        .is_some_and(|n| n <= DECODE_AT_ONCE);
    let (to_decoder, decoder) = if status == 200 && !small {
        let (to_decoder, arriving) = std::sync::mpsc::channel();
        let decoder = tokio::task::spawn_blocking(move || {
            supervisor::read_process_infos(Arriving::new(arriving))
        });
        (Some(to_decoder), Some(decoder))
    } else {
        (None, None)
    };
    let mut body = Limited::new(response.into_body(), MAX_ANSWER);
    let mut pieces = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Exchange::Failed(e.to_string()))?;
        if let Ok(piece) = frame.into_data() {
            if let Some(to_decoder) = &to_decoder {
                // A decoder that gave up (not a plain array): the answer is decoded again.
                let _ = to_decoder.send(piece.clone());
            }
            pieces.push(piece);
        }
    }
    // The end of the answer for the decoder.
    drop(to_decoder);
    let infos = match decoder {
        Some(decoder) => decoder.await.ok().flatten(),
        None => None,
    };
    Ok(Answer {
        status,
        pieces,
        infos,
    })
}

/// The pieces of an answer, read by the decoder as they arrive; it ends when the sender is
/// dropped (the whole answer was read, or the call was given up).
struct Arriving {
    pieces: std::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Arriving {
    fn new(pieces: std::sync::mpsc::Receiver<Bytes>) -> Arriving {
        Arriving {
            pieces,
            current: Bytes::new(),
        }
    }
}

impl std::io::Read for Arriving {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = std::io::BufRead::fill_buf(self)?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        std::io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl std::io::BufRead for Arriving {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.current.is_empty() {
            match self.pieces.recv() {
                Ok(piece) => self.current = piece,
                Err(_) => break,
            }
        }
        Ok(&self.current)
    }

    fn consume(&mut self, n: usize) {
        bytes::Buf::advance(&mut self.current, n);
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

    /// The decoder reads the pieces as they are handed over, and an answer given up half-way
    /// (the sender dropped: the deadline passed) ends it instead of leaving it waiting.
    #[test]
    fn the_decoder_takes_pieces_as_they_come_and_ends_when_the_call_is_given_up() {
        let member =
            |n: &str, v: &str| format!("<member><name>{n}</name><value>{v}</value></member>");
        let fields: String = [
            ("name", "<string>mongod-1</string>"),
            ("group", "<string>rs0</string>"),
            ("state", "<int>20</int>"),
            ("statename", "<string>RUNNING</string>"),
            ("pid", "<int>42</int>"),
            ("start", "<int>1700000000</int>"),
            ("stop", "<int>0</int>"),
            ("now", "<int>1700000042</int>"),
        ]
        .into_iter()
        .map(|(n, v)| member(n, v))
        .collect();
        let text = format!(
            "<?xml version='1.0'?>\n<methodResponse><params><param><value><array><data>\n<value><struct>{fields}</struct></value>\n</data></array></value></param></params></methodResponse>\n"
        );
        // Hands `pieces` over one by one, then drops the sender (the answer's end, or the
        // call given up).
        let decode = |pieces: &[Bytes]| {
            let (sending, arriving) = std::sync::mpsc::channel();
            let decoder =
                std::thread::spawn(move || supervisor::read_process_infos(Arriving::new(arriving)));
            for p in pieces {
                sending.send(p.clone()).expect("the decoder waits for more");
            }
            drop(sending);
            decoder.join().expect("the decoder ends")
        };
        let pieces: Vec<Bytes> = text
            .as_bytes()
            .chunks(5)
            .map(Bytes::copy_from_slice)
            .collect();
        let infos = decode(&pieces).expect("decoded");
        assert_eq!((infos.len(), infos[0].pid), (1, 42));
        assert_eq!(decode(&pieces[..pieces.len() / 2]), None);
    }

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
