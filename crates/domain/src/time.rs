//! Time as people in Norway count it: dates and times a person schedules are Europe/Oslo local time;
//! storage is UTC. The rules never read a clock; callers pass the instant in.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::Oslo;

/// The date in Norway at `now`.
pub fn oslo_date(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&Oslo).date_naive()
}

/// A time of day written `HH:MM` (24-hour, two digits each), as settings give quiet hours.
pub fn clock_time(text: &str) -> Option<NaiveTime> {
    let (h, m) = text.split_once(':')?;
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

/// The Oslo wall-clock time at `instant`.
pub fn oslo_local(instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&Oslo).naive_local()
}

/// The instant of the Oslo wall-clock time `local`. A time that does not exist (the hour skipped
/// in spring) moves forward to the first instant after the gap, so a visit planned in it still
/// happens that day; an ambiguous time (the hour repeated in autumn) takes the earlier instant, so
/// nobody waits an hour for a visit that already started. `None` only at the edges of the
/// representable range.
pub fn oslo_instant(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match Oslo.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => first_instant_from(local),
    }
}

/// The first instant whose Oslo wall-clock time is at or after `local`: for a `local` inside a
/// gap, the end of the gap. Found by bisection over whole seconds rather than by assuming a
/// one-hour jump, so it holds for any gap the time zone database has. Oslo is never more than a
/// few hours from UTC and has no other transition within a day of a gap, so the wall clock rises
/// monotonically over the day either side of `local` read as UTC.
fn first_instant_from(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    const DAY: i64 = 86_400;
    let wall =
        |secs: i64| DateTime::from_timestamp(secs, 0).map(|t| t.with_timezone(&Oslo).naive_local());
    let centre = local.and_utc().timestamp();
    // Invariant: the wall clock at `lo` is before `local`, at `hi` it is not.
    let mut lo = centre.checked_sub(DAY)?;
    let mut hi = centre.checked_add(DAY)?;
    if wall(lo)? >= local || wall(hi)? < local {
        return None;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall(mid)? >= local {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

/// The instants of a weekly visit at Oslo wall-clock time `at`: on `first` and the same weekday
/// after, `weeks` visits in all. The wall-clock time stays put across daylight-saving changes (a
/// 17:00 visit is at 17:00 in winter and summer), so the UTC hour moves instead. Times in a gap or
/// in the repeated hour are resolved as [`oslo_instant`] does.
pub fn weekly_at(first: NaiveDate, at: NaiveTime, weeks: u32) -> Vec<DateTime<Utc>> {
    (0..u64::from(weeks))
        .map_while(|week| first.checked_add_days(Days::new(week * 7)))
        .filter_map(|date| oslo_instant(date.and_time(at)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn a_clock_time_is_two_digits_colon_two_digits() {
        assert_eq!(clock_time("21:00"), NaiveTime::from_hms_opt(21, 0, 0));
        assert_eq!(clock_time("08:30"), NaiveTime::from_hms_opt(8, 30, 0));
        for bad in [
            "8:00", "24:00", "21:60", "2100", "", "ab:cd", "+1:00", "21:00:00",
        ] {
            assert_eq!(clock_time(bad), None, "{bad}");
        }
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    /// Every instant is `at` in Oslo on the expected date; returns the UTC hours.
    fn check_weekly(first: NaiveDate, at: NaiveTime, dates: [NaiveDate; 4]) -> Vec<u32> {
        let instants = weekly_at(first, at, 4);
        assert_eq!(instants.len(), 4);
        for (instant, date) in instants.iter().zip(dates) {
            let local = instant.with_timezone(&Oslo).naive_local();
            assert_eq!(local, date.and_time(at), "{instant}");
        }
        instants.iter().map(|i| i.hour()).collect()
    }

    #[test]
    fn a_weekly_visit_stays_at_the_same_local_time_across_the_spring_change() {
        // Summer time starts on Sunday 29 March 2026.
        let hours = check_weekly(
            d(2026, 3, 19),
            t(17, 0),
            [d(2026, 3, 19), d(2026, 3, 26), d(2026, 4, 2), d(2026, 4, 9)],
        );
        assert_eq!(hours, [16, 16, 15, 15]);
    }

    #[test]
    fn a_weekly_visit_stays_at_the_same_local_time_across_the_autumn_change() {
        // Summer time ends on Sunday 25 October 2026.
        let hours = check_weekly(
            d(2026, 10, 15),
            t(17, 0),
            [
                d(2026, 10, 15),
                d(2026, 10, 22),
                d(2026, 10, 29),
                d(2026, 11, 5),
            ],
        );
        assert_eq!(hours, [15, 15, 16, 16]);
    }

    #[test]
    fn a_visit_in_the_skipped_spring_hour_moves_to_the_end_of_the_gap() {
        let instants = weekly_at(d(2026, 3, 29), t(2, 30), 1);
        assert_eq!(
            instants,
            [Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap()]
        );
        let local = instants[0].with_timezone(&Oslo).naive_local();
        assert_eq!(local, d(2026, 3, 29).and_time(t(3, 0)));
    }

    #[test]
    fn a_visit_in_the_repeated_autumn_hour_takes_the_earlier_instant() {
        let instants = weekly_at(d(2026, 10, 25), t(2, 30), 1);
        // 02:30 summer time (UTC+2), not 02:30 winter time (UTC+1).
        assert_eq!(
            instants,
            [Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap()]
        );
    }

    #[test]
    fn weekly_visits_fall_on_the_same_weekday_and_count_the_weeks_in_all() {
        assert!(weekly_at(d(2026, 1, 5), t(17, 0), 0).is_empty());
        let instants = weekly_at(d(2026, 1, 5), t(17, 0), 10);
        assert_eq!(instants.len(), 10);
        for pair in instants.windows(2) {
            let (a, b) = (pair[0].with_timezone(&Oslo), pair[1].with_timezone(&Oslo));
            assert_eq!((b.date_naive() - a.date_naive()).num_days(), 7);
        }
    }

    #[test]
    fn late_evening_utc_is_already_tomorrow_in_oslo() {
        let now = Utc.with_ymd_and_hms(2026, 6, 30, 22, 30, 0).unwrap();
        assert_eq!(oslo_date(now), NaiveDate::from_ymd_opt(2026, 7, 1).unwrap());
        let winter = Utc.with_ymd_and_hms(2026, 12, 31, 22, 59, 0).unwrap();
        assert_eq!(
            oslo_date(winter),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
        let winter = Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap();
        assert_eq!(
            oslo_date(winter),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
    }
}
