//! Standard output that survives its reader going away.
//!
//! As ripgrep does, SIGPIPE stays ignored and a `BrokenPipe` error on stdout means "stop printing": later output
//! is dropped, the command finishes its work (a run completes its stages and stores their records) and `alinea`
//! exits quietly. Any other write error is reported at exit with status 1.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);
static ERROR: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Writes `args` (and a newline) to stdout, unless an earlier write failed.
pub fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let result = stdout.write_fmt(args).and_then(|()| {
        if newline {
            stdout.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = result {
        failed(e);
    }
}

/// Flushes stdout (at exit), with the same treatment of errors as [`write()`].
pub fn flush() {
    if !CLOSED.load(Ordering::Relaxed)
        && let Err(e) = std::io::stdout().lock().flush()
    {
        failed(e);
    }
}

fn failed(e: std::io::Error) {
    CLOSED.store(true, Ordering::Relaxed);
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        *ERROR.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }
}

/// A write error other than a closed pipe, if one happened.
pub fn write_error() -> Option<std::io::Error> {
    ERROR.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Whether `e` is (caused by) a closed pipe, e.g. from a writer handed `stdout` directly.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
