//! Validation at the edge: requests are checked field by field and every problem is collected, so a
//! caller learns all that is wrong in one answer (INVALID_ARGUMENT with one field violation each).
//! The helpers return the parsed value, or record a violation and return `None`.

use crate::error::{ApiError, FieldViolation};
use chrono::NaiveDate;
use landsby_proto::common;
use uuid::Uuid;

/// The most field violations one answer lists.
pub const MAX_VIOLATIONS: usize = 50;

/// The collected problems of one request.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// No problems yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with `field`. After [`MAX_VIOLATIONS`] the rest are summed up in one, so an
    /// answer stays small whatever the request.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        match self.0.len().cmp(&MAX_VIOLATIONS) {
            std::cmp::Ordering::Less => self.0.push(FieldViolation {
                field: field.into(),
                description: description.into(),
            }),
            std::cmp::Ordering::Equal => self.0.push(FieldViolation {
                field: "request".into(),
                description: "has more problems than are listed; fix these first".into(),
            }),
            std::cmp::Ordering::Greater => {}
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was recorded, else INVALID_ARGUMENT with every violation.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }

    /// As [`finish`](Self::finish), between the steps of a validation that goes on when this passes.
    pub fn check(&mut self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(std::mem::take(&mut self.0)))
        }
    }

    /// `value` when nothing was recorded; for building a validated value in one expression.
    pub fn into_result<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match (self.0.is_empty(), value) {
            (true, Some(v)) => Ok(v),
            (true, None) => Err(ApiError::internal(
                "validation produced no value and no violation",
            )),
            (false, _) => Err(ApiError::InvalidArgument(self.0)),
        }
    }

    /// A required message field: records "is required" when it is missing.
    pub fn required<'a, T>(&mut self, field: &str, value: Option<&'a T>) -> Option<&'a T> {
        if value.is_none() {
            self.add(field, "is required");
        }
        value
    }

    /// A UUID in its hyphenated text form.
    pub fn uuid(&mut self, field: &str, value: &str) -> Option<Uuid> {
        if value.is_empty() {
            self.add(field, "is required");
            return None;
        }
        match Uuid::try_parse(value) {
            Ok(id) if value.len() == 36 => Some(id),
            _ => {
                self.add(
                    field,
                    "must be a UUID (e.g. 0190a8f0-58c3-7cc2-9f3e-2b0f1c5d7a10)",
                );
                None
            }
        }
    }

    /// A repeated field of 1 to `max` entries (a batch's items, a list of ids): false, with the
    /// violation added, when it is empty or longer.
    pub fn count(&mut self, field: &str, len: usize, max: usize) -> bool {
        if len == 0 {
            self.add(field, "is required: at least one");
            false
        } else if len > max {
            self.add(field, format!("at most {max}"));
            false
        } else {
            true
        }
    }

    /// A list of 1 to `max` UUIDs without repeats (each checked as [`Violations::uuid`], named
    /// `field[i]`).
    pub fn uuids(&mut self, field: &str, values: &[String], max: usize) -> Option<Vec<Uuid>> {
        if !self.count(field, values.len(), max) {
            return None;
        }
        let before = self.0.len();
        let mut seen = std::collections::HashSet::new();
        let mut ids = Vec::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            let name = format!("{field}[{i}]");
            if let Some(id) = self.uuid(&name, value) {
                if !seen.insert(id) {
                    self.add(name, "is a repeat");
                }
                ids.push(id);
            }
        }
        (self.0.len() == before).then_some(ids)
    }

    /// An optional UUID: empty means none.
    pub fn optional_uuid(&mut self, field: &str, value: &str) -> Option<Option<Uuid>> {
        if value.is_empty() {
            Some(None)
        } else {
            self.uuid(field, value).map(Some)
        }
    }

    /// Required free text: trimmed, 1 to `max` characters, no control characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> Option<String> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.add(field, "is required and must not be blank");
            return None;
        }
        self.optional_text(field, value, max)
    }

    /// Optional free text: trimmed, at most `max` characters, no control characters.
    pub fn optional_text(&mut self, field: &str, value: &str, max: usize) -> Option<String> {
        let trimmed = value.trim();
        if trimmed.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
            None
        } else if trimmed.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
            None
        } else {
            Some(trimmed.to_owned())
        }
    }

    /// The paths of an update mask (`update_mask`, AIP-134): at least one, each in `allowed` and
    /// named once. A path in `refused` is refused with its reason; any other with "is not an
    /// updatable field". A path is named by its index, never repeated back.
    pub fn mask_paths<'m>(
        &mut self,
        mask: Option<&'m prost_types::FieldMask>,
        allowed: &[&str],
        refused: &[(&str, &str)],
    ) -> Vec<&'m str> {
        let Some(mask) = mask.filter(|m| !m.paths.is_empty()) else {
            self.add("update_mask", "must name at least one field to change");
            return Vec::new();
        };
        if mask.paths.len() > allowed.len() + refused.len() {
            self.add(
                "update_mask",
                "names more fields than can change; name each field once",
            );
            return Vec::new();
        }
        let mut out: Vec<&str> = Vec::new();
        for (i, path) in mask.paths.iter().enumerate() {
            let at = format!("update_mask.paths[{i}]");
            if out.contains(&path.as_str()) {
                self.add(at, "names a field twice");
            } else if allowed.contains(&path.as_str()) {
                out.push(path.as_str());
            } else if let Some((_, why)) = refused.iter().find(|(p, _)| p == path) {
                self.add(at, *why);
            } else {
                self.add(at, "is not an updatable field");
            }
        }
        out
    }

    /// A required date; `field` is the path of the Date message.
    pub fn date(&mut self, field: &str, value: Option<&common::Date>) -> Option<NaiveDate> {
        let date = self.required(field, value)?;
        self.date_value(field, date)
    }

    /// A required instant, kept at the precision both databases store (microseconds).
    pub fn timestamp(
        &mut self,
        field: &str,
        value: Option<&prost_types::Timestamp>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::SubsecRound;
        let t = self.required(field, value)?;
        let instant = u32::try_from(t.nanos)
            .ok()
            .and_then(|nanos| chrono::DateTime::from_timestamp(t.seconds, nanos))
            .filter(|i| {
                use chrono::Datelike;
                (1900..=2199).contains(&i.year())
            });
        if instant.is_none() {
            self.add(field, "must be a valid instant between 1900 and 2199");
        }
        instant.map(|i| i.trunc_subsecs(6))
    }

    /// An optional date: an absent message means none.
    pub fn optional_date(
        &mut self,
        field: &str,
        value: Option<&common::Date>,
    ) -> Option<Option<NaiveDate>> {
        match value {
            None => Some(None),
            Some(d) => self.date_value(field, d).map(Some),
        }
    }

    fn date_value(&mut self, field: &str, d: &common::Date) -> Option<NaiveDate> {
        if !(1900..=2199).contains(&d.year) {
            self.add(format!("{field}.year"), "must be between 1900 and 2199");
            return None;
        }
        let date = u32::try_from(d.month)
            .ok()
            .zip(u32::try_from(d.day).ok())
            .and_then(|(m, day)| NaiveDate::from_ymd_opt(d.year, m, day));
        if date.is_none() {
            self.add(field, "is not a calendar date");
        }
        date
    }

    /// The version a required etag names.
    pub fn etag(&mut self, field: &str, value: &str) -> Option<i64> {
        if value.is_empty() {
            self.add(field, "is required: send the etag of the version you read");
            return None;
        }
        let version = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v > 0);
        if version.is_none() {
            self.add(field, "is not an etag this service issued");
        }
        version
    }

    /// A required enum: records a violation for the zero value and for numbers the contract does not
    /// define (a client built from a newer contract).
    pub fn enumeration<P, D>(
        &mut self,
        field: &str,
        raw: i32,
        known: impl Fn(i32) -> Option<P>,
        map: impl Fn(P) -> Option<D>,
    ) -> Option<D> {
        match known(raw).map(&map) {
            Some(Some(v)) => Some(v),
            Some(None) => {
                self.add(field, "is required");
                None
            }
            None => {
                self.add(field, format!("{raw} is not a known value"));
                None
            }
        }
    }

    /// An optional enum: the zero value means none.
    pub fn optional_enumeration<P, D>(
        &mut self,
        field: &str,
        raw: i32,
        known: impl Fn(i32) -> Option<P>,
        map: impl Fn(P) -> Option<D>,
    ) -> Option<Option<D>> {
        match known(raw).map(&map) {
            Some(v) => Some(v),
            None => {
                self.add(field, format!("{raw} is not a known value"));
                None
            }
        }
    }
}

