//! Norwegian identifiers: municipality numbers (the agency that owns a case) and national identity
//! numbers (fødselsnummer and D-numbers), validated with both check digits, including the rules that
//! apply to numbers issued from 2032.

use chrono::NaiveDate;
use std::fmt;

/// A municipality number (kommunenummer): four digits, the first two the county. The agency that owns
/// a case is identified by its municipality number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgencyId(String);

impl AgencyId {
    /// Parses a municipality number: exactly four ASCII digits, not `0000`.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) && s != "0000";
        ok.then(|| Self(s.to_owned()))
    }

    /// The four digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgencyId({})", self.0)
    }
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of national identity number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NationalIdKind {
    /// A fødselsnummer, given to everyone registered as living in Norway.
    BirthNumber,
    /// A D-number, given to others; the first digit of the day has 4 added.
    DNumber,
}

/// Why a national identity number is not valid. The messages never repeat the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NationalIdError {
    /// Not eleven ASCII digits.
    #[error("must be exactly 11 digits")]
    Format,
    /// The first six digits are not a date (after removing the D-number offset).
    #[error("the first six digits are not a valid date of birth")]
    Date,
    /// H-numbers and synthetic test numbers are not accepted for a child's case.
    #[error("H-numbers and synthetic test numbers are not accepted")]
    NotAPersonNumber,
    /// A check digit does not match.
    #[error("check digits do not match")]
    CheckDigits,
}

/// A valid Norwegian national identity number. Its `Debug` never shows the digits; use
/// [`NationalId::expose`] where the number itself must be stored or sent.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NationalId {
    digits: String,
    kind: NationalIdKind,
    birth_date: NaiveDate,
}

const K1_WEIGHTS: [u32; 9] = [3, 7, 6, 1, 8, 9, 4, 5, 2];
const K2_WEIGHTS: [u32; 10] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

impl NationalId {
    /// Validates a fødselsnummer or D-number.
    ///
    /// Check digits: the second check digit must make the weighted sum of all eleven digits divisible
    /// by 11, as always. The first check digit follows the scheme Skatteetaten uses from 2032, which
    /// allows the weighted sum of the first ten digits a remainder of 0, 1, 2 or 3 modulo 11 (numbers
    /// issued before 2032 all have remainder 0, so they stay valid). Every single-digit typing error is
    /// still caught by the second check digit.
    ///
    /// The century comes from the individual number where the classic table gives one; numbers outside
    /// that table (possible in the 2032 scheme) are accepted when the day and month are a valid date in
    /// 19YY or 20YY.
    pub fn parse(s: &str) -> Result<Self, NationalIdError> {
        let bytes = s.as_bytes();
        if bytes.len() != 11 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(NationalIdError::Format);
        }
        let d: Vec<u32> = bytes.iter().map(|b| u32::from(b - b'0')).collect();

        let k1_sum: u32 = K1_WEIGHTS.iter().zip(&d).map(|(w, x)| w * x).sum::<u32>() + d[9];
        if k1_sum % 11 > 3 {
            return Err(NationalIdError::CheckDigits);
        }
        let k2_sum: u32 = K2_WEIGHTS.iter().zip(&d).map(|(w, x)| w * x).sum::<u32>() + d[10];
        if !k2_sum.is_multiple_of(11) {
            return Err(NationalIdError::CheckDigits);
        }

