//! Proposing concrete visits for a visitation plan over the next weeks, without booking them.
//!
//! The plan says how often (a [`Frequency`]) and how long; this module turns that into dates and
//! times. The visits are spread evenly over the window, each placed at the first free time from its
//! target day on: the preferred time of day first, then every half hour of the allowed part of the
//! day. A time is free when it keeps clear of the child's fixed weekly commitments (school), of
//! visits already booked and of the visits proposed before it, with a gap either side.
//!
//! People plan in Europe/Oslo wall-clock time, so every candidate is a local time turned into an
//! instant with [`oslo_instant`]: a weekly 17:00 visit stays at 17:00 across both daylight-saving
//! changes. Nothing here reads a clock; the caller passes `now` in.

use crate::scope::Frequency;
use crate::time::{oslo_instant, oslo_local};
use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday,
};

/// The longest window [`propose`] looks at, in weeks. A longer request is cut to this.
pub const MAX_WEEKS: u32 = 26;

/// The longest visit [`propose`] places, in minutes: one day.
const MAX_DURATION_MINUTES: u32 = 24 * 60;

/// Minutes between the times tried after the preferred time.
const STEP_MINUTES: i64 = 30;

/// A time of day, for constants. Falls back to midnight for an impossible time, which the callers
/// here never pass.
const fn clock(hour: u32, minute: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(hour, minute, 0) {
        Some(time) => time,
        None => NaiveTime::MIN,
    }
}

/// A weekly recurring fixed commitment of the child, in Europe/Oslo local time (e.g. school).
///
/// The commitment covers `start` up to, but not including, `end` on each of its weekdays. A
/// commitment whose end is not after its start covers nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    /// The days of the week it happens on.
    pub weekdays: Vec<Weekday>,
    /// When it starts, local time.
    pub start: NaiveTime,
    /// When it ends, local time.
    pub end: NaiveTime,
}

impl Commitment {
    /// School: Monday to Friday 08:00-15:00.
    pub fn school_hours() -> Self {
        Self {
            weekdays: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            start: clock(8, 0),
            end: clock(15, 0),
        }
    }

    /// Whether the commitment takes up any of the local times from `from` up to `until`.
    fn clashes(&self, from: NaiveDateTime, until: NaiveDateTime) -> bool {
        if self.end <= self.start {
            return false;
        }
        std::iter::successors(Some(from.date()), |day| day.succ_opt())
            .take_while(|day| *day <= until.date())
            .filter(|day| self.weekdays.contains(&day.weekday()))
            .any(|day| from < day.and_time(self.end) && day.and_time(self.start) < until)
    }
}

/// A time already taken (an existing visit of the child), as instants.
///
/// It covers `start` up to, but not including, `end`. A busy time whose end is not after its start
/// covers nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    /// When it starts.
    pub start: DateTime<Utc>,
    /// When it ends.
    pub end: DateTime<Utc>,
}

/// What to propose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalRequest<'a> {
    /// The first Oslo day to consider.
    pub from: NaiveDate,
    /// How many weeks from `from`: the window is the days from `from` up to, but not including,
    /// `from` plus seven times `weeks` days. At most [`MAX_WEEKS`]; more is cut to it.
    pub weeks: u32,
    /// The plan's visits per period.
    pub frequency: Frequency,
    /// How long each visit is, in minutes. Zero or more than a day gives no proposals.
    pub duration_minutes: u32,
    /// The child's fixed weekly commitments; no visit overlaps one.
    pub commitments: &'a [Commitment],
    /// Times already taken; no visit comes within `gap_minutes` of one.
    pub busy: &'a [Busy],
    /// The preferred local start on Monday to Friday (callers pass 17:00 by default).
    pub weekday_time: NaiveTime,
    /// The preferred local start on Saturday and Sunday (callers pass 11:00 by default).
    pub weekend_time: NaiveTime,
    /// No visit starts before this local time (e.g. 09:00).
    pub earliest: NaiveTime,
    /// No visit ends after this local time (e.g. 20:00). Must be after `earliest`, or nothing is
    /// proposed.
    pub latest_end: NaiveTime,
    /// Free minutes kept between a proposal and any busy time or other proposal.
    pub gap_minutes: u32,
    /// Nothing is proposed to start before this instant.
    pub now: DateTime<Utc>,
}