/// The known values of a prost enum field, as [`Violations::enumeration`] takes them.
pub fn known<E: TryFrom<i32>>(raw: i32) -> Option<E> {
    E::try_from(raw).ok()
}

/// A request id for a creating call: empty means none (no retry protection), else a UUID.
pub fn request_id(v: &mut Violations, field: &str, value: &str) -> Option<Option<Uuid>> {
    v.optional_uuid(field, value)
}

/// A digest of a request, to tell a retry (the same request) from a new request that reuses a
/// request id. Callers clear the request id before taking it.
pub fn fingerprint(message: &impl prost::Message) -> String {
    fingerprint_bytes(&message.encode_to_vec())
}

/// A digest of bytes, as [`fingerprint`] makes. For a request with a map field, whose encoding
/// follows the map's unstable order, fingerprint the request without the map and the map's
/// entries in key order.
pub fn fingerprint_bytes(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Now, at the precision both databases store (microseconds), so what a write returns equals what a
/// later read returns.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// The date as the contract carries it.
pub fn date_to_proto(date: NaiveDate) -> common::Date {
    use chrono::Datelike;
    common::Date {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

/// The instant as the contract carries it.
pub fn timestamp_to_proto(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// An instant another landsby service sent, if it is one (reading an answer, not checking a
/// request: a malformed one is simply absent).
pub fn timestamp_from_proto(
    t: Option<&prost_types::Timestamp>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = t?;
    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

/// A date another landsby service sent, if it is one.
pub fn date_from_proto(d: Option<&common::Date>) -> Option<NaiveDate> {
    let d = d?;
    NaiveDate::from_ymd_opt(
        d.year,
        u32::try_from(d.month).ok()?,
        u32::try_from(d.day).ok()?,
    )
}

/// An etag for a version: opaque to callers.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut v = Violations::new();
        v.text("a", "   ", 10);
        v.uuid("b", "nope");
        v.date(
            "c",
            Some(&common::Date {
                year: 2026,
                month: 2,
                day: 30,
            }),
        );
        v.date("d", None);
        match v.finish() {
            Err(ApiError::InvalidArgument(violations)) => {
                let fields: Vec<_> = violations.iter().map(|f| f.field.as_str()).collect();
                assert_eq!(fields, ["a", "b", "c", "d"]);
            }
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn text_is_trimmed_bounded_and_free_of_control_characters() {
        let mut v = Violations::new();
        assert_eq!(v.text("a", "  Kari  ", 10), Some("Kari".into()));
        assert_eq!(
            v.text("b", "Ærlig Åse Øye", 13),
            Some("Ærlig Åse Øye".into())
        );
        assert!(v.is_empty());
        assert_eq!(v.text("c", "x".repeat(11).as_str(), 10), None);
        assert_eq!(v.text("d", "a\u{0}b", 10), None);
        assert_eq!(v.0.len(), 2);
    }

    #[test]
    fn instants_are_required_in_range_and_kept_to_microseconds() {
        let mut v = Violations::new();
        let t = prost_types::Timestamp {
            seconds: 1_795_000_000,
            nanos: 123_456_789,
        };
        let got = v.timestamp("t", Some(&t)).unwrap();
        assert_eq!(got.timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(timestamp_to_proto(got).seconds, t.seconds);
        assert_eq!(v.timestamp("missing", None), None);
        let negative_nanos = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(v.timestamp("nanos", Some(&negative_nanos)), None);
        let far = prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(v.timestamp("far", Some(&far)), None);
        match v.finish() {
            Err(ApiError::InvalidArgument(violations)) => {
                let fields: Vec<_> = violations.iter().map(|f| f.field.as_str()).collect();
                assert_eq!(fields, ["missing", "nanos", "far"]);
            }
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn a_flood_of_problems_is_summed_up() {
        let mut v = Violations::new();
        for i in 0..1000 {
            v.add(format!("f{i}"), "bad");
        }
        assert_eq!(v.0.len(), MAX_VIOLATIONS + 1);
        assert_eq!(v.0[MAX_VIOLATIONS].field, "request");
    }

    #[test]
    fn etags_round_trip_and_foreign_etags_are_refused() {
        let mut v = Violations::new();
        assert_eq!(v.etag("etag", &etag(7)), Some(7));
        for bad in ["", "7", "\"x\"", "\"-1\"", "\"0\"", "W/\"7\""] {
            assert_eq!(v.etag("etag", bad), None, "{bad}");
        }
        assert_eq!(v.0.len(), 6);
    }

    #[test]
    fn uuids_must_be_hyphenated() {
        let mut v = Violations::new();
        assert!(
            v.uuid("a", "0190a8f0-58c3-7cc2-9f3e-2b0f1c5d7a10")
                .is_some()
        );
        assert!(v.uuid("b", "0190a8f058c37cc29f3e2b0f1c5d7a10").is_none());
        assert!(v.uuid("c", "").is_none());
    }

    #[test]
    fn a_list_holds_one_to_max_entries() {
        let mut v = Violations::new();
        assert!(v.count("items", 1, 3));
        assert!(v.count("items", 3, 3));
        assert!(v.is_empty());
        assert!(!v.count("empty", 0, 3));
        assert!(!v.count("long", 4, 3));
        let said: Vec<_> =
            v.0.iter()
                .map(|f| (f.field.as_str(), f.description.as_str()))
                .collect();
        assert_eq!(
            said,
            [
                ("empty", "is required: at least one"),
                ("long", "at most 3")
            ]
        );
    }
}
