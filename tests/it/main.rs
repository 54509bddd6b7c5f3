//! The integration tests, in one binary (one link of tokio, hyper, tonic, axum and reqwest
//! instead of one per file). The metrics test (a process-global recorder), the allocation test
//! (a counting global allocator) and the trace scan (it reads what this binary captured) are
//! binaries of their own.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod axum;
mod cache;
mod cancellation;
mod client_credentials;
mod composition;
mod config;
mod emulator;
mod examples;
mod fault_matrix;
mod fleet;
#[cfg(feature = "redis")]
mod fleet_processes;
mod generic;
#[cfg(feature = "grpc")]
mod grpc;
mod interop;
mod layer;
mod properties;
mod providers;
#[cfg(feature = "reqwest")]
mod proxy;
mod readiness;
mod redirects;
#[cfg(feature = "redis")]
mod redis_store;
mod replay;
mod reqwest_middleware;
mod robustness;
mod routes;
mod stress;
mod token_cli;
mod token_endpoint;
mod tonic;
mod tracing;
