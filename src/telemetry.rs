//! Logging: `tracing` to stderr, as text or JSON lines.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber (once; later calls, as in tests, are no-ops).
/// `RUST_LOG` overrides `default_filter` (such as `info` or `warn`).
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Span close events carry each request's id, method, route, status and latency
    // (the span is tracing-actix-web's root span).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Keeps large allocations (argon2's 19 MiB working memory) out of the heap. glibc raises
/// its mmap threshold each time an mmapped block is freed, so the second password hash's
/// buffer would land in the heap and stay resident for the life of the process (idle RSS
/// ~38 MB instead of ~20 MB); a fixed threshold keeps such buffers mmapped and returned.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called once, at start-up,
    // before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
