//! The exporter's HTTP side: hyper on the exporter's one thread, a task per connection, so one
//! slow or hostile client never holds up another's scrape. Each connection is bounded: at most
//! [`MAX_OPEN`] open (more wait to be accepted); beyond [`MAX_CONNECTIONS`] the oldest idle
//! ones (no request being answered) are closed to make room, so clients that hold connections
//! without completing a request cannot keep a scrape waiting. A request head of at most
//! [`MAX_HEAD`] bytes and [`MAX_HEADERS`] fields (answered 431), read within
//! [`READ_TIMEOUT`] (idle keep-alive included), and an answer whose writing makes no progress
//! for [`WRITE_TIMEOUT`] ends the connection (a client that sends requests and never reads).

use super::exporter::Exporter;
use super::series::Format;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_io_timeout::TimeoutStream;

/// Connections kept open when others arrive: Prometheus servers, curl, a dashboard. Beyond
/// it, the oldest idle connections are closed.
const MAX_CONNECTIONS: usize = 32;
/// Connections open at once, idle or not; more wait to be accepted until one ends.
const MAX_OPEN: usize = 256;
/// The request line and the header fields: a scrape's are a few hundred bytes. Also the
/// connection's read buffer (hyper's smallest allowed).
const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;
/// Until a request head is complete, from the connection's start or its previous answer.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Without progress while writing an answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// OpenMetrics text, which a Prometheus server asks for first.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `listener` until the daemon that started the exporter is gone.
pub(super) async fn serve(
    listener: std::net::TcpListener,
    exporter: Arc<Exporter>,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(Semaphore::new(MAX_OPEN));
    let open = Arc::new(Open::default());
    let parent = std::os::unix::process::parent_id();
    let mut watch = tokio::time::interval(Duration::from_secs(1));
    loop {
        let accepted = async {
            let slot = Arc::clone(&slots)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            (slot, listener.accept().await)
        };
        tokio::select! {
            _ = watch.tick() => {
                // Started by the daemon: once it is gone (the exporter was reparented), so is
                // the job.
                if std::os::unix::process::parent_id() != parent {
                    return Ok(());
                }
            }
            (slot, accepted) = accepted => match accepted {
                Ok((stream, _)) => {
                    connection(stream, Arc::clone(&exporter), Arc::clone(&open), slot);
                }
                Err(e) => {
                    // Out of descriptors, say: try again later rather than spin.
                    logln!("mup-metrics: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// The open connections by age (the order they were accepted in): whether each is answering a
/// request, and how to tell it to close.
#[derive(Default)]
struct Open {
    /// The next connection's number, and the open ones by number.
    next: Mutex<(u64, BTreeMap<u64, Registered>)>,
}

/// Whether a connection is answering a request, and how to tell it to close.
type Registered = (Arc<AtomicBool>, oneshot::Sender<()>);

impl Open {
    /// Registers a new connection, then closes the oldest idle others while more than
    /// [`MAX_CONNECTIONS`] are open. The new one is spared: its request is yet to come.
    fn add(&self, busy: Arc<AtomicBool>) -> (u64, oneshot::Receiver<()>) {
        let (evict, evicted) = oneshot::channel();
        let mut guard = self.next.lock().expect("no task panics holding the lock");
        let (next, open) = &mut *guard;
        let id = *next;
        *next += 1;
        open.insert(id, (busy, evict));
        let excess = open.len().saturating_sub(MAX_CONNECTIONS);
        let idle: Vec<u64> = open
            .iter()
            .filter(|(old, (busy, _))| **old != id && !busy.load(Ordering::SeqCst))
            .map(|(old, _)| *old)
            .take(excess)
            .collect();
        for old in idle {
            if let Some((_, evict)) = open.remove(&old) {
                // The connection may have ended meanwhile: nothing to tell.
                let _ = evict.send(());
            }
        }
        (id, evicted)
    }

    /// Forgets a connection that ended (a no-op for one closed to make room).
    fn remove(&self, id: u64) {
        let mut guard = self.next.lock().expect("no task panics holding the lock");
        guard.1.remove(&id);
    }
}

/// Serves one connection in its own task until it ends or is closed to make room for another;
/// its slot is given back when it ends. It is busy (never closed to make room) from the moment
/// a request reaches the service until the answer has been produced.
fn connection(
    stream: TcpStream,
    exporter: Arc<Exporter>,
    open: Arc<Open>,
    slot: OwnedSemaphorePermit,
) {
    let mut stream = TimeoutStream::new(stream);
    stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let io = TokioIo::new(Box::pin(stream));
    let busy = Arc::new(AtomicBool::new(false));
    let (id, evicted) = open.add(Arc::clone(&busy));
    let service = hyper::service::service_fn(move |request| {
        let exporter = Arc::clone(&exporter);
        let busy = Arc::clone(&busy);
        async move {
            busy.store(true, Ordering::SeqCst);
            let answer = respond(&exporter, &request).await;
            busy.store(false, Ordering::SeqCst);
            Ok::<_, Infallible>(answer)
        }
    });
    tokio::spawn(async move {
        let served = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(READ_TIMEOUT)
            .max_header_size(MAX_HEAD)
            .max_headers(MAX_HEADERS)
            .max_buf_size(MAX_HEAD)
            .serve_connection(io, service);
        tokio::select! {
            // A client that goes away, or is timed out, is no news for the log.
            served = served => drop(served),
            // Closed to make room: dropping the connection closes its socket.
            _ = evicted => {}
        }
        open.remove(id);
        drop(slot);
    });
}

async fn respond<B>(exporter: &Exporter, request: &Request<B>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut answer = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
        answer
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return answer;
    }
    match request.uri().path() {
        "/metrics" => {
            let format = format_of(request);
            let body = exporter.scrape(format).await;
            let mut answer = Response::new(Full::new(Bytes::from(body)));
            answer
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type(format)));
            answer
        }
        "/" => text(
            StatusCode::OK,
            format!(
                "mup exporter of cluster {}: see /metrics\n",
                exporter.cluster()
            ),
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    answer
}

/// OpenMetrics when the scraper accepts it (a Prometheus server), else Prometheus text.
fn format_of<B>(request: &Request<B>) -> Format {
    let wants_openmetrics = request.headers().get_all(ACCEPT).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.contains("application/openmetrics-text"))
    });
    if wants_openmetrics {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

fn content_type(format: Format) -> &'static str {
    match format {
        Format::OpenMetrics => OPENMETRICS,
        Format::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
    }
}
