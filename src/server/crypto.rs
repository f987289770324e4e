//! Encryption of provider API keys at rest: AES-256-GCM with a fresh random
//! nonce per encryption and the project id as associated data (a ciphertext
//! copied to another project does not decrypt). The master key comes from
//! `COVER_MASTER_KEY` (32 random bytes, base64) or else from a key file created
//! on first run with mode 0600. Every ciphertext records the master-key version
//! it was sealed with, so `cover keys rotate` can re-encrypt under a new key.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the generated master key lives when `COVER_MASTER_KEY` is not set.
pub const DEFAULT_KEY_FILE: &str = "cover.key";

/// Why a key could not be loaded, sealed or opened. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// `COVER_MASTER_KEY` or the key file is not 32 bytes of base64.
    #[error("master key: {0}")]
    BadMasterKey(String),
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A ciphertext names a master-key version this server does not have.
    #[error("no master key with version {0}")]
    UnknownVersion(i64),
    /// The ciphertext was altered, belongs to another project, or the key is wrong.
    #[error("a stored secret could not be decrypted (wrong master key or tampered data)")]
    Undecryptable,
}

/// One master key and its version number.
struct MasterKey {
    version: i64,
    key: SecretBox<[u8; 32]>,
}

/// The master keys this server can use: the current one seals, any opens.
pub struct Keyring {
    current: i64,
    keys: BTreeMap<i64, MasterKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A sealed secret as stored: base64 ciphertext and nonce, and the key version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Base64 of the AES-GCM ciphertext (with its tag).
    pub ciphertext: String,
    /// Base64 of the 96-bit nonce.
    pub nonce: String,
    /// Version of the master key that sealed it.
    pub key_version: i64,
}

fn decode_key(text: &str) -> Result<[u8; 32], CryptoError> {
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|_| CryptoError::BadMasterKey("not valid base64".into()))?;
    bytes
        .try_into()
        .map_err(|_| CryptoError::BadMasterKey("must decode to exactly 32 bytes".into()))
}

/// A new random 32-byte key, base64-encoded (for `COVER_MASTER_KEY` or a key file).
pub fn generate_key() -> SecretString {
    let key = Aes256Gcm::generate_key(OsRng);
    SecretString::from(BASE64.encode(key.as_slice()))
}

impl Keyring {
    /// A keyring with one key.
    pub fn single(version: i64, base64_key: &str) -> Result<Keyring, CryptoError> {
        let mut keys = BTreeMap::new();
        keys.insert(
            version,
            MasterKey {
                version,
                key: SecretBox::new(Box::new(decode_key(base64_key)?)),
            },
        );
        Ok(Keyring {
            current: version,
            keys,
        })
    }

    /// Loads the master key: `COVER_MASTER_KEY` (version from
    /// `COVER_MASTER_KEY_VERSION`, default 1) or the key file, created with
    /// mode 0600 on first run.
    pub fn load(
        env_key: Option<&str>,
        env_version: Option<&str>,
        key_file: &Path,
    ) -> Result<Keyring, CryptoError> {
        if let Some(key) = env_key.filter(|k| !k.trim().is_empty()) {
            let version = match env_version {
                Some(v) => v.trim().parse().map_err(|_| {
                    CryptoError::BadMasterKey("COVER_MASTER_KEY_VERSION must be a number".into())
                })?,
                None => 1,
            };
            return Keyring::single(version, key);
        }
        let mut ring = match read_key_file(key_file)? {
            Some((version, key)) => Keyring::single(version, &key)?,
            None => {
                let key = generate_key();
                write_key_file(key_file, 1, key.expose_secret())?;
                Keyring::single(1, key.expose_secret())?
            }
        };
        // A rotation that stopped between re-encrypting and renaming the new key
        // file leaves `<file>.new`: keep it too, so nothing becomes unreadable.
        if let Some((version, key)) = read_key_file(&pending_path(key_file))? {
            let pending = Keyring::single(version, &key)?;
            ring.keys.extend(pending.keys);
        }
        Ok(ring)
    }

