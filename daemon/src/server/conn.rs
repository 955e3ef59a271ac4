//! One connection: check the peer, then read frames under a deadline and answer
//! each. A malformed frame gets an error reply and the connection is closed.
//! The module keeps one connection across a login's phases, so a connection
//! may wait between frames; it is closed quietly when it has waited too long
//! or outlived its whole-life deadline, and only then: never with a request
//! read and unanswered, which the module could not tell from one never read.

use super::handler;
use super::limits::{Limits, Slot};
use super::peer::Peer;
use super::Door;
use crate::logline::quote;
use crate::service::Warden;
use crate::time::Time;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use warden_proto::{
    body_len, decode_request, encode_frame, encode_frame_up_to, encode_response, header_error,
    ErrorCode, FrameError, ResponseBody, HEADER, MAX_ADMIN_FRAME, MAX_FRAME,
};

/// How long a peer has to send the rest of a frame it has begun, or to read our
/// answer. The module sends its frame at once, so only a stalled or hostile
/// client hits this.
const FRAME_DEADLINE: Duration = Duration::from_secs(2);

/// How long a connection may wait for its next frame: about a password
/// prompt's time. A module whose connection was closed meanwhile opens
/// another; a place in the pool is never held for long by a prompt an
/// attacker leaves open.
pub const IDLE: Duration = Duration::from_secs(10);

/// After this, a connection takes no new request, whatever it sends: only a
/// client dripping frames to hold a place ever meets it.
pub const PEER_LIFETIME: Duration = Duration::from_secs(10);
pub const ROOT_LIFETIME: Duration = Duration::from_secs(60);

pub async fn handle(stream: UnixStream, door: Door, warden: Arc<Warden>, limits: Arc<Limits>) {
    let uid = match stream.peer_cred() {
        Ok(cred) => cred.uid(),
        Err(e) => {
            warden
                .log()
                .warn(&format!("peer-unknown error={}", quote(&e.to_string())));
            return;
        }
    };
    // The root socket is 0600 in a root-owned directory; this is the second lock.
    if door == Door::Root && uid != 0 {
        warden
            .log()
            .warn(&format!("refused-peer uid={uid} op=root-socket"));
        return;
    }
    let lifetime = if uid == 0 {
        ROOT_LIFETIME
    } else {
        PEER_LIFETIME
    };
    let end = tokio::time::Instant::now() + lifetime;
    serve(stream, uid, end, warden, limits).await;
}

async fn serve(
    mut stream: UnixStream,
    uid: u32,
    end: tokio::time::Instant,
    warden: Arc<Warden>,
    limits: Arc<Limits>,
) {
    let Some(slot) = limits.acquire(uid) else {
        let _ = reply_error(
            &mut stream,
            ErrorCode::Busy,
            "too many connections from this uid; try again",
        )
        .await;
        return;
    };
    let peer = if uid == 0 {
        Peer::Root
    } else {
        tokio::task::spawn_blocking(move || Peer::lookup(uid))
            .await
            .unwrap_or(Peer::User { uid, name: None })
    };
    while let Some(body) = next_frame(&mut stream, &slot, end).await {
        if !peer.is_root() && !warden.peer_may_ask(uid, Time::now()) {
            let _ = reply_error(
                &mut stream,
                ErrorCode::Busy,
                "too many requests from this uid; slow down",
            )
            .await;
            return;
        }
        let request = match decode_request(&body) {
            Ok(r) => r,
            Err((code, message)) => {
                warden.log().warn(&format!(
                    "bad-request uid={} code={code:?} error={}",
                    peer.uid(),
                    quote(&message)
                ));
                let _ = reply_error(&mut stream, code, &message).await;
                return;
            }
        };
        let Some(response) = handler::handle(&warden, &peer, request).await else {
            continue;
        };
        let fatal = matches!(response, ResponseBody::Error { .. });
        if write(&mut stream, response).await.is_err() || fatal {
            return;
        }
    }
}

/// The next frame's body; `None` once the connection is to close. Waiting for
/// a frame to begin ends quietly (at the idle or whole-life bound, or when the
/// pool is crowded); a frame begun and not finished, or too large, gets an
/// error reply first.
async fn next_frame(
    stream: &mut UnixStream,
    slot: &Slot,
    end: tokio::time::Instant,
) -> Option<Vec<u8>> {
    let now = tokio::time::Instant::now();
    if now >= end {
        return None;
    }
    // The first byte is read rather than awaited as readiness, which stays
    // set after a read that emptied the socket. The read is cancel-safe, so
    // a crowded pool closing the connection loses nothing sent.
    let mut first = [0u8; 1];
    tokio::select! {
        read = tokio::time::timeout_at(end.min(now + IDLE), stream.read(&mut first)) => match read {
            Ok(Ok(1)) => {}
            Ok(Ok(_)) | Ok(Err(_)) | Err(_) => return None,
        },
        () = slot.crowded() => return None,
    }
    let (code, message) =
        match tokio::time::timeout(FRAME_DEADLINE, read_frame(stream, first[0])).await {
            Ok(Ok(body)) => return Some(body),
            Ok(Err(FrameError::Closed)) => return None,
            Err(_) => (
                ErrorCode::Malformed,
                "frame not received in time".to_string(),
            ),
            Ok(Err(FrameError::TooLarge(n))) => (
                ErrorCode::TooLarge,
                format!("frame of {n} bytes is over the limit"),
            ),
            Ok(Err(e)) => (ErrorCode::Malformed, e.to_string()),
        };
    let _ = reply_error(stream, code, &message).await;
    None
}

/// The rest of a frame whose first byte is `first`: the async side of
/// `warden_proto`'s codec, with the same checks.
async fn read_frame(stream: &mut UnixStream, first: u8) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; HEADER];
    header[0] = first;
    stream
        .read_exact(&mut header[1..])
        .await
        .map_err(header_error)?;
    let mut body = vec![0u8; body_len(header)?];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

async fn write(stream: &mut UnixStream, body: ResponseBody) -> std::io::Result<()> {
    // Only an admin call is answered with JSON, and only on the root socket:
    // wardenctl reads those up to the larger bound, the module never does.
    let max = match body {
        ResponseBody::Json(_) => MAX_ADMIN_FRAME,
        _ => MAX_FRAME,
    };
    let bytes = encode_response(body).map_err(std::io::Error::other)?;
    // The peer refuses frames over the limit, so never send one.
    let frame = match encode_frame_up_to(&bytes, max) {
        Ok(f) => f,
        Err(_) => encode_response(ResponseBody::Error {
            code: ErrorCode::Internal,
            message: "the answer is larger than a frame".into(),
        })
        .map_err(std::io::Error::other)
        .and_then(|b| encode_frame(&b).map_err(std::io::Error::other))?,
    };
    tokio::time::timeout(FRAME_DEADLINE, stream.write_all(&frame))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

async fn reply_error(
    stream: &mut UnixStream,
    code: ErrorCode,
    message: &str,
) -> std::io::Result<()> {
    write(
        stream,
        ResponseBody::Error {
            code,
            message: message.to_string(),
        },
    )
    .await
}
