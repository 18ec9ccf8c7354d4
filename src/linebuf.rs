//! The log writer: threads that log append whole lines to a bounded in-memory buffer; a
//! background thread writes the buffer out in batches. A busy proxy thread never waits on stdout
//! and never wakes the writer per line (only the first line after a quiet spell does).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

struct State {
    buf: Vec<u8>,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Bytes waiting at most; lines past it are dropped and counted.
    cap: usize,
    dropped: AtomicU64,
}

/// Where log lines go: cheap to clone, one per `tracing` event.
#[derive(Clone)]
pub struct LineBuffer {
    shared: Arc<Shared>,
}

/// Stops the writer when dropped, after it has written everything buffered.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LineBuffer {
    /// Start the writer thread: it writes to `out` what gathered over `gather` after the first
    /// line of a batch. `cap` bounds the bytes waiting.
    pub fn start(out: impl Write + Send + 'static, cap: usize, gather: Duration) -> std::io::Result<(Self, Flusher)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::new(),
                closed: false,
            }),
            wake: Condvar::new(),
            cap,
            dropped: AtomicU64::new(0),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_out(&s, out, gather))?;
        Ok((
            LineBuffer {
                shared: Arc::clone(&shared),
            },
            Flusher {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Lines dropped because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// The nice value of the background writers (this log writer, the request-log writer).
pub const WRITER_NICE: i32 = 10;

/// Set the calling thread's nice value: [`WRITER_NICE`] for a background writer, so on a busy
/// core a proxy thread woken by the network preempts it at once instead of waiting out its time
/// slice (a writer committing a batch stalled requests for up to a millisecond: p99 at one
/// connection 600 µs -> 200 µs). At nice 10 a writer still gets a tenth of a saturated core;
/// one that falls behind can ask for 0 again. Best effort: an error leaves the priority as is.
pub fn set_nice(nice: i32) {
    // On Linux, PRIO_PROCESS with id 0 names the calling thread, not the whole process.
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
}

impl LineBuffer {
    /// Append one whole line (or several); past the cap it is dropped and counted.
    pub fn push(&self, line: &[u8]) {
        let Ok(mut st) = self.shared.state.lock() else { return };
        if st.closed || st.buf.len() + line.len() > self.shared.cap {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let first = st.buf.is_empty();
        st.buf.extend_from_slice(line);
        drop(st);
        if first {
            self.shared.wake.notify_one();
        }
    }
}

impl Write for LineBuffer {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LineBuffer {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> LineBuffer {
        self.clone()
    }
}

fn write_out(shared: &Shared, mut out: impl Write, gather: Duration) {
    set_nice(WRITER_NICE);
    let mut spare = Vec::new();
    let mut reported = 0;
    loop {
        let Ok(mut st) = shared.state.lock() else { return };
        while st.buf.is_empty() && !st.closed {
            st = match shared.wake.wait(st) {
                Ok(s) => s,
                Err(_) => return,
            };
        }
        if st.buf.is_empty() {
            return; // closed and drained
        }
        if !st.closed {
            // Let the batch gather: while this thread sleeps, loggers wake nobody.
            drop(st);
            std::thread::sleep(gather);
            st = match shared.state.lock() {
                Ok(s) => s,
                Err(_) => return,
            };
        }
        let batch = std::mem::replace(&mut st.buf, std::mem::take(&mut spare));
        drop(st);
        let _ = out.write_all(&batch);
        let dropped = shared.dropped.load(Ordering::Relaxed);
        if dropped > reported {
            let _ = writeln!(
                out,
                "llm-sidecar: {} log lines dropped (output too slow)",
                dropped - reported
            );
            reported = dropped;
        }
        let _ = out.flush();
        spare = batch;
        spare.clear();
        spare.shrink_to(1 << 20); // keep a large burst's buffer from staying forever
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.closed = true;
        }
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_flusher_drops() {
        let sink = Sink::default();
        let (buf, flusher) = LineBuffer::start(sink.clone(), 1 << 20, Duration::from_millis(5)).expect("start");
        for i in 0..1000 {
            buf.clone().write_all(format!("line {i}\n").as_bytes()).expect("write");
        }
        drop(flusher);
        let text = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000, "all lines written");
        assert_eq!((lines[0], lines[999]), ("line 0", "line 999"), "in order");
        assert_eq!(buf.dropped(), 0, "nothing dropped");
    }

    #[test]
    fn past_the_cap_lines_are_dropped_counted_and_reported() {
        let sink = Sink::default();
        let (buf, flusher) = LineBuffer::start(sink.clone(), 64, Duration::from_millis(200)).expect("start");
        for _ in 0..20 {
            buf.clone().write_all(b"0123456789\n").expect("write");
        }
        drop(flusher);
        let text = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf8");
        assert_eq!(buf.dropped(), 15, "5 lines of 11 bytes fit in 64");
        assert_eq!(text.matches("0123456789").count(), 5, "the ones that fit: {text}");
        assert!(text.contains("15 log lines dropped"), "the loss is said: {text}");
    }
}
