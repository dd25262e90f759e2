//! Page sizes and page tokens for every List RPC. A token is opaque to callers: base64url of a small
//! JSON cursor bound to the list it came from (the RPC, the caller's agency and the filters), closed
//! by an HMAC-SHA256 tag. The key is made once per service database and kept in it
//! (`page_token_key`, created by every service's migrations), so every replica of a service reads
//! every other replica's tokens and nobody outside can make one. A token that was changed, truncated,
//! forged or used with other filters is refused with INVALID_ARGUMENT.

use crate::db::DbPool;
use crate::error::{ApiError, FieldViolation};
use crate::validate::Violations;
use aws_lc_rs::{digest, hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::sync::OnceCell;

/// The page size when a request sets none.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest page; larger requests are served this many (AIP-158).
pub const MAX_PAGE_SIZE: usize = 500;
const MAX_TOKEN_LEN: usize = 1024;
const TAG_LEN: usize = 16;

/// The page size a request asks for: 0 means the default, above the maximum means the maximum,
/// negative is a violation on `field`.
pub fn page_size(v: &mut Violations, field: &str, requested: i32) -> Option<usize> {
    match usize::try_from(requested) {
        Ok(0) => Some(DEFAULT_PAGE_SIZE),
        Ok(n) => Some(n.min(MAX_PAGE_SIZE)),
        Err(_) => {
            v.add(field, "must not be negative");
            None
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<C> {
    /// The list the token belongs to (a digest of RPC, agency and filters).
    s: String,
    /// Where the next page starts.
    c: C,
}

fn scope_digest(scope: &str) -> String {
    let d = digest::digest(&digest::SHA256, scope.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..12])
}

/// Signs and checks tokens with one key.
pub struct Codec {
    key: hmac::Key,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Codec(<key redacted>)")
    }
}

impl Codec {
    /// A codec with `secret` as its key.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// A token for the page after `cursor` in the list described by `scope`.
    pub fn encode<C: Serialize>(&self, scope: &str, cursor: &C) -> Result<String, ApiError> {
        let envelope = Envelope {
            s: scope_digest(scope),
            c: cursor,
        };
        let mut payload = serde_json::to_vec(&envelope)
            .map_err(|_| ApiError::internal("a page cursor could not be written"))?;
        let tag = hmac::sign(&self.key, &payload);
        payload.extend_from_slice(&tag.as_ref()[..TAG_LEN]);
        Ok(URL_SAFE_NO_PAD.encode(payload))
    }

    /// The cursor in `token`, if `token` is one this list issued. An empty token is the first page.
    pub fn decode<C: DeserializeOwned>(
        &self,
        token: &str,
        scope: &str,
        field: &str,
    ) -> Result<Option<C>, ApiError> {
        if token.is_empty() {
            return Ok(None);
        }
        let bad = |description: &str| {
            ApiError::InvalidArgument(vec![FieldViolation {
                field: field.to_owned(),
                description: description.to_owned(),
            }])
        };
        let not_ours = "is not a page token this list issued";
        if token.len() > MAX_TOKEN_LEN {
            return Err(bad(not_ours));
        }
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad(not_ours))?;
        if raw.len() <= TAG_LEN {
            return Err(bad(not_ours));
        }
        let (payload, tag) = raw.split_at(raw.len() - TAG_LEN);
        let expected = hmac::sign(&self.key, payload);
        // Constant-time comparison of the truncated tag.
        if aws_lc_rs::constant_time::verify_slices_are_equal(&expected.as_ref()[..TAG_LEN], tag)
            .is_err()
        {
            return Err(bad(not_ours));
        }
        let envelope: Envelope<C> = serde_json::from_slice(payload).map_err(|_| bad(not_ours))?;
        if envelope.s != scope_digest(scope) {
            return Err(bad(
                "belongs to a list with other filters; start again without a page token",
            ));
        }
        Ok(Some(envelope.c))
    }
}

/// The page tokens of one service: the codec, with its key read from (or, the first time, made in)
/// the service's database when a list first needs it.
#[derive(Debug)]
pub struct PageTokens {
    db: DbPool,
    codec: OnceCell<Codec>,
}

const CREATE_KEY: &str =
    "INSERT INTO page_token_key (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING";
const READ_KEY: &str = "SELECT secret FROM page_token_key WHERE id = 1";

impl PageTokens {
    /// Page tokens keyed by `db`'s key.
    pub fn new(db: DbPool) -> Self {
        Self {
            db,
            codec: OnceCell::new(),
        }
    }

    async fn codec(&self) -> Result<&Codec, ApiError> {
        self.codec
            .get_or_try_init(|| async {
                let mut fresh = [0u8; 32];
                rand::fill(&mut fresh)
                    .map_err(|_| ApiError::internal("no randomness for a key"))?;
                let secret: Vec<u8> = match &self.db {
                    DbPool::Postgres(pool) => {
                        sqlx::query(CREATE_KEY)
                            .bind(fresh.to_vec())
                            .execute(pool)
                            .await?;
                        sqlx::query_scalar(READ_KEY).fetch_one(pool).await?
                    }
                    DbPool::Sqlite(pool) => {
                        sqlx::query(CREATE_KEY)
                            .bind(fresh.to_vec())
                            .execute(pool)
                            .await?;
                        sqlx::query_scalar(READ_KEY).fetch_one(pool).await?
                    }
                };
                Ok(Codec::new(&secret))
            })
            .await
    }

    /// See [`Codec::encode`].
    pub async fn encode<C: Serialize>(&self, scope: &str, cursor: &C) -> Result<String, ApiError> {
        self.codec().await?.encode(scope, cursor)
    }

    /// One page of `rows`, read with a limit one more than `limit`: the first `limit` rows, and
    /// the token of the next page (bound to `scope`, carrying the last row's `cursor`) if there is
    /// one, else empty.
    pub async fn page<T, C: Serialize>(
        &self,
        mut rows: Vec<T>,
        limit: usize,
        scope: &str,
        cursor: impl Fn(&T) -> C,
    ) -> Result<(Vec<T>, String), ApiError> {
        if rows.len() <= limit {
            return Ok((rows, String::new()));
        }
        rows.truncate(limit);
        let token = match rows.last() {
            Some(last) => self.encode(scope, &cursor(last)).await?,
            None => String::new(),
        };
        Ok((rows, token))
    }

    /// See [`Codec::decode`].
    pub async fn decode<C: DeserializeOwned>(
        &self,
        token: &str,
        scope: &str,
        field: &str,
    ) -> Result<Option<C>, ApiError> {
        if token.is_empty() {
            return Ok(None);
        }
        self.codec().await?.decode(token, scope, field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codec() -> Codec {
        Codec::new(b"a test key, thirty-two bytes ok!")
    }

    #[test]
    fn a_token_round_trips_within_its_list() {
        let token = codec().encode("cases|0301|step=1", &42u64).unwrap();
        let back = codec()
            .decode::<u64>(&token, "cases|0301|step=1", "page_token")
            .unwrap();
        assert_eq!(back, Some(42));
    }

    #[test]
    fn a_token_from_another_list_or_agency_is_refused() {
        let token = codec().encode("cases|0301|step=1", &42u64).unwrap();
        assert!(
            codec()
                .decode::<u64>(&token, "cases|0301|step=2", "page_token")
                .is_err()
        );
        assert!(
            codec()
                .decode::<u64>(&token, "cases|4601|step=1", "page_token")
                .is_err()
        );
    }

    #[test]
    fn a_token_made_without_the_key_is_refused() {
        let forged = Codec::new(b"someone else's key")
            .encode("scope", &1u64)
            .unwrap();
        assert!(
            codec()
                .decode::<u64>(&forged, "scope", "page_token")
                .is_err()
        );
    }

    #[test]
    fn page_sizes_default_clamp_and_refuse_negatives() {
        let mut v = Violations::new();
        assert_eq!(page_size(&mut v, "page_size", 0), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(&mut v, "page_size", 7), Some(7));
        assert_eq!(page_size(&mut v, "page_size", 100_000), Some(MAX_PAGE_SIZE));
        assert!(v.is_empty());
        assert_eq!(page_size(&mut v, "page_size", -1), None);
        assert!(!v.is_empty());
    }

    proptest! {
        #[test]
        fn any_change_to_a_token_is_detected(pos in 0usize..80, ch in "[A-Za-z0-9_-]") {
            let token = codec().encode("scope", &"0190a8f0-0000-7000-8000-000000000000").unwrap();
            let mut chars: Vec<char> = token.chars().collect();
            let pos = pos % chars.len();
            let new = ch.chars().next().unwrap();
            prop_assume!(chars[pos] != new);
            chars[pos] = new;
            let tampered: String = chars.into_iter().collect();
            prop_assert!(codec().decode::<String>(&tampered, "scope", "page_token").is_err());
        }

        #[test]
        fn arbitrary_text_is_refused_not_panicked_on(s in ".{1,200}") {
            let _ = codec().decode::<String>(&s, "scope", "page_token");
        }
    }
}
