//! Static assets, compiled into the binary so that it runs from anywhere.

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};

/// (path, content type, content)
const ASSETS: [(&str, &str, &str); 5] = [
    ("/static/lanyard.css", "text/css; charset=utf-8", include_str!("../../static/lanyard.css")),
    ("/static/admin.css", "text/css; charset=utf-8", include_str!("../../static/admin.css")),
    ("/static/playground.css", "text/css; charset=utf-8", include_str!("../../static/playground.css")),
    ("/static/admin.js", "text/javascript; charset=utf-8", include_str!("../../static/admin.js")),
    ("/static/form_post.js", "text/javascript; charset=utf-8", include_str!("../../static/form_post.js")),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, content_type, body) in ASSETS {
        cfg.route(
            path,
            web::get().to(move || async move {
                HttpResponse::Ok()
                    .content_type(content_type)
                    .insert_header((CACHE_CONTROL, "public, max-age=3600"))
                    .body(body)
            }),
        );
    }
}