/// One proposed visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    /// When it starts.
    pub start: DateTime<Utc>,
    /// When it ends: the start plus the duration.
    pub end: DateTime<Utc>,
    /// The start on the Oslo wall clock.
    pub local_start: NaiveDateTime,
}

/// The proposals and how many visits found no free slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proposals {
    /// The proposed visits, earliest first.
    pub visits: Vec<Proposal>,
    /// How many of the window's visits found no free time.
    pub unplaced: u32,
}

/// How many visits `frequency` gives over `weeks` weeks, rounded up so a schedule never gives fewer
/// visits than the plan: 1 a week over 4 weeks is 4, 4 a month over 4 weeks is 4 (48 a year times 4
/// weeks over 52, rounded up), 6 a year over 4 weeks is 1. Weeks are cut to [`MAX_WEEKS`], as
/// [`propose`] does, so this is always the number of visits [`propose`] accounts for.
pub fn visits_in_window(frequency: Frequency, weeks: u32) -> u32 {
    let weeks = u64::from(weeks.min(MAX_WEEKS));
    let visits = frequency.per_year().saturating_mul(weeks).div_ceil(52);
    u32::try_from(visits).unwrap_or(u32::MAX)
}

/// Proposes the visits of the window `req` describes, without booking them.
///
/// The window's visits ([`visits_in_window`]) are spread evenly: visit `i` of `n` aims at day
/// `i * days / n` of the window, rounded down. From that day up to the next visit's day (the last
/// visit: to the end of the window; a visit sharing its day with the next: that day only), it takes
/// the first free time, trying on each day the preferred time and then every half hour from
/// `earliest`. A visit with no free time is counted in `unplaced`. The same request always gives
/// the same proposals.
pub fn propose(req: &ProposalRequest<'_>) -> Proposals {
    let weeks = req.weeks.min(MAX_WEEKS);
    let total = visits_in_window(req.frequency, weeks);
    let Some(mut planner) = Planner::new(req) else {
        return Proposals {
            visits: Vec::new(),
            unplaced: total,
        };
    };
    let days = u64::from(weeks) * 7;
    let mut unplaced = 0u32;
    // Visits aiming at the same day are taken together: visit i aims at day k exactly when
    // i lies in [first(k), first(k + 1)).
    let first = |day: u64| (day * u64::from(total)).div_ceil(days.max(1));
    let targets: Vec<(u64, u32)> = (0..days)
        .map(|day| {
            let count = first(day + 1).saturating_sub(first(day));
            (day, u32::try_from(count).unwrap_or(u32::MAX))
        })
        .filter(|&(_, count)| count > 0)
        .collect();
    for (index, &(day, count)) in targets.iter().enumerate() {
        let next = targets.get(index + 1).map_or(days, |&(next, _)| next);
        // All but the last visit aiming at `day` search that day only. Once one of them finds it
        // full, the rest will too, as proposals only ever take time away.
        let mut same_day = count - 1;
        while same_day > 0 {
            if planner.place(day, day + 1) {
                same_day -= 1;
            } else {
                unplaced = unplaced.saturating_add(same_day);
                break;
            }
        }
        if !planner.place(day, next) {
            unplaced = unplaced.saturating_add(1);
        }
    }
    let mut visits = planner.proposals;
    visits.sort_by_key(|visit| visit.start);
    Proposals { visits, unplaced }
}

/// The state of one [`propose`] run: the request's settings and the time taken so far.
struct Planner<'r, 'a> {
    req: &'r ProposalRequest<'a>,
    duration: TimeDelta,
    gap: TimeDelta,
    /// Busy times and proposals: sorted by start, never overlapping, so their ends rise too.
    taken: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    proposals: Vec<Proposal>,
}

