//! Length-prefixed frames with a hard maximum, checked before any allocation.

use std::io::{self, Read, Write};
use thiserror::Error;

/// The largest body either side accepts. Requests are a few hundred bytes.
pub const MAX_FRAME: usize = 16 * 1024;
/// The largest answer to a root peer's admin call (every lock of a busy
/// host); only wardenctl reads these, never the module.
pub const MAX_ADMIN_FRAME: usize = 16 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is over the limit ({MAX_FRAME} bytes, {MAX_ADMIN_FRAME} for an admin's answer)")]
    TooLarge(usize),
    #[error("empty frame")]
    Empty,
    #[error("connection closed")]
    Closed,
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// The length prefix: a u32, big-endian.
pub const HEADER: usize = 4;

// The codec is free of I/O so that the module's blocking reader and the
// daemon's async one share every check; each side only moves the bytes.

/// The body length a header announces, refused before anything is allocated
/// when it is over [`MAX_FRAME`] or zero.
pub fn body_len(header: [u8; HEADER]) -> Result<usize, FrameError> {
    body_len_up_to(header, MAX_FRAME)
}

/// [`body_len`] with another bound (see [`MAX_ADMIN_FRAME`]).
pub fn body_len_up_to(header: [u8; HEADER], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge(len));
    }
    if len == 0 {
        return Err(FrameError::Empty);
    }
    Ok(len)
}

/// A body behind its header, ready to write in one call.
pub fn encode_frame(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    encode_frame_up_to(body, MAX_FRAME)
}

/// [`encode_frame`] with another bound (see [`MAX_ADMIN_FRAME`]).
pub fn encode_frame_up_to(body: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    if body.len() > max {
        return Err(FrameError::TooLarge(body.len()));
    }
    if body.is_empty() {
        return Err(FrameError::Empty);
    }
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge(body.len()))?;
    let mut buf = Vec::with_capacity(HEADER + body.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(body);
    Ok(buf)
}

/// An end of input before the header is a clean close; anywhere else it is an error.
pub fn header_error(e: io::Error) -> FrameError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        FrameError::Closed
    } else {
        FrameError::Io(e)
    }
}

pub fn write_frame(w: &mut impl Write, body: &[u8]) -> Result<(), FrameError> {
    w.write_all(&encode_frame(body)?)?;
    w.flush()?;
    Ok(())
}

/// Reads the header, refuses it if it is over the limit, then reads the body.
pub fn read_frame(r: &mut impl Read) -> Result<Vec<u8>, FrameError> {
    read_frame_up_to(r, MAX_FRAME)
}

/// [`read_frame`] with another bound (see [`MAX_ADMIN_FRAME`]).
pub fn read_frame_up_to(r: &mut impl Read, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; HEADER];
    r.read_exact(&mut header).map_err(header_error)?;
    let mut body = vec![0u8; body_len_up_to(header, max)?];
    r.read_exact(&mut body)?;
    Ok(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        assert_eq!(&buf[..4], &[0, 0, 0, 5]);
        assert_eq!(read_frame(&mut buf.as_slice()).unwrap(), b"hello");
    }

    #[test]
    fn oversized_lengths_are_refused_before_allocating() {
        let mut wire = (u32::MAX).to_be_bytes().to_vec();
        wire.extend_from_slice(b"x");
        assert!(matches!(
            read_frame(&mut wire.as_slice()),
            Err(FrameError::TooLarge(_))
        ));
        let big = vec![0u8; MAX_FRAME + 1];
        assert!(matches!(
            write_frame(&mut Vec::new(), &big),
            Err(FrameError::TooLarge(_))
        ));
        assert!(matches!(encode_frame(b""), Err(FrameError::Empty)));
        assert_eq!(
            body_len((MAX_FRAME as u32).to_be_bytes()).unwrap(),
            MAX_FRAME
        );
    }

    #[test]
    fn short_and_empty_frames_are_errors() {
        assert!(matches!(
            read_frame(&mut [0u8, 0].as_slice()),
            Err(FrameError::Closed)
        ));
        assert!(matches!(
            read_frame(&mut [0u8, 0, 0, 0].as_slice()),
            Err(FrameError::Empty)
        ));
        let half = [0u8, 0, 0, 9, b'a'];
        assert!(matches!(
            read_frame(&mut half.as_slice()),
            Err(FrameError::Io(_))
        ));
    }
}
