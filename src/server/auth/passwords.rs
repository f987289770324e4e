//! Argon2id password hashes, computed where they cannot exhaust the server:
//! on a fixed set of threads, one per core, each computing in one block of
//! memory it keeps. A burst of logins or sign-ups waits for a free thread
//! (up to [`PASSWORD_QUEUE_LIMIT`], then `503` + `Retry-After`) and never
//! allocates more: argon2 needs about 19 MiB a hash, and with a fresh
//! allocation each time the allocator kept them — 40 logins at once took
//! the server from 29 MB to 1 GB, and to 410 MB even with one hash per core
//! at a time, as each hash's memory stayed behind in another arena.

use crate::error::AppError;
use crate::server::error::{Error, Result};
use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

/// How long a password check waits for a free thread before the caller is
/// told to come back (`503` + `Retry-After`).
pub const PASSWORD_QUEUE_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A computation for a password thread, given the thread's memory.
type PasswordJob = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The password threads: where jobs are handed over, and how many may be
/// handed over at once (one per thread, so a job never waits behind another).
struct PasswordThreads {
    jobs: Mutex<mpsc::Sender<PasswordJob>>,
    slots: tokio::sync::Semaphore,
}

fn password_threads() -> &'static PasswordThreads {
    static THREADS: OnceLock<PasswordThreads> = OnceLock::new();
    THREADS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (jobs, queue) = mpsc::channel::<PasswordJob>();
        let queue = Arc::new(Mutex::new(queue));
        let mut started = 0;
        for n in 0..cores {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("cover-password-{n}"))
                .spawn(move || run_jobs(&queue));
            match spawned {
                Ok(_) => started += 1,
                Err(error) => tracing::error!(%error, "could not start a password thread"),
            }
        }
        PasswordThreads {
            jobs: Mutex::new(jobs),
            slots: tokio::sync::Semaphore::new(started),
        }
    })
}

/// One password thread: takes jobs until the queue closes, computing each in
/// the same memory.
fn run_jobs(queue: &Mutex<mpsc::Receiver<PasswordJob>>) {
    let mut memory = Vec::new();
    loop {
        let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = job else { return };
        // A job that panics loses its answer (its caller gets an error),
        // never the thread.
        let run = std::panic::AssertUnwindSafe(|| job(&mut memory));
        drop(std::panic::catch_unwind(run));
    }
}

/// Runs one computation on a password thread once one is free; `Busy` (503)
/// when none frees up within [`PASSWORD_QUEUE_LIMIT`].
async fn on_password_thread<T: Send + 'static>(
    work: impl FnOnce(&mut Vec<Block>) -> Result<T> + Send + 'static,
) -> Result<T> {
    let threads = password_threads();
    let permit = tokio::time::timeout(PASSWORD_QUEUE_LIMIT, threads.slots.acquire())
        .await
        .map_err(|_| {
            Error::App(AppError::Busy {
                message: "the server is busy checking passwords; try again in a moment".into(),
                retry_after_secs: 1,
            })
        })?
        .map_err(Error::internal)?;
    let (done, outcome) = tokio::sync::oneshot::channel();
    let job: PasswordJob = Box::new(move |memory| {
        let _ = done.send(work(memory));
    });
    threads
        .jobs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job)
        .map_err(|_| Error::internal("the password threads have stopped"))?;
    let result = outcome
        .await
        .map_err(|_| Error::internal("a password check failed mid-way"))?;
    drop(permit);
    result
}

/// Hashes a password with argon2id (default parameters) as a PHC string.
pub async fn hash_password(password: String) -> Result<String> {
    on_password_thread(move |memory| hash_in(memory, password.as_bytes())).await
}

/// Checks a password against a stored hash. An unknown account is checked
/// against a fixed dummy hash, so both cost the same time.
pub async fn verify_password(password: String, stored: Option<String>) -> Result<bool> {
    on_password_thread(move |memory| {
        let known = stored.is_some();
        let hash = match stored {
            Some(hash) => hash,
            None => dummy_hash(memory)?,
        };
        let parsed = PasswordHash::new(&hash).map_err(Error::internal)?;
        Ok(verify_in(memory, password.as_bytes(), &parsed)? && known)
    })
    .await
}

/// Argon2 of `password` and `salt` into `out`, computed in `memory` (grown
/// to what `params` need the first time, then reused).
fn argon2_in(
    memory: &mut Vec<Block>,
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::password_hash::Result<()> {
    memory.resize(params.block_count(), Block::default());
    argon2
        .hash_password_into_with_memory(password, salt, out, &mut memory[..])
        .map_err(Into::into)
}

/// Hashes `password` with a fresh salt as a PHC string.
fn hash_in(memory: &mut Vec<Block>, password: &[u8]) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(Error::internal)?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        argon2_in(memory, &argon2, &params, password, salt_bytes, out)
    })
    .map_err(Error::internal)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(Error::internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches `hash` (compared in constant time), with the
/// hash's own algorithm, version and parameters.
fn verify_in(memory: &mut Vec<Block>, password: &[u8], hash: &PasswordHash<'_>) -> Result<bool> {
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(Error::internal)?;
    let version = match hash.version {
        Some(version) => Version::try_from(version).map_err(Error::internal)?,
        None => Version::default(),
    };
    let params = Params::try_from(hash).map_err(Error::internal)?;
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err(Error::internal(
            "a stored password hash has no salt or no output",
        ));
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(Error::internal)?;
    let computed = Output::init_with(expected.len(), |out| {
        argon2_in(memory, &argon2, &params, password, salt_bytes, out)
    })
    .map_err(Error::internal)?;
    Ok(computed == expected)
}

/// A hash of no one's password, made once, that unknown accounts are
/// checked against.
fn dummy_hash(memory: &mut Vec<Block>) -> Result<String> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash.clone());
    }
    let hash = hash_in(memory, b"not a real password")?;
    Ok(DUMMY.get_or_init(|| hash).clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn hashes_verify_here_and_with_the_argon2_crate_and_wrong_passwords_do_not() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(verify_password("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!verify_password("wrong horse".into(), Some(hash))
            .await
            .unwrap());
        // A hash made by the crate itself (as every stored hash so far was).
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2::PasswordHasher::hash_password(&Argon2::default(), b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("pw".into(), Some(theirs)).await.unwrap());
        assert!(
            !verify_password("pw".into(), None).await.unwrap(),
            "no account never matches"
        );
    }
}
