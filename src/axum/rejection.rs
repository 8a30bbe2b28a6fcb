//! The HTTP answer to a refused request.

use axum_core::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::error::Error;

/// A refused request: the error, and the status the design's table gives it.
///
/// Its response body is the error's kind only (`signature_mismatch`); the detail stays in
/// [`error`](Self::error) for logs and metrics.
#[derive(Debug)]
pub struct Rejection {
    error: Error,
}

impl Rejection {
    /// The error behind the rejection.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        status_for(&self.error)
    }
}

impl From<Error> for Rejection {
    fn from(error: Error) -> Self {
        Self { error }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Rejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        plain(self.status(), self.error.kind())
    }
}

/// The status for each kind of error (see the table in the module docs).
pub(crate) fn status_for(error: &Error) -> StatusCode {
    match error {
        Error::MissingHeader { .. }
        | Error::MalformedSignature { .. }
        | Error::MalformedTimestamp { .. }
        | Error::MalformedDeliveryId { .. }
        | Error::BodyUnreadable => StatusCode::BAD_REQUEST,
        Error::SignatureMismatch | Error::TimestampOutOfTolerance { .. } => {
            StatusCode::UNAUTHORIZED
        }
        Error::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        Error::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        // The handler ran and answered; this only reaches a response through the user's code.
        Error::ClaimLost => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A short `text/plain` response.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
