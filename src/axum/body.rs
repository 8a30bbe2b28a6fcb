//! Reading a request body up to a limit, without buffering past it.

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::Body;
use http_body_util::BodyExt;

use crate::error::ReceiveError;

/// Rejects a declared `Content-Length` over the limit before reading anything.
pub(crate) fn check_declared_length(headers: &HeaderMap, limit: usize) -> Result<(), ReceiveError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// Collects the body, stopping with [`ReceiveError::BodyTooLarge`] at the first frame that crosses
/// `limit` (chunked bodies too: the rest is never read). Each chunk goes to `on_chunk` as it
/// arrives, so that verification keeps pace with the network.
pub(crate) async fn read_limited<B>(
    body: B,
    limit: usize,
    mut on_chunk: impl FnMut(&[u8]),
) -> Result<Bytes, ReceiveError>
where
    B: Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ReceiveError::BodyUnreadable)?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit - collected.len() {
                return Err(too_large(limit));
            }
            on_chunk(&data);
            if collected.is_empty() && body.is_end_stream() {
                // A single-frame body: hand it on without copying.
                return Ok(data);
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(collected.freeze())
}

fn too_large(limit: usize) -> ReceiveError {
    ReceiveError::BodyTooLarge {
        limit: limit as u64,
    }
}
