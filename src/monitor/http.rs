//! The exporter's HTTP side: hyper on the exporter's one thread, a task per connection, so one
//! slow or hostile client never holds up another's scrape. Each connection is bounded: at most
//! [`MAX_CONNECTIONS`] at once (more wait to be accepted), a request head of at most
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
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_io_timeout::TimeoutStream;

/// Connections served at once: Prometheus servers, curl, a dashboard.
const MAX_CONNECTIONS: usize = 32;
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
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
                Ok((stream, _)) => connection(stream, Arc::clone(&exporter), slot),
                Err(e) => {
                    // Out of descriptors, say: try again later rather than spin.
                    eprintln!("mup-metrics: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Serves one connection in its own task; its slot is given back when it ends.
fn connection(stream: TcpStream, exporter: Arc<Exporter>, slot: OwnedSemaphorePermit) {
    let mut stream = TimeoutStream::new(stream);
    stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let io = TokioIo::new(Box::pin(stream));
    let service = hyper::service::service_fn(move |request| {
        let exporter = Arc::clone(&exporter);
        async move { Ok::<_, Infallible>(respond(&exporter, &request).await) }
    });
    tokio::spawn(async move {
        let served = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(READ_TIMEOUT)
            .max_header_size(MAX_HEAD)
            .max_headers(MAX_HEADERS)
            .max_buf_size(MAX_HEAD)
            .serve_connection(io, service)
            .await;
        // A client that goes away, or is timed out, is no news for the log.
        drop(served);
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
