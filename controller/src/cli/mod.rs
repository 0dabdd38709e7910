//! The commands of the `tugboat` binary. This is the binary's edge: commands return
//! `anyhow::Result` and print for humans; the library underneath keeps typed errors.
//!
//! Commands write standard output through [`print`], never `print!`: when the reader
//! goes away (`tugboat diff ... | head -1`) the write fails with a broken pipe, which
//! `print!` turns into a panic. [`print`] turns it into [`StdoutClosed`] instead, and the
//! binary ends quietly with status 0 (no `unsafe` SIGPIPE reset needed).

use std::io::{self, Write};

pub mod apply;
pub mod diff;
// Tests of manifests/tugboat-on-ecs and manifests/ci (issue 12).
#[cfg(test)]
mod deploy_examples;
// The controller's least-privilege IAM policy (issue 12).
pub mod iam_policy;
// Operator verbs (issue 9): promote, abort, retry, pause, resume, set-weight, undo.
pub mod import;
pub mod operator;
pub mod run;
pub mod schema;
pub mod status;
pub mod up;
pub mod validate;

/// Standard output was closed by its reader. Not a failure of the command: whoever read
/// the output took what they wanted.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed by its reader")]
pub struct StdoutClosed;

/// Writes `text` to standard output and flushes it. A closed pipe is [`StdoutClosed`];
/// any other failure to write is an error naming standard output.
pub fn print(text: &str) -> anyhow::Result<()> {
    write_to(&mut io::stdout().lock(), text)
}

/// [`print`] with a newline after `text`.
pub fn println(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    write_to(&mut out, text)?;
    write_to(&mut out, "\n")
}

fn write_to(out: &mut impl Write, text: &str) -> anyhow::Result<()> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
    }
}

/// Whether `error` is (or wraps) [`StdoutClosed`]: the binary then exits 0, silently.
pub fn is_stdout_closed(error: &anyhow::Error) -> bool {
    error.downcast_ref::<StdoutClosed>().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_is_stdout_closed_and_other_failures_are_errors() {
        let closed = write_to(&mut ClosedPipe, "x").expect_err("broken pipe");
        assert!(is_stdout_closed(&closed));
        assert!(is_stdout_closed(&closed.context("rendering the plan")));
        let full = write_to(&mut Full, "x").expect_err("disk full");
        assert!(!is_stdout_closed(&full));
        assert!(format!("{full:#}").contains("writing to standard output"));
    }
}