        let (kind, day) = match d[0] {
            0..=3 => (NationalIdKind::BirthNumber, d[0] * 10 + d[1]),
            4..=7 => (NationalIdKind::DNumber, (d[0] - 4) * 10 + d[1]),
            _ => return Err(NationalIdError::Date),
        };
        let month = d[2] * 10 + d[3];
        if month > 12 {
            // Month + 40 is an H-number, month + 80 a synthetic (Tenor) test number.
            return Err(
                if (41..=52).contains(&month) || (81..=92).contains(&month) {
                    NationalIdError::NotAPersonNumber
                } else {
                    NationalIdError::Date
                },
            );
        }
        let yy = (d[4] * 10 + d[5]) as i32;
        let individual = d[6] * 100 + d[7] * 10 + d[8];
        let birth_date = century(individual, yy)
            .and_then(|c| NaiveDate::from_ymd_opt(c + yy, month, day))
            .or_else(|| {
                // Outside the classic table: accept a date that exists in either century.
                NaiveDate::from_ymd_opt(2000 + yy, month, day)
                    .or_else(|| NaiveDate::from_ymd_opt(1900 + yy, month, day))
            })
            .ok_or(NationalIdError::Date)?;
        Ok(Self {
            digits: s.to_owned(),
            kind,
            birth_date,
        })
    }

    /// The eleven digits, for storage and for sending to a caller allowed to see them.
    pub fn expose(&self) -> &str {
        &self.digits
    }

    /// Birth number or D-number.
    pub fn kind(&self) -> NationalIdKind {
        self.kind
    }

    /// The date of birth the number encodes.
    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// Whether the number agrees with a date of birth recorded elsewhere: the same day, month and
    /// two-digit year (the century is not reliable in every number).
    pub fn agrees_with(&self, birth_date: NaiveDate) -> bool {
        use chrono::Datelike;
        let own = self.birth_date;
        own.day() == birth_date.day()
            && own.month() == birth_date.month()
            && own.year().rem_euclid(100) == birth_date.year().rem_euclid(100)
    }
}

/// The century of birth the classic individual-number table gives, if any.
fn century(individual: u32, yy: i32) -> Option<i32> {
    match individual {
        0..=499 => Some(1900),
        500..=749 if yy >= 54 => Some(1800),
        500..=999 if yy < 40 => Some(2000),
        900..=999 if yy >= 40 => Some(1900),
        _ => None,
    }
}

impl fmt::Debug for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NationalId({:?}, <redacted>)", self.kind)
    }
}

/// Computes the two check digits for the first nine digits, classic scheme (remainder 0), or `None`
/// when the individual number cannot be used with this date. For tests and test data generators.
pub fn check_digits(first_nine: &[u8; 9]) -> Option<(u8, u8)> {
    let d: Vec<u32> = first_nine.iter().map(|&x| u32::from(x)).collect();
    let k1 = (11 - K1_WEIGHTS.iter().zip(&d).map(|(w, x)| w * x).sum::<u32>() % 11) % 11;
    if k1 == 10 {
        return None;
    }
    let k2_sum: u32 = K2_WEIGHTS
        .iter()
        .zip(d.iter().chain([k1].iter()))
        .map(|(w, x)| w * x)
        .sum();
    let k2 = (11 - k2_sum % 11) % 11;
    if k2 == 10 {
        return None;
    }
    Some((k1 as u8, k2 as u8))
}

