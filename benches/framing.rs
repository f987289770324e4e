//! Stream framing benchmark (`cargo bench --bench framing --features ssr`): the framing's
//! robustness over 1,000,000 random streams and its cost on huge lines.
//!
//! 1. Random bytes (SSE pieces, separators, multi-byte UTF-8, stray bytes) cut into random
//!    chunks, framed as SSE and as NDJSON: counts panics (caught) and streams whose frames
//!    differ from the same bytes framed in one chunk. Both must be 0.
//! 2. A single 10 MB and 20 MB line in 16 KiB chunks (rejected at the line cap), and
//!    10 MB and 20 MB of ordinary 1 KiB events: time and ns per byte, to show the cost
//!    grows linearly with the input (or not at all once a line is refused).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use cover::server::llm::stream::{frame_chunks, Framing, MAX_FRAME_BYTES};
use cover::server::llm::ProviderId;

#[path = "../src/server/llm/stream/random_streams.rs"]
mod random_streams;

const CASES: usize = 1_000_000;
const CHUNK: usize = 16 * 1024;
const ROUNDS: usize = 5;

/// Frames `bytes` in [`CHUNK`]-byte chunks, best of [`ROUNDS`]; returns the time and the
/// number of frames (or errors) out.
fn time_framing(framing: Framing, bytes: &[u8]) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut frames = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        frames = frame_chunks(ProviderId::OpenAi, framing, bytes.chunks(CHUNK)).len();
        best = best.min(started.elapsed());
    }
    (best, frames)
}

fn print_timing(what: &str, framing: Framing, bytes: &[u8]) {
    let (took, frames) = time_framing(framing, bytes);
    let name = match framing {
        Framing::Sse => "SSE",
        Framing::Ndjson => "NDJSON",
    };
    println!(
        "{what:<20} {name:<7} {:>5} MB {:>10.3} ms {:>8.3} ns/byte {frames:>6} frames",
        bytes.len() / 1_000_000,
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e9 / bytes.len() as f64,
    );
}

fn random_cases() {
    let mut rng = StdRng::seed_from_u64(0xC0FE);
    let (mut panics, mut mismatches) = (0, 0);
    let started = Instant::now();
    for _ in 0..CASES {
        let bytes = random_streams::random_stream(&mut rng, 40);
        let chunks = random_streams::random_chunks(&mut rng, &bytes);
        for framing in [Framing::Sse, Framing::Ndjson] {
            let same = catch_unwind(AssertUnwindSafe(|| {
                let whole = frame_chunks(ProviderId::OpenAi, framing, [bytes.as_slice()]);
                let split = frame_chunks(ProviderId::OpenAi, framing, chunks.iter().copied());
                whole == split
            }));
            match same {
                Ok(true) => {}
                Ok(false) => mismatches += 1,
                Err(_) => panics += 1,
            }
        }
    }
    println!(
        "random streams: {CASES} cases (x2 framings) in {:.1} s, {panics} panics, {mismatches} split/unsplit mismatches",
        started.elapsed().as_secs_f64()
    );
    assert_eq!((panics, mismatches), (0, 0));
}

fn main() {
    random_cases();
    println!(
        "\nline cap {MAX_FRAME_BYTES} bytes, {} KiB chunks, best of {ROUNDS}",
        CHUNK / 1024
    );
    for mb in [10, 20] {
        let line = vec![b'a'; mb * 1_000_000];
        print_timing("one line, refused", Framing::Sse, &line);
        print_timing("one line, refused", Framing::Ndjson, &line);
    }
    let event = format!("data: {}\n\n", "t".repeat(1016));
    for mb in [10, 20] {
        let events = event.repeat(mb * 1_000_000 / event.len());
        print_timing("1 KiB events", Framing::Sse, events.as_bytes());
        print_timing("1 KiB lines", Framing::Ndjson, events.as_bytes());
    }
}
