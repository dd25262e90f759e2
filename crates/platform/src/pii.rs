//! National identity numbers at rest: sealed with AES-256-GCM under the current key of
//! `personal_data.key_files` (each file: 32 random bytes, base64), and findable through a keyed hash
//! (HMAC-SHA256 under `personal_data.hash_key_file`) rather than the number itself. A sealed value
//! reads `enc1:<key id>:<base64 of nonce, ciphertext and tag>`; the key id (the first 8 bytes of the
//! key's SHA-256, hex) says which key opens it, so keys rotate by putting a new file first and keeping
//! the old ones until every row has been written again (docs/security.md).
//!
//! The case service installs one protector per process at start ([`install`]); the store seals and
//! opens through it.

use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const PREFIX: &str = "enc1:";
/// The additional data every sealed value is bound to: a value sealed for another purpose does
/// not open here.
const AAD: &[u8] = b"landsby national id";

/// Seals and opens identity numbers, and hashes them for lookup.
pub struct NinProtector {
    current: String,
    keys: HashMap<String, LessSafeKey>,
    hash_key: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for NinProtector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NinProtector")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

fn key_id(key: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key);
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl NinProtector {
    /// From raw 32-byte keys (the first seals) and a hash key.
    pub fn new(keys: &[Vec<u8>], hash_key: &[u8]) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut current = None;
        for key in keys {
            let unbound = UnboundKey::new(&AES_256_GCM, key)
                .map_err(|_| "a key is not 32 bytes".to_owned())?;
            let id = key_id(key);
            current.get_or_insert_with(|| id.clone());
            map.insert(id, LessSafeKey::new(unbound));
        }
        let current = current.ok_or("no key")?;
        if hash_key.len() < 32 {
            return Err("the hash key is shorter than 32 bytes".into());
        }
        Ok(Self {
            current,
            keys: map,
            hash_key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, hash_key),
        })
    }

    /// From the settings: `personal_data.key_files` and `personal_data.hash_key_file`; in dev mode,
    /// when they are not set, keys made once in the data directory. Outside dev mode they are
    /// required: a key lost is every identity number lost.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let p = &config.personal_data;
        let invalid =
            |setting: &'static str, problem: String| ConfigError::Invalid { setting, problem };
        let (key_files, hash_file) = if p.key_files.is_empty()
            || p.hash_key_file.as_os_str().is_empty()
        {
            if !config.dev_mode {
                return Err(invalid(
                    "personal_data.key_files",
                    "personal_data.key_files and personal_data.hash_key_file are required outside dev mode"
                        .into(),
                ));
            }
            let dir = &config.data_dir;
            (
                vec![dev_key(&dir.join("nin-key")).map_err(|e| invalid("data_dir", e))?],
                dev_key(&dir.join("nin-hash-key")).map_err(|e| invalid("data_dir", e))?,
            )
        } else {
            (p.key_files.clone(), p.hash_key_file.clone())
        };
        let mut keys = Vec::new();
        for file in &key_files {
            keys.push(read_key(file).map_err(|e| invalid("personal_data.key_files", e))?);
        }
        let hash = read_key(&hash_file).map_err(|e| invalid("personal_data.hash_key_file", e))?;
        Self::new(&keys, &hash).map_err(|e| invalid("personal_data.key_files", e))
    }

    /// `nin` sealed under the current key.
    pub fn seal(&self, nin: &str) -> Result<String, ApiError> {
        let key = self
            .keys
            .get(&self.current)
            .ok_or_else(|| ApiError::internal("the current key is missing"))?;
        let mut nonce = [0_u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ApiError::internal("no randomness for a nonce"))?;
        let mut data = nin.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(AAD),
            &mut data,
        )
        .map_err(|_| ApiError::internal("could not seal an identity number"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend(data);
        Ok(format!(
            "{PREFIX}{}:{}",
            self.current,
            STANDARD.encode(sealed)
        ))
    }

    /// The identity number in `stored`: sealed, or (written before sealing began) as it is.
    pub fn open(&self, stored: &str) -> Result<String, ApiError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let unreadable = || ApiError::internal("a sealed identity number does not open");
        let (id, body) = rest.split_once(':').ok_or_else(unreadable)?;
        let key = self.keys.get(id).ok_or_else(|| {
            ApiError::internal("an identity number is sealed with a key not configured")
        })?;
        let mut bytes = STANDARD.decode(body).map_err(|_| unreadable())?;
        if bytes.len() < NONCE_LEN {
            return Err(unreadable());
        }
        let mut data = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| unreadable())?;
        let plain = key
            .open_in_place(nonce, Aad::from(AAD), &mut data)
            .map_err(|_| unreadable())?;
        String::from_utf8(plain.to_vec()).map_err(|_| unreadable())
    }

    /// The keyed hash that finds `nin` without storing it (hex).
    pub fn lookup_hash(&self, nin: &str) -> String {
        aws_lc_rs::hmac::sign(&self.hash_key, nin.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn read_key(path: &Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    STANDARD
        .decode(text.trim())
        .map_err(|_| format!("{}: not base64", path.display()))
}

/// A dev key at `path`, made (32 random bytes, mode 0600) if there is none.
fn dev_key(path: &Path) -> Result<PathBuf, String> {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut key = [0_u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| "no randomness for a key".to_owned())?;
        write_secret(path, &STANDARD.encode(key))?;
    }
    Ok(path.to_path_buf())
}

/// Writes `text` to a new file readable by its owner only.
pub fn write_secret(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

static PROTECTOR: OnceLock<NinProtector> = OnceLock::new();

/// Makes `protector` the process's (the first installed stays: one case service per process, and
/// tests share one key set).
pub fn install(protector: NinProtector) {
    let _ = PROTECTOR.set(protector);
}

/// The process's protector.
pub fn protector() -> Result<&'static NinProtector, ApiError> {
    PROTECTOR
        .get()
        .ok_or_else(|| ApiError::internal("no identity-number key is installed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Vec<u8> {
        vec![b; 32]
    }

    #[test]
    fn a_sealed_number_opens_only_with_its_key_and_unchanged() {
        let p = NinProtector::new(&[key(1)], &key(9)).unwrap();
        let sealed = p.seal("14051850012").unwrap();
        assert!(sealed.starts_with("enc1:") && !sealed.contains("14051850012"));
        assert_ne!(
            sealed,
            p.seal("14051850012").unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(p.open(&sealed).unwrap(), "14051850012");
        // Tampered, or under a key not configured: refused.
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(p.open(&String::from_utf8(bytes).unwrap()).is_err());
        let other = NinProtector::new(&[key(2)], &key(9)).unwrap();
        assert!(other.open(&sealed).is_err());
        // Written before sealing began: read as it is.
        assert_eq!(p.open("14051850012").unwrap(), "14051850012");
    }

    #[test]
    fn a_new_key_seals_and_the_old_one_still_opens() {
        let old = NinProtector::new(&[key(1)], &key(9)).unwrap();
        let sealed_old = old.seal("14051850012").unwrap();
        let rotated = NinProtector::new(&[key(2), key(1)], &key(9)).unwrap();
        assert_eq!(rotated.open(&sealed_old).unwrap(), "14051850012");
        let sealed_new = rotated.seal("14051850012").unwrap();
        assert_ne!(sealed_new.split(':').nth(1), sealed_old.split(':').nth(1));
        assert!(old.open(&sealed_new).is_err());
    }

    #[test]
    fn the_lookup_hash_is_keyed_and_stable() {
        let p = NinProtector::new(&[key(1)], &key(9)).unwrap();
        let q = NinProtector::new(&[key(2)], &key(9)).unwrap();
        let r = NinProtector::new(&[key(1)], &key(8)).unwrap();
        let h = p.lookup_hash("14051850012");
        assert_eq!(h.len(), 64);
        assert_eq!(
            h,
            q.lookup_hash("14051850012"),
            "the sealing key does not matter"
        );
        assert_ne!(h, r.lookup_hash("14051850012"), "the hash key does");
        assert_ne!(h, p.lookup_hash("14051850013"));
        assert!(NinProtector::new(&[vec![1; 16]], &key(9)).is_err());
        assert!(NinProtector::new(&[key(1)], &[1; 8]).is_err());
    }
}
