//! The HTTP edge: route tables for the API listener and the metrics listener.

mod ops;

use actix_web::web;

/// Routes of the public listener.
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(ops::health));
}

/// Routes of the metrics listener (bind it to a private address).
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(ops::metrics));
}
