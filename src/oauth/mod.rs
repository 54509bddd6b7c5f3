//! OAuth 2.0 protocol code, free of I/O: building token requests and reading token endpoint
//! answers are pure functions, tested without a network.

pub mod response;
