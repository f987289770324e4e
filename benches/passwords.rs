//! Password-hashing benchmark (`scripts/bench passwords`): what a burst of
//! logins and sign-ups costs the server in memory and time.
//!
//! Argon2id needs about 19 MiB per hash. The server hashes on one thread per
//! core, each reusing its own memory, so however many requests arrive at
//! once, resident memory grows by at most one block per core and stays
//! there. The bench runs [`ROUNDS`] bursts of [`BURST`] concurrent checks
//! (wrong-password logins, then sign-up hashes, alternating) in this process
//! and prints, after each, resident memory (VmRSS and its peak VmHWM), the
//! checks done and refused as busy (`503`: none frees up within 2 s), and the
//! hashes per second; then checks the goal: the peak stays within one block
//! per core (plus 16 MiB for everything else) above the memory before the
//! first hash.

use std::time::Instant;

use cover::server::auth::{hash_password, verify_password};

/// Checks sent at once in each burst (the burst that once took the server to 1 GB).
const BURST: usize = 40;
/// Bursts run.
const ROUNDS: usize = 5;
/// Memory one argon2 hash with the default parameters works in (19 MiB).
const BLOCK_KIB: u64 = 19 * 1024;
/// Allowance for everything besides the hash memory (runtime, buffers).
const SLACK_KIB: u64 = 16 * 1024;

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let stored = hash_password("the right password".into())
        .await
        .expect("a hash");
    let before_kib = status_kib("VmRSS");
    println!("{cores} cores; {BURST} checks at once, {ROUNDS} bursts; resident before: {before_kib} KiB (one hash done)");
    let mut failed = false;
    for round in 1..=ROUNDS {
        let started = Instant::now();
        let checks = (0..BURST).map(|i| {
            let stored = stored.clone();
            async move {
                if round % 2 == 1 {
                    verify_password(format!("wrong password {i}"), Some(stored))
                        .await
                        .map(|matched| !matched)
                } else {
                    hash_password(format!("a new account's password {i}"))
                        .await
                        .map(|hash| hash.starts_with("$argon2id$"))
                }
            }
        });
        let outcomes = futures::future::join_all(checks).await;
        let elapsed = started.elapsed();
        let done = outcomes.iter().filter(|o| matches!(o, Ok(true))).count();
        let busy = outcomes.iter().filter(|o| o.is_err()).count();
        failed |= outcomes.iter().any(|o| matches!(o, Ok(false)));
        println!(
            "burst {round} ({}): {done} done, {busy} busy (503) in {:.2} s ({:.1} hashes/s); VmRSS {} KiB, VmHWM {} KiB",
            if round % 2 == 1 { "wrong-password logins" } else { "sign-up hashes" },
            elapsed.as_secs_f64(),
            done as f64 / elapsed.as_secs_f64(),
            status_kib("VmRSS"),
            status_kib("VmHWM"),
        );
    }
    let peak_kib = status_kib("VmHWM");
    let bound_kib = before_kib + cores * BLOCK_KIB + SLACK_KIB;
    let grown_kib = peak_kib.saturating_sub(before_kib);
    println!(
        "peak {peak_kib} KiB: {grown_kib} KiB above the start, bound {} KiB ({cores} blocks of 19 MiB + 16 MiB)",
        bound_kib - before_kib
    );
    if failed {
        println!("FAIL: a check answered wrongly");
        std::process::exit(1);
    }
    if peak_kib > bound_kib {
        println!("FAIL: hashing grew the heap beyond one block per core");
        std::process::exit(1);
    }
    println!("goal met: memory bounded by one argon2 block per core");
}
