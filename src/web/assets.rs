//! Static assets, compiled into the binary so that it runs from anywhere.

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};

const STYLESHEET: &str = include_str!("../../static/lanyard.css");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/lanyard.css", web::get().to(stylesheet));
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}
