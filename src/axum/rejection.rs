//! The HTTP answer to a refused request.

use axum_core::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::error::{ReceiveError, VerifyError};

/// A refused request: the error, answered with the status of its
/// [kind](crate::ErrorKind::status).
///
/// Its response body is the error's kind only (`signature_mismatch`); the detail stays in
/// [`error`](Self::error) for logs and metrics.
#[derive(Debug)]
pub struct Rejection {
    error: ReceiveError,
}

impl Rejection {
    /// The error behind the rejection.
    pub fn error(&self) -> &ReceiveError {
        &self.error
    }

    /// The status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        self.error.kind().status()
    }
}

impl From<ReceiveError> for Rejection {
    fn from(error: ReceiveError) -> Self {
        Self { error }
    }
}

impl From<VerifyError> for Rejection {
    fn from(error: VerifyError) -> Self {
        Self {
            error: error.into(),
        }
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
        let mut response = plain(self.status(), self.error.kind().as_str());
        if matches!(self.error, ReceiveError::BodyTimeout { .. }) {
            // The rest of a crawling body is not worth reading.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
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
