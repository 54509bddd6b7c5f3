//! The check on an answer to a request that carried the token, shared by the layer's
//! [`ResponseFuture`](crate::ResponseFuture) and the reqwest middleware: a `401` from the
//! origin the token was sent to drops it; a redirect that is not provably to that origin is
//! refused or loses its `Location`.

use std::time::Duration;

use http::header::LOCATION;
use http::{Extensions, HeaderMap, Response, StatusCode, Uri};

use crate::cache::{Refusal, Ticket};
use crate::error::{DestinationError, DestinationErrorKind};
use crate::origin::{LocationTarget, Origin, is_absolute_path, judge_location};
use crate::redirect::{CrossOriginRedirects, FinalUri, RedirectLocation};
use crate::replay::TokenRejected;

/// An answer the check reads and marks: an `http::Response`, or a `reqwest::Response` (which
/// is not one, but has the same parts).
pub(crate) trait Answer {
    fn status(&self) -> StatusCode;
    fn headers(&self) -> &HeaderMap;
    fn headers_mut(&mut self) -> &mut HeaderMap;
    fn extensions_mut(&mut self) -> &mut Extensions;
    /// The URI the answer came from, if the transport followed redirects and says so.
    fn came_from(&self) -> Option<Uri>;
}

impl<B> Answer for Response<B> {
    fn status(&self) -> StatusCode {
        self.status()
    }

    fn headers(&self) -> &HeaderMap {
        self.headers()
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers_mut()
    }

    fn extensions_mut(&mut self) -> &mut Extensions {
        self.extensions_mut()
    }

    fn came_from(&self) -> Option<Uri> {
        if let Some(FinalUri(uri)) = self.extensions().get::<FinalUri>() {
            return Some(uri.clone());
        }
        #[cfg(feature = "follow-redirect")]
        if let Some(tower_http::follow_redirect::RequestUri(uri)) = self.extensions().get() {
            return Some(uri.clone());
        }
        None
    }
}

/// What the check needs to know about a request that carried the token.
pub(crate) struct Sent {
    /// Which token it carried.
    pub(crate) ticket: Ticket,
    /// The origin it went to (`None`: not known, such as an origin-form request's).
    pub(crate) to: Option<Origin>,
    pub(crate) redirects: CrossOriginRedirects,
    /// How long a replay may wait for the next token (see [`TokenRejected::replaced`]).
    pub(crate) max_wait: Option<Duration>,
}

/// Whether an answer with this status goes to [`check`]: a `401` or a `3xx`.
#[inline(always)]
pub(crate) fn is_checked(status: u16) -> bool {
    status == 401 || (300..400).contains(&status)
}

/// A `401` or `3xx` answered a request that carried the token.
///
/// - `401` from the origin the token was sent to: drop the token (if still cached, outside the
///   cooldown) and mark the answer [`TokenRejected`]. From another origin (a transport
///   followed a redirect and says so): nothing about our token, so nothing happens.
/// - `3xx` whose `Location` is not provably the same origin: refuse it or hide the
///   `Location`, so nothing outside follows it with the token.
#[inline(never)]
pub(crate) fn check<A: Answer>(answer: &mut A, sent: Sent) -> Result<(), DestinationError> {
    let origin = sent.to;
    let elsewhere = answer
        .came_from()
        .filter(|uri| origin.as_ref().is_none_or(|o| !o.matches(uri)));
    if answer.status() == StatusCode::UNAUTHORIZED {
        if let Some(uri) = elsewhere {
            tracing::debug!(
                from = %Origin::of(&uri).map_or_else(|| "?".to_owned(), |o| o.to_string()),
                "401 from another origin than the token was sent to (a followed redirect): token kept"
            );
        } else if let Some(dropped) = sent.ticket.refused(Refusal::Unauthorized, sent.max_wait) {
            answer.extensions_mut().insert(TokenRejected::new(dropped));
        }
        return Ok(());
    }
    let Some(location) = answer.headers().get(LOCATION) else {
        return Ok(());
    };
    let target = match &origin {
        // A path is relative to where the answer came from, which is not our origin.
        Some(_) if elsewhere.is_some() && is_absolute_path(location.as_bytes()) => {
            LocationTarget::Unknown
        }
        Some(origin) => judge_location(location.as_bytes(), origin),
        // An origin-form request: only a path provably stays where it was.
        None if is_absolute_path(location.as_bytes()) => LocationTarget::SameOrigin,
        None => LocationTarget::Unknown,
    };
    let to = match target {
        LocationTarget::SameOrigin => return Ok(()),
        LocationTarget::Other(to) => Some(to.to_string()),
        LocationTarget::Unknown => None,
    };
    let from = origin.map(|o| o.to_string());
    sent.ticket
        .withheld(DestinationErrorKind::CrossOriginRedirect);
    tracing::debug!(
        reason = DestinationErrorKind::CrossOriginRedirect.as_str(),
        from = from.as_deref().unwrap_or("?"),
        to = to.as_deref().unwrap_or("?"),
        status = answer.status().as_u16(),
        "redirect to another origin: not followed with the token"
    );
    match sent.redirects {
        CrossOriginRedirects::Refuse => Err(DestinationError::cross_origin_redirect(
            from,
            answer.status(),
            to,
        )),
        CrossOriginRedirects::HideLocation => {
            if let Some(location) = answer.headers_mut().remove(LOCATION) {
                answer
                    .extensions_mut()
                    .insert(RedirectLocation::new(location));
            }
            Ok(())
        }
    }
}
