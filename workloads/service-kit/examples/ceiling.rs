//! The HTTP ceiling for `bench/http.sh`: an axum server on the same runtime and
//! `service_kit::serve` as the real services, whose only route answers a fixed JSON
//! body without reading the request. The inference and backend figures are compared
//! against it.
//!
//! Usage: `ceiling [PORT]` (default 8099); stops on SIGTERM or ctrl-c.

use axum::Router;
use axum::routing::{get, post};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8099);
    let app = Router::new()
        .route("/predict", post(answer))
        .route("/health", get(answer));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    service_kit::serve(listener, app, service_kit::shutdown::signal()).await
}

async fn answer() -> ([(&'static str, &'static str); 1], &'static str) {
    ([("content-type", "application/json")], "{\"ok\":true}")
}