    /// The version new ciphertexts are sealed with.
    pub fn current_version(&self) -> i64 {
        self.current
    }

    /// Adds a key and makes it current (rotation).
    pub fn add_current(&mut self, version: i64, base64_key: &str) -> Result<(), CryptoError> {
        let added = Keyring::single(version, base64_key)?;
        self.keys.extend(added.keys);
        self.current = version;
        Ok(())
    }

    fn cipher(&self, version: i64) -> Result<Aes256Gcm, CryptoError> {
        let key = self
            .keys
            .get(&version)
            .ok_or(CryptoError::UnknownVersion(version))?;
        debug_assert_eq!(key.version, version);
        Ok(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(
            key.key.expose_secret(),
        )))
    }

    /// Encrypts `plaintext` for `project_id` under the current key.
    pub fn seal(&self, project_id: &str, plaintext: &SecretString) -> Result<Sealed, CryptoError> {
        let cipher = self.cipher(self.current)?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: project_id.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Undecryptable)?;
        Ok(Sealed {
            ciphertext: BASE64.encode(ciphertext),
            nonce: BASE64.encode(nonce.as_slice()),
            key_version: self.current,
        })
    }

    /// Decrypts a stored secret of `project_id`.
    pub fn open(&self, project_id: &str, sealed: &Sealed) -> Result<SecretString, CryptoError> {
        let cipher = self.cipher(sealed.key_version)?;
        let nonce_bytes = BASE64
            .decode(&sealed.nonce)
            .map_err(|_| CryptoError::Undecryptable)?;
        if nonce_bytes.len() != 12 {
            return Err(CryptoError::Undecryptable);
        }
        let ciphertext = BASE64
            .decode(&sealed.ciphertext)
            .map_err(|_| CryptoError::Undecryptable)?;
        let plaintext = cipher
            .decrypt(
                Nonce::from_slice(&nonce_bytes),
                Payload {
                    msg: &ciphertext,
                    aad: project_id.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Undecryptable)?;
        String::from_utf8(plaintext)
            .map(SecretString::from)
            .map_err(|_| CryptoError::Undecryptable)
    }
}