/// A valid fødselsnummer (or D-number) for someone born on `date`: the first individual number at or
/// after `from` that the classic table gives to that century and that has usable check digits. For test
/// data and demos only.
pub fn birth_number_for(date: NaiveDate, from: u32, d_number: bool) -> Option<String> {
    use chrono::Datelike;
    let yy = date.year().rem_euclid(100);
    let day = date.day() + if d_number { 40 } else { 0 };
    (from..1000).find_map(|individual| {
        if century(individual, yy)? != date.year() - yy {
            return None;
        }
        let s = format!("{day:02}{:02}{yy:02}{individual:03}", date.month());
        let mut nine = [0u8; 9];
        for (slot, b) in nine.iter_mut().zip(s.bytes()) {
            *slot = b - b'0';
        }
        let (k1, k2) = check_digits(&nine)?;
        Some(format!("{s}{k1}{k2}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn make(date: NaiveDate, individual: u32, d_number: bool) -> Option<String> {
        use chrono::Datelike;
        let day = date.day() + if d_number { 40 } else { 0 };
        let s = format!(
            "{:02}{:02}{:02}{:03}",
            day,
            date.month(),
            date.year().rem_euclid(100),
            individual
        );
        let mut nine = [0u8; 9];
        for (i, b) in s.bytes().enumerate() {
            nine[i] = b - b'0';
        }
        let (k1, k2) = check_digits(&nine)?;
        Some(format!("{s}{k1}{k2}"))
    }

    #[test]
    fn a_known_valid_birth_number_is_accepted_with_its_birth_date() {
        // 31.12.1999, individual number 567 (from the public worked example of the check digits).
        let id = NationalId::parse("31129956715").expect("valid");
        assert_eq!(id.kind(), NationalIdKind::BirthNumber);
        // Individual number 567 with year 99 belongs to the 1800s in the classic table.
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1899, 12, 31).unwrap()
        );
    }

    #[test]
    fn wrong_length_or_non_digits_are_format_errors() {
        for s in [
            "",
            "1234567890",
            "123456789012",
            "3112995671a",
            "31129956715 ",
            "٣١١٢٩٩٥٦٧١٥",
        ] {
            assert_eq!(NationalId::parse(s), Err(NationalIdError::Format), "{s:?}");
        }
    }

    #[test]
    fn a_d_number_has_four_added_to_the_first_digit_of_the_day() {
        let date = NaiveDate::from_ymd_opt(2015, 3, 14).unwrap();
        let s = (0..500).find_map(|i| make(date, i, true)).unwrap();
        let id = NationalId::parse(&s).unwrap();
        assert_eq!(id.kind(), NationalIdKind::DNumber);
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1915, 3, 14).unwrap()
        );
        assert!(id.agrees_with(date));
    }

    #[test]
    fn h_numbers_and_synthetic_numbers_are_refused() {
        for month in [43u8, 85] {
            let full = (0..1000u32)
                .find_map(|individual| {
                    let mut nine = [0, 1, month / 10, month % 10, 1, 0, 0, 0, 0];
                    nine[6] = (individual / 100) as u8;
                    nine[7] = (individual / 10 % 10) as u8;
                    nine[8] = (individual % 10) as u8;
                    let (k1, k2) = check_digits(&nine)?;
                    Some(
                        nine.iter()
                            .map(|d| char::from(b'0' + d))
                            .collect::<String>()
                            + &format!("{k1}{k2}"),
                    )
                })
                .unwrap();
            assert_eq!(
                NationalId::parse(&full),
                Err(NationalIdError::NotAPersonNumber),
                "month {month}"
            );
        }
    }

    #[test]
    fn an_impossible_date_is_refused_even_with_matching_check_digits() {
        let mut nine = [3, 1, 0, 2, 1, 5, 5, 0, 0]; // 31.02.15
        let (k1, k2) = check_digits(&nine).unwrap_or_else(|| {
            nine[8] = 1;
            check_digits(&nine).unwrap()
        });
        let s: String = nine
            .iter()
            .map(|d| char::from(b'0' + d))
            .collect::<String>()
            + &format!("{k1}{k2}");
        assert_eq!(NationalId::parse(&s), Err(NationalIdError::Date));
    }

    #[test]
    fn the_2032_scheme_accepts_a_first_check_digit_with_remainder_one_to_three() {
        // Take a valid classic number and move k1 so the first sum has remainder r, fixing k2.
        let date = NaiveDate::from_ymd_opt(2033, 6, 1).unwrap();
        let classic = (500..1000).find_map(|i| make(date, i, false)).unwrap();
        let d: Vec<u32> = classic.bytes().map(|b| u32::from(b - b'0')).collect();
        let sum9: u32 = K1_WEIGHTS.iter().zip(&d).map(|(w, x)| w * x).sum();
        let mut accepted = 0;
        for r in 1..=3u32 {
            let k1 = (11 + r - sum9 % 11) % 11;
            if k1 == 10 {
                continue;
            }
            let k2_sum: u32 = K2_WEIGHTS
                .iter()
                .zip(d.iter().take(9).chain([k1].iter()))
                .map(|(w, x)| w * x)
                .sum();
            let k2 = (11 - k2_sum % 11) % 11;
            if k2 == 10 {
                continue;
            }
            let s = format!("{}{k1}{k2}", &classic[..9]);
            assert!(NationalId::parse(&s).is_ok(), "remainder {r} refused");
            accepted += 1;
        }
        assert!(accepted > 0);
    }

    #[test]
    fn a_first_check_digit_with_remainder_four_or_more_is_refused() {
        let classic = "31129956715";
        let d: Vec<u32> = classic.bytes().map(|b| u32::from(b - b'0')).collect();
        let sum9: u32 = K1_WEIGHTS.iter().zip(&d).map(|(w, x)| w * x).sum();
        for r in 4..=10u32 {
            let k1 = (11 + r - sum9 % 11) % 11;
            if k1 == 10 {
                continue;
            }
            let k2_sum: u32 = K2_WEIGHTS
                .iter()
                .zip(d.iter().take(9).chain([k1].iter()))
                .map(|(w, x)| w * x)
                .sum();
            let k2 = (11 - k2_sum % 11) % 11;
            if k2 == 10 {
                continue;
            }
            let s = format!("{}{k1}{k2}", &classic[..9]);
            assert_eq!(
                NationalId::parse(&s),
                Err(NationalIdError::CheckDigits),
                "remainder {r}"
            );
        }
    }

    #[test]
    fn generated_test_numbers_are_valid_for_their_date() {
        let date = NaiveDate::from_ymd_opt(2018, 5, 14).unwrap();
        for d_number in [false, true] {
            let s = birth_number_for(date, 0, d_number).unwrap();
            let id = NationalId::parse(&s).unwrap();
            assert_eq!(id.birth_date(), date);
            assert!(id.agrees_with(date));
        }
        assert_ne!(
            birth_number_for(date, 500, false),
            birth_number_for(date, 600, false)
        );
    }

    #[test]
    fn debug_never_shows_the_digits() {
        let id = NationalId::parse("31129956715").unwrap();
        assert!(!format!("{id:?}").contains("3112"));
    }

    #[test]
    fn municipality_numbers_are_four_digits() {
        assert!(AgencyId::parse("0301").is_some());
        assert!(AgencyId::parse("4601").is_some());
        for bad in ["", "301", "03011", "03a1", "0000", " 301"] {
            assert!(AgencyId::parse(bad).is_none(), "{bad:?}");
        }
    }

    fn any_valid() -> impl Strategy<Value = (String, NaiveDate, bool)> {
        (0i64..(365 * 120), 0u32..1000, any::<bool>()).prop_filter_map(
            "individual number unusable for this date",
            |(days, individual, d_number)| {
                let date = NaiveDate::from_ymd_opt(1905, 1, 1)?
                    .checked_add_signed(chrono::Duration::days(days))?;
                use chrono::Datelike;
                // Only individual numbers whose classic century matches the date.
                if century(individual, date.year().rem_euclid(100))
                    != Some(date.year() - date.year().rem_euclid(100))
                {
                    return None;
                }
                make(date, individual, d_number).map(|s| (s, date, d_number))
            },
        )
    }

    proptest! {
        #[test]
        fn every_generated_valid_number_is_accepted_with_its_date((s, date, d_number) in any_valid()) {
            let id = NationalId::parse(&s).unwrap();
            prop_assert_eq!(id.birth_date(), date);
            prop_assert_eq!(id.kind() == NationalIdKind::DNumber, d_number);
            prop_assert!(id.agrees_with(date));
        }

        #[test]
        fn every_single_digit_error_is_caught((s, _date, _d) in any_valid(), pos in 0usize..11, delta in 1u8..10) {
            let mut bytes = s.into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(NationalId::parse(&changed).is_err());
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in ".{0,20}") {
            let _ = NationalId::parse(&s);
        }
    }
}
