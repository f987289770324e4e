//! `cover keys rotate`: re-encrypts every stored provider key under a new master
//! key in one transaction. With a key file, the new key is written beside it
//! (`cover.key.new`) before anything changes and renamed over it after the
//! commit; a crash in between leaves both files, and start-up loads both, so no
//! key ever becomes unreadable. With `COVER_MASTER_KEY`, the new key comes from
//! `COVER_NEW_MASTER_KEY` and the operator swaps the variables afterwards.

use crate::server::config::MasterKeySource;
use crate::server::crypto::{self, generate_key};
use crate::server::db::provider_keys::{self, StoredKey};
use crate::server::db::Db;
use crate::server::error::{Error, Result};
use secrecy::{ExposeSecret, SecretString};

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Keys re-encrypted.
    pub keys: usize,
    /// The new master-key version.
    pub version: i64,
}

/// Re-encrypts every stored key under a new master key (see the module docs).
pub async fn rotate(
    db: &Db,
    source: &MasterKeySource,
    new_env_key: Option<SecretString>,
) -> Result<Rotation> {
    let mut keyring = source.load()?;
    let version = keyring.current_version() + 1;
    let new_key = match (source, new_env_key) {
        (MasterKeySource::File(path), _) => {
            let key = generate_key();
            crypto::write_key_file(&crypto::pending_path(path), version, key.expose_secret())
                .map_err(Error::internal)?;
            key
        }
        (MasterKeySource::Env { .. }, Some(key)) => key,
        (MasterKeySource::Env { .. }, None) => {
            return Err(Error::internal(
                "COVER_MASTER_KEY is set: put the new key in COVER_NEW_MASTER_KEY (e.g. `cover keys generate`) and run again",
            ))
        }
    };
    keyring
        .add_current(version, new_key.expose_secret())
        .map_err(Error::internal)?;

    let mut tx = db.writer.begin().await?;
    let stored = provider_keys::all(&mut *tx).await?;
    for key in &stored {
        let plaintext = keyring
            .open(&key.project_id, &key.sealed)
            .map_err(Error::internal)?;
        let sealed = keyring
            .seal(&key.project_id, &plaintext)
            .map_err(Error::internal)?;
        provider_keys::upsert(
            &mut *tx,
            &StoredKey {
                sealed,
                ..key.clone()
            },
        )
        .await?;
    }
    tx.commit().await?;

    if let MasterKeySource::File(path) = source {
        std::fs::rename(crypto::pending_path(path), path).map_err(Error::internal)?;
    }
    Ok(Rotation {
        keys: stored.len(),
        version,
    })
}