/// The file a rotation writes the new key to before it commits.
pub fn pending_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// Reads `version:base64key` from a key file, if it exists.
pub fn read_key_file(path: &Path) -> Result<Option<(i64, String)>, CryptoError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            // Owner only, whatever mode an earlier copy or an operator gave it.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                    |source| CryptoError::KeyFile {
                        path: path.to_owned(),
                        source,
                    },
                )?;
            }
            let text = text.trim();
            let (version, key) = text.split_once(':').ok_or_else(|| {
                CryptoError::BadMasterKey(format!(
                    "{} must hold `version:base64key`",
                    path.display()
                ))
            })?;
            let version = version.parse().map_err(|_| {
                CryptoError::BadMasterKey(format!("{}: bad version", path.display()))
            })?;
            Ok(Some((version, key.to_owned())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CryptoError::KeyFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes a key file readable by its owner only (mode 0600), atomically.
pub fn write_key_file(path: &Path, version: i64, base64_key: &str) -> Result<(), CryptoError> {
    use std::io::Write;
    let io = |source| CryptoError::KeyFile {
        path: path.to_owned(),
        source,
    };
    let tmp = {
        let mut name = path.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(format!("{version}:{base64_key}\n").as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The masked form of a key shown to people: `sk-ant-...k4j2`. Short keys show
/// only their last two characters; nothing else of the key ever leaves the server.
pub fn mask_key(key: &SecretString) -> String {
    let key = key.expose_secret();
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        let tail: String = chars[chars.len().saturating_sub(2)..].iter().collect();
        return format!("...{tail}");
    }
    let prefix_len = key
        .char_indices()
        .filter(|(_, c)| *c == '-')
        .map(|(i, _)| i + 1)
        .take_while(|&end| end <= 7)
        .last()
        .unwrap_or(3);
    let head: String = chars[..prefix_len.min(7)].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

/// A fresh bearer secret (`prefix` + 40 random letters and digits, 238 bits)
/// for what is shown once and stored only as its [`sha256_hex`]: API tokens,
/// invitation links, the setup token.
pub fn one_time_secret(prefix: &str) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    format!(
        "{prefix}{}",
        Alphanumeric.sample_string(&mut rand::rngs::OsRng, 40)
    )
}

/// The SHA-256 (lower-case hex) stored in place of a one-time secret. A plain
/// hash is enough: the secrets are random, so there is nothing to guess.
pub fn sha256_hex(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::single(1, generate_key().expose_secret()).unwrap()
    }

    #[test]
    fn a_sealed_key_opens_only_for_its_own_project() {
        let ring = ring();
        let secret = SecretString::from("sk-ant-api03-secret-value-k4j2");
        let sealed = ring.seal("project-a", &secret).unwrap();
        assert!(!sealed.ciphertext.contains("secret-value"));
        assert_eq!(
            ring.open("project-a", &sealed).unwrap().expose_secret(),
            secret.expose_secret()
        );
        assert!(matches!(
            ring.open("project-b", &sealed),
            Err(CryptoError::Undecryptable)
        ));
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let ring = ring();
        let secret = SecretString::from("sk-same");
        let one = ring.seal("p", &secret).unwrap();
        let two = ring.seal("p", &secret).unwrap();
        assert_ne!(one.nonce, two.nonce);
        assert_ne!(one.ciphertext, two.ciphertext);
    }

    #[test]
    fn a_tampered_ciphertext_is_refused() {
        let ring = ring();
        let mut sealed = ring.seal("p", &SecretString::from("sk-abc")).unwrap();
        let mut bytes = BASE64.decode(&sealed.ciphertext).unwrap();
        bytes[0] ^= 1;
        sealed.ciphertext = BASE64.encode(bytes);
        assert!(matches!(
            ring.open("p", &sealed),
            Err(CryptoError::Undecryptable)
        ));
    }

    #[test]
    fn after_rotation_old_ciphertexts_still_open_and_new_ones_use_the_new_key() {
        let mut ring = ring();
        let old = ring.seal("p", &SecretString::from("sk-old")).unwrap();
        ring.add_current(2, generate_key().expose_secret()).unwrap();
        let new = ring.seal("p", &SecretString::from("sk-new")).unwrap();
        assert_eq!((old.key_version, new.key_version), (1, 2));
        assert_eq!(ring.open("p", &old).unwrap().expose_secret(), "sk-old");
        let only_new = Keyring::single(2, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        assert!(matches!(
            only_new.open("p", &old),
            Err(CryptoError::UnknownVersion(1))
        ));
    }

    #[test]
    fn master_keys_must_be_32_bytes_of_base64() {
        assert!(Keyring::single(1, "c2hvcnQ=").is_err());
        assert!(Keyring::single(1, "not base64!").is_err());
    }

    #[test]
    fn the_key_file_is_created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cover.key");
        let first = Keyring::load(None, None, &path).unwrap();
        let sealed = first.seal("p", &SecretString::from("sk-x")).unwrap();
        let second = Keyring::load(None, None, &path).unwrap();
        assert_eq!(second.open("p", &sealed).unwrap().expose_secret(), "sk-x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_left_readable_by_others_is_made_owner_only_when_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cover.key");
        Keyring::load(None, None, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Keyring::load(None, None, &path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn keys_are_masked_like_the_mockup() {
        assert_eq!(
            mask_key(&SecretString::from("sk-ant-api03-abcdefghk4j2")),
            "sk-ant-...k4j2"
        );
        assert_eq!(
            mask_key(&SecretString::from("sk-proj-abcdefghijklmnop")),
            "sk-...mnop"
        );
        assert_eq!(
            mask_key(&SecretString::from("AIzaSyD-abcdefghijklmnop")),
            "AIz...mnop"
        );
        assert_eq!(mask_key(&SecretString::from("short")), "...rt");
    }
}