impl<'r, 'a> Planner<'r, 'a> {
    /// `None` when the request cannot give any proposal: no or an over-long duration, or no time
    /// between `earliest` and `latest_end`.
    fn new(req: &'r ProposalRequest<'a>) -> Option<Self> {
        if req.duration_minutes == 0
            || req.duration_minutes > MAX_DURATION_MINUTES
            || req.earliest >= req.latest_end
        {
            return None;
        }
        let duration = TimeDelta::try_minutes(i64::from(req.duration_minutes))?;
        let gap = TimeDelta::try_minutes(i64::from(req.gap_minutes))?;
        let mut busy: Vec<_> = req
            .busy
            .iter()
            .filter(|b| b.start < b.end)
            .map(|b| (b.start, b.end))
            .collect();
        busy.sort();
        let mut taken: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(busy.len());
        for (start, end) in busy {
            match taken.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => taken.push((start, end)),
            }
        }
        Some(Self {
            req,
            duration,
            gap,
            taken,
            proposals: Vec::new(),
        })
    }

    /// Places one visit at the first free time on the window's days `from` up to, but not
    /// including, `until` (day 0 is `req.from`); always tries day `from`. Whether it found one.
    fn place(&mut self, from: u64, until: u64) -> bool {
        for offset in from..until.max(from + 1) {
            let Some(date) = self.req.from.checked_add_days(Days::new(offset)) else {
                return false;
            };
            let found = self
                .candidates(date)
                .find_map(|local| self.free_slot(date, local));
            if let Some(proposal) = found {
                let at = self
                    .taken
                    .partition_point(|&(start, _)| start < proposal.start);
                self.taken.insert(at, (proposal.start, proposal.end));
                self.proposals.push(proposal);
                return true;
            }
        }
        false
    }

    /// The local start times to try on `date`, in order: the preferred time of that day of the
    /// week, then every half hour from `earliest` while the visit still ends by `latest_end`.
    fn candidates(&self, date: NaiveDate) -> impl Iterator<Item = NaiveDateTime> + use<> {
        let preferred = match date.weekday() {
            Weekday::Sat | Weekday::Sun => self.req.weekend_time,
            _ => self.req.weekday_time,
        };
        let preferred = date.and_time(preferred);
        let last_end = date.and_time(self.req.latest_end);
        let (duration, step) = (self.duration, TimeDelta::minutes(STEP_MINUTES));
        let grid = std::iter::successors(Some(date.and_time(self.req.earliest)), move |t| {
            t.checked_add_signed(step)
        })
        .take_while(move |t| {
            t.checked_add_signed(duration)
                .is_some_and(|end| end <= last_end)
        })
        .filter(move |t| *t != preferred);
        std::iter::once(preferred).chain(grid)
    }

    /// The visit starting at the Oslo wall-clock time `local` on `date`, if that time is free.
    fn free_slot(&self, date: NaiveDate, local: NaiveDateTime) -> Option<Proposal> {
        let req = self.req;
        let start = oslo_instant(local)?;
        let end = start.checked_add_signed(self.duration)?;
        // The wall clock of the instants: a start in the skipped spring hour has moved on.
        let local_start = oslo_local(start);
        let local_end = oslo_local(end);
        let fits_the_day = local_start.date() == date
            && local_end.date() == date
            && local_start.time() >= req.earliest
            && local_end.time() <= req.latest_end;
        if !fits_the_day || start < req.now {
            return None;
        }
        let (from, until) = self.wall_clock_span(local_start, local_end)?;
        if req.commitments.iter().any(|c| c.clashes(from, until)) {
            return None;
        }
        let wide_start = start
            .checked_sub_signed(self.gap)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let wide_end = end
            .checked_add_signed(self.gap)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if self.overlaps_taken(wide_start, wide_end) {
            return None;
        }
        Some(Proposal {
            start,
            end,
            local_start,
        })
    }

    /// The wall-clock times a visit from `local_start` to `local_end` shows: just those two,
    /// unless a daylight-saving change falls inside it. When the clock goes back, the wall clock
    /// repeats an hour, so the visit shows times up to its start plus its duration, and times
    /// from before its start (down to its end less its duration); when the clock goes forward,
    /// its end shows later than that. Taking the widest of these bounds covers every case.
    fn wall_clock_span(
        &self,
        local_start: NaiveDateTime,
        local_end: NaiveDateTime,
    ) -> Option<(NaiveDateTime, NaiveDateTime)> {
        let from = local_start.min(local_end.checked_sub_signed(self.duration)?);
        let until = local_end.max(local_start.checked_add_signed(self.duration)?);
        Some((from, until))
    }

    /// Whether `[start, end)` overlaps a busy time or a proposal.
    fn overlaps_taken(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        // The first taken time ending after `start`; as the ends rise, no earlier one overlaps.
        let at = self
            .taken
            .partition_point(|&(_, taken_end)| taken_end <= start);
        self.taken
            .get(at)
            .is_some_and(|&(taken_start, _)| taken_start < end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::VisitPeriod;
    use chrono::{TimeZone, Timelike};
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn at(date: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
        oslo_instant(date.and_time(t(h, m))).unwrap()
    }

    fn freq(count: u32, period: VisitPeriod) -> Frequency {
        Frequency { count, period }
    }

    fn weekly() -> Frequency {
        freq(1, VisitPeriod::Week)
    }

    /// The usual request: weekdays 17:00, weekends 11:00, 09:00-20:00, an hour's visit, no
    /// commitments, nothing busy, a long time ago.
    fn request(from: NaiveDate, weeks: u32, frequency: Frequency) -> ProposalRequest<'static> {
        ProposalRequest {
            from,
            weeks,
            frequency,
            duration_minutes: 60,
            commitments: &[],
            busy: &[],
            weekday_time: t(17, 0),
            weekend_time: t(11, 0),
            earliest: t(9, 0),
            latest_end: t(20, 0),
            gap_minutes: 0,
            now: Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    fn local_starts(proposals: &Proposals) -> Vec<NaiveDateTime> {
        proposals.visits.iter().map(|v| v.local_start).collect()
    }

    #[test]
    fn a_weekly_visit_stays_at_17_local_across_the_spring_change() {
        // Summer time starts on Sunday 28 March 2027; 16 March 2027 is a Tuesday.
        let proposals = propose(&request(d(2027, 3, 16), 4, weekly()));
        assert_eq!(proposals.unplaced, 0);
        let dates = [
            d(2027, 3, 16),
            d(2027, 3, 23),
            d(2027, 3, 30),
            d(2027, 4, 6),
        ];
        let expected: Vec<_> = dates.iter().map(|date| date.and_time(t(17, 0))).collect();
        assert_eq!(local_starts(&proposals), expected);
        for visit in &proposals.visits {
            assert_eq!(visit.local_start.weekday(), Weekday::Tue);
            assert_eq!(visit.local_start.hour(), 17);
        }
        let utc_hours: Vec<_> = proposals.visits.iter().map(|v| v.start.hour()).collect();
        assert_eq!(utc_hours, [16, 16, 15, 15]);
    }

    #[test]
    fn a_weekly_visit_stays_at_17_local_across_the_autumn_change() {
        // Summer time ends on Sunday 31 October 2027; 19 October 2027 is a Tuesday.
        let proposals = propose(&request(d(2027, 10, 19), 4, weekly()));
        assert_eq!(proposals.unplaced, 0);
        let dates = [
            d(2027, 10, 19),
            d(2027, 10, 26),
            d(2027, 11, 2),
            d(2027, 11, 9),
        ];
        let expected: Vec<_> = dates.iter().map(|date| date.and_time(t(17, 0))).collect();
        assert_eq!(local_starts(&proposals), expected);
        let utc_hours: Vec<_> = proposals.visits.iter().map(|v| v.start.hour()).collect();
        assert_eq!(utc_hours, [15, 15, 16, 16]);
    }

    #[test]
    fn a_start_in_the_skipped_spring_hour_moves_to_the_end_of_the_gap() {
        // Sunday 28 March 2027: the clock jumps from 02:00 to 03:00.
        let sunday = d(2027, 3, 28);
        let req = ProposalRequest {
            weekend_time: t(2, 30),
            earliest: t(0, 0),
            ..request(sunday, 1, weekly())
        };
        let proposals = propose(&req);
        assert_eq!(local_starts(&proposals), [sunday.and_time(t(3, 0))]);
        assert_eq!(
            proposals.visits[0].start,
            Utc.with_ymd_and_hms(2027, 3, 28, 1, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_visit_across_the_autumn_change_keeps_clear_of_a_commitment_in_the_repeated_hour() {
        // Sunday 31 October 2027: the clock goes back from 03:00 to 02:00. A visit from 02:30
        // summer time for an hour shows 02:30-03:00 and then 02:00-02:30 again, so it covers
        // 02:45 although it starts and ends at 02:30 on the wall clock.
        let sunday = d(2027, 10, 31);
        let night = [Commitment {
            weekdays: vec![Weekday::Sun],
            start: t(2, 45),
            end: t(3, 0),
        }];
        let req = ProposalRequest {
            commitments: &night,
            weekend_time: t(2, 30),
            earliest: t(0, 0),
            ..request(sunday, 1, weekly())
        };
        let proposals = propose(&req);
        assert_eq!(local_starts(&proposals), [sunday.and_time(t(0, 0))]);
    }

    #[test]
    fn weekends_use_the_weekend_time() {
        // 6 March 2027 is a Saturday.
        let proposals = propose(&request(d(2027, 3, 6), 2, weekly()));
        assert_eq!(
            local_starts(&proposals),
            [
                d(2027, 3, 6).and_time(t(11, 0)),
                d(2027, 3, 13).and_time(t(11, 0))
            ]
        );
    }

    #[test]
    fn school_hours_are_avoided_on_weekdays() {
        let school = [Commitment::school_hours()];
        // 1 March 2027 is a Monday.
        let req = ProposalRequest {
            commitments: &school,
            weekday_time: t(10, 0),
            ..request(d(2027, 3, 1), 2, weekly())
        };
        let proposals = propose(&req);
        assert_eq!(
            local_starts(&proposals),
            [
                d(2027, 3, 1).and_time(t(15, 0)),
                d(2027, 3, 8).and_time(t(15, 0))
            ]
        );
    }

    #[test]
    fn school_hours_do_not_apply_at_weekends() {
        let school = [Commitment::school_hours()];
        // 6 March 2027 is a Saturday.
        let req = ProposalRequest {
            commitments: &school,
            weekend_time: t(10, 0),
            ..request(d(2027, 3, 6), 1, weekly())
        };
        let proposals = propose(&req);
        assert_eq!(local_starts(&proposals), [d(2027, 3, 6).and_time(t(10, 0))]);
    }

    #[test]
    fn an_existing_visit_is_not_overlapped_and_the_gap_is_kept() {
        let monday = d(2027, 3, 1);
        let busy = [Busy {
            start: at(monday, 16, 0),
            end: at(monday, 18, 0),
        }];
        let school = [Commitment::school_hours()];
        let req = ProposalRequest {
            commitments: &school,
            busy: &busy,
            gap_minutes: 30,
            ..request(monday, 1, weekly())
        };
        let proposals = propose(&req);
        // 17:00 overlaps; 15:00 and 15:30 end within 30 minutes of 16:00; 18:00 starts within 30
        // minutes of its end.
        assert_eq!(local_starts(&proposals), [monday.and_time(t(18, 30))]);
        let visit = proposals.visits[0];
        assert!(visit.start >= busy[0].end + TimeDelta::minutes(30));
    }

    #[test]
    fn a_visit_moves_to_a_later_day_when_its_day_is_taken() {
        let monday = d(2027, 3, 1);
        let busy = [Busy {
            start: at(monday, 0, 0),
            end: at(d(2027, 3, 2), 0, 0),
        }];
        let req = ProposalRequest {
            busy: &busy,
            ..request(monday, 1, weekly())
        };
        let proposals = propose(&req);
        assert_eq!(local_starts(&proposals), [d(2027, 3, 2).and_time(t(17, 0))]);
    }

    #[test]
    fn nothing_is_proposed_before_now() {
        let monday = d(2027, 3, 1);
        let req = ProposalRequest {
            now: at(monday, 18, 0),
            ..request(monday, 1, weekly())
        };
        let proposals = propose(&req);
        assert_eq!(local_starts(&proposals), [monday.and_time(t(18, 0))]);

        let req = ProposalRequest {
            now: at(monday, 19, 1),
            ..request(monday, 1, weekly())
        };
        let proposals = propose(&req);
        assert_eq!(local_starts(&proposals), [d(2027, 3, 2).and_time(t(17, 0))]);
        assert!(proposals.visits.iter().all(|v| v.start >= req.now));
    }

    #[test]
    fn visits_in_window_rounds_up_so_the_plan_is_never_shortchanged() {
        assert_eq!(visits_in_window(freq(1, VisitPeriod::Week), 4), 4);
        assert_eq!(visits_in_window(freq(4, VisitPeriod::Month), 4), 4);
        assert_eq!(visits_in_window(freq(6, VisitPeriod::Year), 4), 1);
        assert_eq!(visits_in_window(freq(1, VisitPeriod::Year), 1), 1);
        assert_eq!(visits_in_window(freq(2, VisitPeriod::Month), 2), 1);
        assert_eq!(visits_in_window(freq(2, VisitPeriod::Month), 3), 2);
        assert_eq!(visits_in_window(freq(0, VisitPeriod::Week), 4), 0);
        assert_eq!(visits_in_window(freq(3, VisitPeriod::Week), 0), 0);
    }

    #[test]
    fn visits_in_window_caps_the_weeks_and_never_overflows() {
        assert_eq!(visits_in_window(weekly(), 100), MAX_WEEKS);
        assert_eq!(
            visits_in_window(freq(u32::MAX, VisitPeriod::Week), u32::MAX),
            u32::MAX
        );
    }

    #[test]
    fn a_full_calendar_leaves_visits_unplaced() {
        let from = d(2027, 3, 1);
        let busy = [Busy {
            start: at(from, 0, 0),
            end: at(d(2027, 3, 29), 0, 0),
        }];
        let req = ProposalRequest {
            busy: &busy,
            ..request(from, 4, freq(2, VisitPeriod::Week))
        };
        let proposals = propose(&req);
        assert!(proposals.visits.is_empty());
        assert_eq!(proposals.unplaced, 8);
    }

    #[test]
    fn a_day_holds_only_as_many_visits_as_fit() {
        // 10 a week in 1 week: some days get two visits; an 8-hour day fits only one 5-hour visit.
        let req = ProposalRequest {
            duration_minutes: 300,
            earliest: t(12, 0),
            ..request(d(2027, 3, 1), 1, freq(10, VisitPeriod::Week))
        };
        let proposals = propose(&req);
        assert_eq!(proposals.visits.len(), 7);
        assert_eq!(proposals.unplaced, 3);
    }

    #[test]
    fn four_a_month_over_four_weeks_gives_four_visits_spread_days_apart() {
        let proposals = propose(&request(d(2027, 3, 1), 4, freq(4, VisitPeriod::Month)));
        assert_eq!(proposals.unplaced, 0);
        assert_eq!(proposals.visits.len(), 4);
        for pair in proposals.visits.windows(2) {
            let apart = pair[1].local_start.date() - pair[0].local_start.date();
            assert!(apart.num_days() >= 3, "{pair:?}");
        }
    }

    #[test]
    fn a_zero_or_over_long_duration_proposes_nothing() {
        for duration_minutes in [0, 24 * 60 + 1, u32::MAX] {
            let req = ProposalRequest {
                duration_minutes,
                ..request(d(2027, 3, 1), 4, weekly())
            };
            let proposals = propose(&req);
            assert!(proposals.visits.is_empty());
            assert_eq!(proposals.unplaced, 4);
        }
    }

    #[test]
    fn earliest_not_before_latest_end_proposes_nothing() {
        for (earliest, latest_end) in [(t(20, 0), t(20, 0)), (t(21, 0), t(9, 0))] {
            let req = ProposalRequest {
                earliest,
                latest_end,
                ..request(d(2027, 3, 1), 4, weekly())
            };
            let proposals = propose(&req);
            assert!(proposals.visits.is_empty());
            assert_eq!(proposals.unplaced, 4);
        }
    }

    #[test]
    fn the_window_is_capped_at_26_weeks() {
        let proposals = propose(&request(d(2027, 1, 4), 1000, weekly()));
        assert_eq!(proposals.visits.len(), 26);
        assert_eq!(proposals.unplaced, 0);
        let last = proposals.visits[25].local_start.date();
        assert!(last < d(2027, 1, 4) + Days::new(26 * 7));
    }

    #[test]
    fn a_huge_frequency_fills_the_days_without_panicking() {
        let proposals = propose(&request(
            d(2027, 3, 1),
            1,
            freq(u32::MAX, VisitPeriod::Week),
        ));
        // 09:00 to 20:00 in whole hours on the half-hour grid: 11 a day.
        assert_eq!(proposals.visits.len(), 7 * 11);
        assert_eq!(
            u64::from(proposals.unplaced) + 77,
            u64::from(visits_in_window(freq(u32::MAX, VisitPeriod::Week), 1))
        );
    }

    /// An owned request, for generating.
    #[derive(Debug, Clone)]
    struct Case {
        from: NaiveDate,
        weeks: u32,
        frequency: Frequency,
        duration_minutes: u32,
        commitments: Vec<Commitment>,
        busy: Vec<Busy>,
        weekday_time: NaiveTime,
        weekend_time: NaiveTime,
        earliest: NaiveTime,
        latest_end: NaiveTime,
        gap_minutes: u32,
        now: DateTime<Utc>,
    }

    impl Case {
        fn request(&self) -> ProposalRequest<'_> {
            ProposalRequest {
                from: self.from,
                weeks: self.weeks,
                frequency: self.frequency,
                duration_minutes: self.duration_minutes,
                commitments: &self.commitments,
                busy: &self.busy,
                weekday_time: self.weekday_time,
                weekend_time: self.weekend_time,
                earliest: self.earliest,
                latest_end: self.latest_end,
                gap_minutes: self.gap_minutes,
                now: self.now,
            }
        }

        fn window_end(&self) -> NaiveDate {
            self.from + Days::new(u64::from(self.weeks) * 7)
        }
    }

    /// A day in 2026-2028, half the time in the weeks around a daylight-saving change.
    fn any_from() -> impl Strategy<Value = NaiveDate> {
        prop_oneof![
            (0u64..1096).prop_map(|days| d(2026, 1, 1) + Days::new(days)),
            (
                2026i32..=2028,
                prop_oneof![Just(3u32), Just(10u32)],
                14u32..=31
            )
                .prop_map(|(y, m, day)| d(y, m, day)),
        ]
    }

    /// A local time on the quarter hour between `from` and `until` hours.
    fn quarter_hour(from: u32, until: u32) -> impl Strategy<Value = NaiveTime> {
        (from * 4..=until * 4).prop_map(|q| t(q / 4, (q % 4) * 15))
    }

    fn any_commitment() -> impl Strategy<Value = Commitment> {
        (
            proptest::sample::subsequence(
                vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                    Weekday::Sat,
                    Weekday::Sun,
                ],
                0..=7,
            ),
            quarter_hour(0, 23),
            0u32..=6 * 60,
        )
            .prop_map(|(weekdays, start, minutes)| Commitment {
                weekdays,
                start,
                end: start
                    .overflowing_add_signed(TimeDelta::minutes(i64::from(minutes)))
                    .0
                    .max(start),
            })
    }

    fn any_case() -> impl Strategy<Value = Case> {
        let plan = (
            any_from(),
            1u32..=8,
            0u32..=10,
            proptest::sample::select(VisitPeriod::ALL),
            30u32..=240,
            0u32..=60,
        );
        let day = (
            quarter_hour(6, 21),
            quarter_hour(6, 21),
            quarter_hour(0, 10),
            quarter_hour(17, 23),
        );
        let taken = (
            proptest::collection::vec((0u32..8 * 7 * 24 * 60, 15u32..=300), 0..10),
            proptest::option::of(any_commitment()),
            any::<bool>(),
            -24 * 60i64..5 * 24 * 60,
        );
        (plan, day, taken).prop_map(
            |(
                (from, weeks, count, period, duration_minutes, gap_minutes),
                (weekday_time, weekend_time, earliest, latest_end),
                (busy, extra, school, now_minutes),
            )| {
                let window_start = oslo_instant(from.and_time(NaiveTime::MIN)).unwrap();
                let window_minutes = weeks * 7 * 24 * 60;
                let busy = busy
                    .into_iter()
                    .map(|(offset, minutes)| {
                        let start =
                            window_start + TimeDelta::minutes(i64::from(offset % window_minutes));
                        Busy {
                            start,
                            end: start + TimeDelta::minutes(i64::from(minutes)),
                        }
                    })
                    .collect();
                let commitments = school
                    .then(Commitment::school_hours)
                    .into_iter()
                    .chain(extra)
                    .collect();
                Case {
                    from,
                    weeks,
                    frequency: Frequency { count, period },
                    duration_minutes,
                    commitments,
                    busy,
                    weekday_time,
                    weekend_time,
                    earliest,
                    latest_end,
                    gap_minutes,
                    now: window_start + TimeDelta::minutes(now_minutes),
                }
            },
        )
    }

    fn oslo(instant: DateTime<Utc>) -> NaiveDateTime {
        oslo_local(instant)
    }

    proptest! {
        #[test]
        fn proposals_never_overlap_each_other_or_busy_time_and_keep_the_gap(case in any_case()) {
            let proposals = propose(&case.request());
            let gap = TimeDelta::minutes(i64::from(case.gap_minutes));
            for (i, a) in proposals.visits.iter().enumerate() {
                for b in &proposals.visits[i + 1..] {
                    prop_assert!(a.end + gap <= b.start || b.end + gap <= a.start, "{a:?} {b:?}");
                }
                for busy in &case.busy {
                    prop_assert!(
                        a.end + gap <= busy.start || busy.end + gap <= a.start,
                        "{a:?} {busy:?}"
                    );
                }
            }
        }

        #[test]
        fn proposals_never_intersect_a_commitment_in_local_time(case in any_case()) {
            let proposals = propose(&case.request());
            for visit in &proposals.visits {
                let (start, end) = (oslo(visit.start), oslo(visit.end));
                prop_assert_eq!(start.date(), end.date());
                for c in &case.commitments {
                    if c.weekdays.contains(&start.weekday()) && c.start < c.end {
                        prop_assert!(
                            end.time() <= c.start || c.end <= start.time(),
                            "{visit:?} {c:?}"
                        );
                    }
                }
            }
        }

        #[test]
        fn proposals_lie_in_the_window_the_allowed_hours_and_not_before_now(case in any_case()) {
            let proposals = propose(&case.request());
            for visit in &proposals.visits {
                let (start, end) = (oslo(visit.start), oslo(visit.end));
                prop_assert!(start.date() >= case.from && start.date() < case.window_end());
                prop_assert!(visit.start >= case.now);
                prop_assert!(start.time() >= case.earliest);
                prop_assert!(end.time() <= case.latest_end && end.date() == start.date());
            }
        }

        #[test]
        fn the_local_start_is_the_oslo_wall_clock_of_the_start(case in any_case()) {
            let proposals = propose(&case.request());
            let duration = TimeDelta::minutes(i64::from(case.duration_minutes));
            for visit in &proposals.visits {
                prop_assert_eq!(visit.local_start, oslo(visit.start));
                prop_assert_eq!(visit.end - visit.start, duration);
            }
        }

        #[test]
        fn every_visit_of_the_window_is_proposed_or_counted_unplaced(case in any_case()) {
            let proposals = propose(&case.request());
            let placed = u32::try_from(proposals.visits.len()).unwrap();
            prop_assert_eq!(
                placed + proposals.unplaced,
                visits_in_window(case.frequency, case.weeks)
            );
        }

        #[test]
        fn proposing_twice_gives_the_same_proposals_sorted_by_start(case in any_case()) {
            let first = propose(&case.request());
            let second = propose(&case.request());
            prop_assert!(first.visits.windows(2).all(|pair| pair[0].start < pair[1].start));
            prop_assert_eq!(first, second);
        }
    }
}
