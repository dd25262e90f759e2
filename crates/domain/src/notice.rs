//! The words the notification service sends: which parameters each kind of notice takes
//! ([`Kind::params`], [`check`]), the subject and body in the recipient's language ([`render`]),
//! and the removal of the foster home's protected details before a notice goes to a parent-side
//! recipient ([`parent_side`], [`redact`]).
//!
//! Pure: instants are shown on the Europe/Oslo wall clock and never compared with a clock.
//! Problems are described without echoing the value, since a value can hold personal data.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Europe::Oslo;

use crate::vocabulary::{Affiliation, Language, Step};

crate::coded_enum! {
    /// What a notice is about. The kind decides the parameters ([`Kind::params`]) and the words.
    Kind {
        /// A visit has been arranged.
        VisitScheduled = "visit_scheduled",
        /// A visit has been moved or changed.
        VisitChanged = "visit_changed",
        /// A visit has been cancelled.
        VisitCancelled = "visit_cancelled",
        /// A reminder of a coming visit.
        VisitReminder = "visit_reminder",
        /// The visitation plan has changed.
        PlanChanged = "plan_changed",
        /// The case has moved to another step of the staircase.
        StepChanged = "step_changed",
        /// A review is coming due (to the caseworker).
        ReviewDue = "review_due",
        /// A review is overdue (to the team lead).
        ReviewOverdue = "review_overdue",
        /// A completed visit's report raised a concern (to the caseworker).
        VisitConcern = "visit_concern",
        /// An invitation to a family group conference (familieråd).
        ConferenceInvitation = "conference_invitation",
        /// A message a caseworker wrote: subject and body as given.
        FreeText = "free_text",
    }
}

/// The type of one parameter value. Parameters arrive as text (a `map<string, string>` over gRPC);
/// the type says what text is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamType {
    /// An RFC 3339 date and time with an offset, e.g. `2027-03-02T16:00:00Z`. Shown on the
    /// Europe/Oslo wall clock.
    Instant,
    /// A whole number of minutes, 15 to 10080 (a week).
    Minutes,
    /// A step code: `safety`, `involvement` or `responsibility`.
    Step,
    /// 1 to 500 characters, not blank, without control characters other than `\n` (bidirectional
    /// formatting characters count as control characters).
    Text,
    /// Like [`ParamType::Text`], up to 4000 characters: the body of a free-text message.
    LongText,
    /// A date as `YYYY-MM-DD`.
    Date,
}

/// One parameter a kind of notice takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// The parameter's name, the key in the request's map.
    pub name: &'static str,
    /// What text it accepts.
    pub ty: ParamType,
    /// Whether the notice needs it. An optional parameter is left out when it does not apply,
    /// never sent empty.
    pub required: bool,
}

const fn req(name: &'static str, ty: ParamType) -> ParamSpec {
    ParamSpec {
        name,
        ty,
        required: true,
    }
}

const fn opt(name: &'static str, ty: ParamType) -> ParamSpec {
    ParamSpec {
        name,
        ty,
        required: false,
    }
}

const VISIT_SCHEDULED: &[ParamSpec] = &[
    req("start", ParamType::Instant),
    req("duration_minutes", ParamType::Minutes),
    req("place", ParamType::Text),
    opt("activity", ParamType::Text),
];
const VISIT_CHANGED: &[ParamSpec] = &[
    req("start", ParamType::Instant),
    opt("previous_start", ParamType::Instant),
    opt("duration_minutes", ParamType::Minutes),
    opt("place", ParamType::Text),
];
const VISIT_CANCELLED: &[ParamSpec] = &[
    req("start", ParamType::Instant),
    opt("reason", ParamType::Text),
];
const VISIT_REMINDER: &[ParamSpec] = &[
    req("start", ParamType::Instant),
    req("place", ParamType::Text),
];
const PLAN_CHANGED: &[ParamSpec] = &[
    req("effective", ParamType::Date),
    opt("summary", ParamType::Text),
];
const STEP_CHANGED: &[ParamSpec] = &[
    req("step", ParamType::Step),
    req("effective", ParamType::Date),
];
const REVIEW: &[ParamSpec] = &[req("due", ParamType::Date), req("review", ParamType::Text)];
const VISIT_CONCERN: &[ParamSpec] = &[req("start", ParamType::Instant)];
const CONFERENCE_INVITATION: &[ParamSpec] = &[
    req("start", ParamType::Instant),
    req("place", ParamType::Text),
    opt("coordinator", ParamType::Text),
];
const FREE_TEXT: &[ParamSpec] = &[
    req("subject", ParamType::Text),
    req("body", ParamType::LongText),
];

impl Kind {
    /// The parameters this kind takes, in the order problems are reported.
    ///
    /// - `visit_scheduled`: `start`, `duration_minutes`, `place` (a place description such as
    ///   "Barneverntjenestens lokaler"), optional `activity`.
    /// - `visit_changed`: `start` (the time that applies now), optional `previous_start`,
    ///   `duration_minutes` and `place`.
    /// - `visit_cancelled`: `start`, optional `reason`.
    /// - `visit_reminder`: `start`, `place`.
    /// - `plan_changed`: `effective` (a date), optional `summary`.
    /// - `step_changed`: `step`, `effective`.
    /// - `review_due`, `review_overdue`: `due` (a date), `review` (which review).
    /// - `visit_concern`: `start` (when the visit began).
    /// - `conference_invitation`: `start`, `place`, optional `coordinator`.
    /// - `free_text`: `subject` (text), `body` (long text).
    pub fn params(self) -> &'static [ParamSpec] {
        match self {
            Kind::VisitScheduled => VISIT_SCHEDULED,
            Kind::VisitChanged => VISIT_CHANGED,
            Kind::VisitCancelled => VISIT_CANCELLED,
            Kind::VisitReminder => VISIT_REMINDER,
            Kind::PlanChanged => PLAN_CHANGED,
            Kind::StepChanged => STEP_CHANGED,
            Kind::ReviewDue | Kind::ReviewOverdue => REVIEW,
            Kind::VisitConcern => VISIT_CONCERN,
            Kind::ConferenceInvitation => CONFERENCE_INVITATION,
            Kind::FreeText => FREE_TEXT,
        }
    }

    /// Whether the notice goes to agency staff (reviews) rather than to the families.
    fn internal(self) -> bool {
        matches!(
            self,
            Kind::ReviewDue | Kind::ReviewOverdue | Kind::VisitConcern
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Checking parameters
// ---------------------------------------------------------------------------------------------

/// A problem with one parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamProblem {
    /// The field path as the service reports it: `parameters.start`, or `parameters` for a name
    /// the kind does not take.
    pub field: String,
    /// What is wrong, in words a developer reads. Never echoes the value; names an unknown
    /// parameter only when the name is a plain code (lowercase letters, digits, `_`).
    pub problem: String,
}

impl fmt::Display for ParamProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

const MAX_TEXT: usize = 500;
const MAX_LONG_TEXT: usize = 4000;
const MIN_MINUTES: u32 = 15;
const MAX_MINUTES: u32 = 10_080;

const REQUIRED: &str = "is required";
const BAD_INSTANT: &str =
    "must be an RFC 3339 date and time with an offset, such as 2027-03-02T16:00:00Z";
const BAD_MINUTES: &str = "must be a whole number of minutes from 15 to 10080";
const BAD_STEP: &str = "must be a step code: safety, involvement or responsibility";
const BAD_DATE: &str = "must be a date as YYYY-MM-DD, such as 2027-03-02";
const BLANK_TEXT: &str = "must not be empty or blank";
const LONG_TEXT: &str = "must be at most 500 characters";
const LONG_LONG_TEXT: &str = "must be at most 4000 characters";
const CONTROL_TEXT: &str = "must not contain control characters other than line breaks";

/// Checks a kind's parameters: every required one present and well-formed, every optional one
/// well-formed if present, none unknown. Returns all problems at once, in a stable order: the
/// kind's parameters in [`Kind::params`] order, then unknown names sorted. Empty when all is well.
pub fn check(kind: Kind, params: &BTreeMap<String, String>) -> Vec<ParamProblem> {
    let specs = kind.params();
    let mut problems = Vec::new();
    for spec in specs {
        let problem = match params.get(spec.name) {
            None if spec.required => Some(REQUIRED),
            None => None,
            Some(value) => value_problem(spec.ty, value),
        };
        if let Some(problem) = problem {
            problems.push(ParamProblem {
                field: format!("parameters.{}", spec.name),
                problem: problem.to_owned(),
            });
        }
    }
    // A BTreeMap iterates its keys sorted, so unknown names come out sorted.
    for name in params.keys() {
        if specs.iter().all(|spec| spec.name != name) {
            problems.push(ParamProblem {
                field: "parameters".to_owned(),
                problem: unknown_problem(kind, name),
            });
        }
    }
    problems
}

fn unknown_problem(kind: Kind, name: &str) -> String {
    let known = kind
        .params()
        .iter()
        .map(|spec| spec.name)
        .collect::<Vec<_>>()
        .join(", ");
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        format!("unknown parameter `{name}` for {kind}; it takes: {known}")
    } else {
        format!("unknown parameter name (not shown) for {kind}; it takes: {known}")
    }
}

fn value_problem(ty: ParamType, value: &str) -> Option<&'static str> {
    match ty {
        ParamType::Instant => parse_instant(value).is_none().then_some(BAD_INSTANT),
        ParamType::Minutes => parse_minutes(value).is_none().then_some(BAD_MINUTES),
        ParamType::Step => Step::parse(value).is_none().then_some(BAD_STEP),
        ParamType::Date => parse_date(value).is_none().then_some(BAD_DATE),
        ParamType::Text => text_problem(value, MAX_TEXT, LONG_TEXT),
        ParamType::LongText => text_problem(value, MAX_LONG_TEXT, LONG_LONG_TEXT),
    }
}

fn parse_instant(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn parse_minutes(value: &str) -> Option<u32> {
    if value.is_empty() || value.len() > 5 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value
        .parse::<u32>()
        .ok()
        .filter(|m| (MIN_MINUTES..=MAX_MINUTES).contains(m))
}

fn parse_date(value: &str) -> Option<NaiveDate> {
    let b = value.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()
}

/// Control characters, and the bidirectional formatting characters that can make text read
/// differently from how it is stored.
fn forbidden_in_text(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn text_problem(value: &str, max: usize, too_long: &'static str) -> Option<&'static str> {
    if value.trim().is_empty() {
        Some(BLANK_TEXT)
    } else if value.chars().count() > max {
        Some(too_long)
    } else if value.chars().any(forbidden_in_text) {
        Some(CONTROL_TEXT)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// A notice in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, without line breaks.
    pub subject: String,
    /// Lines separated by `\n`; the last says to contact the caseworker.
    pub body: String,
}

/// Why a notice could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The parameters do not pass [`check`]; these are its problems.
    #[error("the parameters do not pass the check: {} problem(s)", .0.len())]
    InvalidParameters(Vec<ParamProblem>),
}

/// The languages there are texts for. Northern Sámi maps to Bokmål (see [`render`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tongue {
    Nb,
    Nn,
    En,
}

impl Tongue {
    fn of(language: Language) -> Tongue {
        match language {
            Language::Nb | Language::Se => Tongue::Nb,
            Language::Nn => Tongue::Nn,
            Language::En => Tongue::En,
        }
    }
}

/// Renders a notice in `language`: a one-line subject and a short body that ends with a line
/// saying the caseworker is the one to contact (never by name). Call it after [`check`] passed;
/// it checks again and returns [`RenderError::InvalidParameters`] rather than panicking.
///
/// Instants are shown on the Europe/Oslo wall clock, so a 17:00 visit reads 17:00 in winter and
/// in summer: Bokmål "tirsdag 2. mars 2027 kl. 17.00", Nynorsk "tysdag 2. mars 2027 kl. 17.00",
/// English "Tuesday 2 March 2027 at 17:00". In the hour repeated in autumn both instants read the
/// same wall-clock time. Dates read likewise, without the time. Steps read by their names
/// ("trinn 2 involvering", "steg 2 involvering", "step 2 involvement"). Text parameters are put
/// in as given, without surrounding whitespace; the subject of a free-text message has its line
/// breaks and whitespace runs turned into single spaces.
///
/// **Northern Sámi** (`se`) gets the Bokmål text, dates included, so that a message is in one
/// language throughout. The Sámi wording has not been written and checked by a Sámi speaker, and
/// a message in faulty Sámi to a family serves it worse than one in Bokmål; add the Sámi texts
/// (with weekdays such as "maŋŋebárga", months such as "njukčamánnu", "dii. 17.00") when a
/// translator has provided them.
pub fn render(
    kind: Kind,
    language: Language,
    params: &BTreeMap<String, String>,
) -> Result<Rendered, RenderError> {
    let problems = check(kind, params);
    if !problems.is_empty() {
        return Err(RenderError::InvalidParameters(problems));
    }
    let p = Params(params);
    let t = Tongue::of(language);
    let w = words(t);
    let mut body = Body::default();
    let subject = match kind {
        Kind::VisitScheduled => {
            let when = instant_text(p.instant("start")?, t);
            body.lead = match t {
                Tongue::Nb | Tongue::Nn => format!("Det er avtalt samvær {when}."),
                Tongue::En => format!("A visit has been arranged for {when}."),
            };
            body.line(w.duration, duration_text(p.minutes("duration_minutes")?, t));
            body.line(w.place, p.text("place")?);
            body.opt_line(w.activity, p.opt_text("activity"));
            match t {
                Tongue::Nb | Tongue::Nn => format!("Samvær {when}"),
                Tongue::En => format!("Visit on {when}"),
            }
        }
        Kind::VisitChanged => {
            let start = p.instant("start")?;
            let when = instant_text(start, t);
            body.lead = match p
                .opt_instant("previous_start")
                .filter(|prev| *prev != start)
            {
                Some(prev) => {
                    let before = instant_text(prev, t);
                    match t {
                        Tongue::Nb => format!("Samværet {before} er flyttet til {when}."),
                        Tongue::Nn => format!("Samværet {before} er flytta til {when}."),
                        Tongue::En => {
                            format!("The visit on {before} has been moved to {when}.")
                        }
                    }
                }
                None => match t {
                    Tongue::Nb => format!("Samværet {when} er endret."),
                    Tongue::Nn => format!("Samværet {when} er endra."),
                    Tongue::En => format!("The visit on {when} has been changed."),
                },
            };
            if let Some(minutes) = p.opt_minutes("duration_minutes") {
                body.line(w.duration, duration_text(minutes, t));
            }
            body.opt_line(w.place, p.opt_text("place"));
            match t {
                Tongue::Nb => "Samværet er endret".to_owned(),
                Tongue::Nn => "Samværet er endra".to_owned(),
                Tongue::En => "A visit has changed".to_owned(),
            }
        }
        Kind::VisitCancelled => {
            let when = instant_text(p.instant("start")?, t);
            body.lead = match t {
                Tongue::Nb | Tongue::Nn => format!("Samværet {when} er avlyst."),
                Tongue::En => format!("The visit on {when} has been cancelled."),
            };
            body.opt_line(w.reason, p.opt_text("reason"));
            match t {
                Tongue::Nb | Tongue::Nn => "Avlyst samvær".to_owned(),
                Tongue::En => "Visit cancelled".to_owned(),
            }
        }
        Kind::VisitReminder => {
            let when = instant_text(p.instant("start")?, t);
            body.lead = match t {
                Tongue::Nb | Tongue::Nn => format!("Vi minner om samværet {when}."),
                Tongue::En => format!("This is a reminder of the visit on {when}."),
            };
            body.line(w.place, p.text("place")?);
            match t {
                Tongue::Nb => format!("Påminnelse: samvær {when}"),
                Tongue::Nn => format!("Påminning: samvær {when}"),
                Tongue::En => format!("Reminder: visit on {when}"),
            }
        }
        Kind::PlanChanged => {
            let from = date_text(p.date("effective")?, t);
            body.lead = match t {
                Tongue::Nb => format!("Samværsplanen er endret fra og med {from}."),
                Tongue::Nn => format!("Samværsplanen er endra frå og med {from}."),
                Tongue::En => format!("The visitation plan has changed, with effect from {from}."),
            };
            body.opt_line(w.summary, p.opt_text("summary"));
            match t {
                Tongue::Nb => "Samværsplanen er endret".to_owned(),
                Tongue::Nn => "Samværsplanen er endra".to_owned(),
                Tongue::En => "The visitation plan has changed".to_owned(),
            }
        }
        Kind::StepChanged => {
            let step = step_text(p.step("step")?, t);
            let from = date_text(p.date("effective")?, t);
            body.lead = match t {
                Tongue::Nb => {
                    format!("Fra og med {from} er samværet på {step} i utviklingstrappa.")
                }
                Tongue::Nn => {
                    format!("Frå og med {from} er samværet på {step} i utviklingstrappa.")
                }
                Tongue::En => {
                    format!("From {from}, the visits are at {step} on the development staircase.")
                }
            };
            match t {
                Tongue::Nb => "Nytt trinn for samværet".to_owned(),
                Tongue::Nn => "Nytt steg for samværet".to_owned(),
                Tongue::En => "A new step for the visits".to_owned(),
            }
        }
        Kind::ReviewDue => {
            let due = date_text(p.date("due")?, t);
            let review = p.text("review")?;
            body.lead = match t {
                Tongue::Nb | Tongue::Nn => format!("Gjennomgangen «{review}» har frist {due}."),
                Tongue::En => format!("The review “{review}” is due on {due}."),
            };
            match t {
                Tongue::Nb | Tongue::Nn => format!("Gjennomgang med frist {due}"),
                Tongue::En => format!("Review due on {due}"),
            }
        }
        Kind::ReviewOverdue => {
            let due = date_text(p.date("due")?, t);
            let review = p.text("review")?;
            body.lead = match t {
                Tongue::Nb => format!(
                    "Gjennomgangen «{review}» hadde frist {due} og er ikke registrert som \
                     gjennomført."
                ),
                Tongue::Nn => format!(
                    "Gjennomgangen «{review}» hadde frist {due} og er ikkje registrert som \
                     gjennomført."
                ),
                Tongue::En => format!(
                    "The review “{review}” was due on {due} and has not been recorded as done."
                ),
            };
            match t {
                Tongue::Nb | Tongue::Nn => "Gjennomgang har passert fristen".to_owned(),
                Tongue::En => "Review overdue".to_owned(),
            }
        }
        Kind::VisitConcern => {
            let when = instant_text(p.instant("start")?, t);
            body.lead = match t {
                Tongue::Nb => format!(
                    "Rapporten etter samværet {when} meldte bekymring. Les rapporten i saken og \
                     vurder en tidlig gjennomgang."
                ),
                Tongue::Nn => format!(
                    "Rapporten etter samværet {when} melde uro. Les rapporten i saka og vurder \
                     ein tidleg gjennomgang."
                ),
                Tongue::En => format!(
                    "The report after the visit on {when} raised a concern. Read the report in \
                     the case and consider an early review."
                ),
            };
            match t {
                Tongue::Nb => "Bekymring etter samvær".to_owned(),
                Tongue::Nn => "Uro etter samvær".to_owned(),
                Tongue::En => "Concern after a visit".to_owned(),
            }
        }
        Kind::ConferenceInvitation => {
            let when = instant_text(p.instant("start")?, t);
            body.lead = match t {
                Tongue::Nb | Tongue::Nn => format!("Du er invitert til familieråd {when}."),
                Tongue::En => format!("You are invited to a family group conference on {when}."),
            };
            body.line(w.place, p.text("place")?);
            body.opt_line(w.coordinator, p.opt_text("coordinator"));
            body.after = Some(match t {
                Tongue::Nb => {
                    "Et familieråd er et møte der familien og nettverket rundt barnet lager en \
                     plan sammen."
                }
                Tongue::Nn => {
                    "Eit familieråd er eit møte der familien og nettverket rundt barnet lagar ein \
                     plan saman."
                }
                Tongue::En => {
                    "A family group conference is a meeting where the family and the people \
                     around the child make a plan together."
                }
            });
            match t {
                Tongue::Nb | Tongue::Nn => "Invitasjon til familieråd".to_owned(),
                Tongue::En => "Invitation to a family group conference".to_owned(),
            }
        }
        Kind::FreeText => {
            body.lead = p.text("body")?.to_owned();
            one_line(p.text("subject")?)
        }
    };
    let closing = match (kind.internal(), t) {
        (false, Tongue::Nb) => {
            "Har du spørsmål, ta kontakt med saksbehandleren i barneverntjenesten."
        }
        (false, Tongue::Nn) => {
            "Har du spørsmål, ta kontakt med saksbehandlaren i barnevernstenesta."
        }
        (false, Tongue::En) => {
            "If you have questions, please contact the caseworker at the child welfare service."
        }
        (true, Tongue::Nb) => "Kontaktperson er saksbehandleren for saken.",
        (true, Tongue::Nn) => "Kontaktperson er saksbehandlaren for saka.",
        (true, Tongue::En) => "The contact person is the caseworker for the case.",
    };
    Ok(Rendered {
        subject,
        body: body.finish(closing),
    })
}

/// The labels of detail lines.
struct Words {
    duration: &'static str,
    place: &'static str,
    activity: &'static str,
    reason: &'static str,
    summary: &'static str,
    coordinator: &'static str,
}

fn words(t: Tongue) -> Words {
    match t {
        Tongue::Nb => Words {
            duration: "Varighet",
            place: "Sted",
            activity: "Aktivitet",
            reason: "Årsak",
            summary: "Kort om endringen",
            coordinator: "Koordinator",
        },
        Tongue::Nn => Words {
            duration: "Varigheit",
            place: "Stad",
            activity: "Aktivitet",
            reason: "Årsak",
            summary: "Kort om endringa",
            coordinator: "Koordinator",
        },
        Tongue::En => Words {
            duration: "Duration",
            place: "Place",
            activity: "Activity",
            reason: "Reason",
            summary: "In short",
            coordinator: "Coordinator",
        },
    }
}

/// A body: a lead paragraph, labelled detail lines, an optional explanation, the closing line.
#[derive(Default)]
struct Body {
    lead: String,
    details: Vec<String>,
    after: Option<&'static str>,
}

impl Body {
    fn line(&mut self, label: &str, value: impl fmt::Display) {
        self.details.push(format!("{label}: {value}"));
    }

    fn opt_line(&mut self, label: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.line(label, value);
        }
    }

    fn finish(self, closing: &str) -> String {
        let mut out = self.lead;
        if !self.details.is_empty() {
            out.push_str("\n\n");
            out.push_str(&self.details.join("\n"));
        }
        if let Some(after) = self.after {
            out.push_str("\n\n");
            out.push_str(after);
        }
        out.push_str("\n\n");
        out.push_str(closing);
        out
    }
}

/// Typed access to checked parameters. Every getter fails rather than panics on a value that
/// would not pass [`check`].
struct Params<'a>(&'a BTreeMap<String, String>);

impl<'a> Params<'a> {
    fn raw(&self, name: &'static str) -> Result<&'a str, RenderError> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| invalid(name, REQUIRED))
    }

    fn instant(&self, name: &'static str) -> Result<DateTime<Utc>, RenderError> {
        parse_instant(self.raw(name)?).ok_or_else(|| invalid(name, BAD_INSTANT))
    }

    fn opt_instant(&self, name: &'static str) -> Option<DateTime<Utc>> {
        self.0.get(name).and_then(|v| parse_instant(v))
    }

    fn minutes(&self, name: &'static str) -> Result<u32, RenderError> {
        parse_minutes(self.raw(name)?).ok_or_else(|| invalid(name, BAD_MINUTES))
    }

    fn opt_minutes(&self, name: &'static str) -> Option<u32> {
        self.0.get(name).and_then(|v| parse_minutes(v))
    }

    fn date(&self, name: &'static str) -> Result<NaiveDate, RenderError> {
        parse_date(self.raw(name)?).ok_or_else(|| invalid(name, BAD_DATE))
    }

    fn step(&self, name: &'static str) -> Result<Step, RenderError> {
        Step::parse(self.raw(name)?).ok_or_else(|| invalid(name, BAD_STEP))
    }

    fn text(&self, name: &'static str) -> Result<&'a str, RenderError> {
        Ok(self.raw(name)?.trim())
    }

    fn opt_text(&self, name: &'static str) -> Option<&'a str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
}

fn invalid(name: &'static str, problem: &'static str) -> RenderError {
    RenderError::InvalidParameters(vec![ParamProblem {
        field: format!("parameters.{name}"),
        problem: problem.to_owned(),
    }])
}

/// Line breaks and whitespace runs as single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

const WEEKDAYS_NB: [&str; 7] = [
    "mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag",
];
const WEEKDAYS_NN: [&str; 7] = [
    "måndag", "tysdag", "onsdag", "torsdag", "fredag", "laurdag", "søndag",
];
const WEEKDAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
/// The same in Bokmål and Nynorsk.
const MONTHS_NO: [&str; 12] = [
    "januar",
    "februar",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "desember",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "tirsdag 2. mars 2027" / "tysdag 2. mars 2027" / "Tuesday 2 March 2027".
fn date_text(date: NaiveDate, t: Tongue) -> String {
    let weekday = date.weekday().num_days_from_monday() as usize;
    let month = date.month0() as usize;
    let (weekdays, months) = match t {
        Tongue::Nb => (&WEEKDAYS_NB, &MONTHS_NO),
        Tongue::Nn => (&WEEKDAYS_NN, &MONTHS_NO),
        Tongue::En => (&WEEKDAYS_EN, &MONTHS_EN),
    };
    let weekday = weekdays.get(weekday).copied().unwrap_or_default();
    let month = months.get(month).copied().unwrap_or_default();
    let (day, year) = (date.day(), date.year());
    match t {
        Tongue::Nb | Tongue::Nn => format!("{weekday} {day}. {month} {year}"),
        Tongue::En => format!("{weekday} {day} {month} {year}"),
    }
}

/// On the Oslo wall clock: "tirsdag 2. mars 2027 kl. 17.00" / "Tuesday 2 March 2027 at 17:00".
fn instant_text(instant: DateTime<Utc>, t: Tongue) -> String {
    let local = instant.with_timezone(&Oslo);
    let date = date_text(local.date_naive(), t);
    let (h, m) = (local.hour(), local.minute());
    match t {
        Tongue::Nb | Tongue::Nn => format!("{date} kl. {h:02}.{m:02}"),
        Tongue::En => format!("{date} at {h:02}:{m:02}"),
    }
}

/// "1 time og 30 minutter", "2 timer", "45 minutter", "7 døgn"; Nynorsk "timar", "minutt";
/// English "hour(s)", "minute(s)", "day(s)".
fn duration_text(minutes: u32, t: Tongue) -> String {
    let unit = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let (hour, hours, minute, mins, day, days, and) = match t {
        Tongue::Nb => ("time", "timer", "minutt", "minutter", "døgn", "døgn", "og"),
        Tongue::Nn => ("time", "timar", "minutt", "minutt", "døgn", "døgn", "og"),
        Tongue::En => ("hour", "hours", "minute", "minutes", "day", "days", "and"),
    };
    let (h, m) = (minutes / 60, minutes % 60);
    if minutes > 0 && minutes.is_multiple_of(1440) {
        unit(minutes / 1440, day, days)
    } else if h == 0 {
        unit(m, minute, mins)
    } else if m == 0 {
        unit(h, hour, hours)
    } else {
        format!("{} {and} {}", unit(h, hour, hours), unit(m, minute, mins))
    }
}

fn step_text(step: Step, t: Tongue) -> String {
    let n = step.number();
    let (word, name) = match (t, step) {
        (Tongue::Nb, Step::Safety) => ("trinn", "trygghet"),
        (Tongue::Nb, Step::Involvement) => ("trinn", "involvering"),
        (Tongue::Nb, Step::Responsibility) => ("trinn", "ansvarliggjøring"),
        (Tongue::Nn, Step::Safety) => ("steg", "tryggleik"),
        (Tongue::Nn, Step::Involvement) => ("steg", "involvering"),
        (Tongue::Nn, Step::Responsibility) => ("steg", "ansvarleggjering"),
        (Tongue::En, Step::Safety) => ("step", "safety"),
        (Tongue::En, Step::Involvement) => ("step", "involvement"),
        (Tongue::En, Step::Responsibility) => ("step", "responsibility"),
    };
    format!("{word} {n} {name}")
}

// ---------------------------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------------------------

/// Whether a recipient is on the parents' side of the case, for redaction: parents, their family
/// and their support persons ([`Affiliation::BirthFamily`]), and anyone whose side is not known
/// (`None`). The foster family and professionals are not. Text to a parent-side recipient goes
/// through [`redact`] with the foster home's protected details.
pub fn parent_side(affiliation: Option<Affiliation>) -> bool {
    match affiliation {
        None | Some(Affiliation::BirthFamily) => true,
        Some(Affiliation::FosterFamily | Affiliation::Professional) => false,
    }
}

/// Protected values (and parts of them) shorter than this many normalised characters are
/// ignored: they would redact innocent text.
const MIN_PROTECTED: usize = 4;
/// Phone numbers are also matched on this many last digits (a Norwegian number without "+47").
const PHONE_TAIL: usize = 8;

/// Removes every occurrence of each protected value (the foster home's address, the foster
/// parents' phone numbers and e-mail addresses) from `text`, replacing each with a marker in
/// `language`: `[skjermet]` (Bokmål, and Northern Sámi, whose texts are in Bokmål for now, see
/// [`render`]), `[skjerma]` (Nynorsk), `[withheld]` (English). Returns the text and whether
/// anything was removed.
///
/// Matching compares normalised forms, so it survives the ways a value can be written
/// differently: only letters and digits count, so whitespace, line breaks, punctuation and
/// separators (spaces, dots, dashes, "+" in "+47") do not; case is folded (also "ß" = "ss");
/// letters with diacritics fold to their base letter whether written precomposed or with
/// combining marks ("Å" = "a" + ring = "a", "č" = "c"), as do "æ" (= "ae"), "ø" (= "o") and the
/// Sámi "đ", "ŋ", "ŧ" (= "d", "n", "t"); full-width letters and digits fold to ASCII. A match
/// removes everything from its first to its last letter or digit, separators included.
///
/// Besides the whole value:
/// - a value that is a phone number (only digits once normalised, at least 8) is also matched
///   on its last 8 digits, and one written with "+" also with "00" for it, so "+47 912 34 567"
///   is found as "91234567" and as "0047 912 34 567";
/// - each part of a value between commas, semicolons, slashes and line breaks is matched on its
///   own when it holds a digit or an "@": the street line "Storgata 12B" of "Storgata 12B, 0155
///   Oslo" is removed even when written without the postcode, and so is "0155 Oslo". A part
///   without digits (a place name such as "Oslo") is not matched on its own, since it would
///   redact innocent text: pass a name that identifies the home (a farm name, say) as its own
///   value.
///
/// Values, and parts, shorter than 4 normalised characters are ignored: they would redact
/// innocent text. Folding makes a match wider, never narrower, so some innocent text can be
/// redacted ("Asveien" for "Åsveien"); that is the safe side. It guards against the ways a
/// person writes a value, not against deliberate disguise (look-alike letters from other
/// scripts, letters spelled out).
pub fn redact(text: &str, protected: &[String], language: Language) -> (String, bool) {
    let marker = marker(language);
    let haystack = normalise_with_spans(text);
    let chars: Vec<char> = haystack.iter().map(|&(c, _, _)| c).collect();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for pattern in protected.iter().flat_map(|value| patterns(value)) {
        if pattern.is_empty() || pattern.len() > chars.len() {
            continue;
        }
        for (i, window) in chars.windows(pattern.len()).enumerate() {
            if window == pattern.as_slice() {
                let start = haystack.get(i).map(|&(_, s, _)| s);
                let end = haystack.get(i + pattern.len() - 1).map(|&(_, _, e)| e);
                if let (Some(start), Some(end)) = (start, end) {
                    spans.push((start, end));
                }
            }
        }
    }
    if spans.is_empty() {
        return (text.to_owned(), false);
    }
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in merged {
        out.push_str(text.get(at..start).unwrap_or_default());
        out.push_str(marker);
        at = end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    (out, true)
}

/// What replaces a protected value in `language`.
fn marker(language: Language) -> &'static str {
    match language {
        Language::Nb | Language::Se => "[skjermet]",
        Language::Nn => "[skjerma]",
        Language::En => "[withheld]",
    }
}

/// The normalised forms to look for for one protected value (see [`redact`]).
fn patterns(value: &str) -> Vec<Vec<char>> {
    let mut out = Vec::new();
    add_patterns(&mut out, value);
    for part in value.split([',', ';', '/', '\n', '\r']) {
        if part.contains('@') || part.chars().any(|c| c.is_ascii_digit()) {
            add_patterns(&mut out, part);
        }
    }
    out.sort();
    out.dedup();
    out
}

fn add_patterns(out: &mut Vec<Vec<char>>, raw: &str) {
    let norm = normalise(raw);
    if norm.len() < MIN_PROTECTED {
        return;
    }
    if norm.len() >= PHONE_TAIL && norm.iter().all(char::is_ascii_digit) {
        if let Some(tail) = norm.get(norm.len() - PHONE_TAIL..) {
            out.push(tail.to_vec());
        }
        if raw.trim_start().starts_with('+') {
            out.push(['0', '0'].iter().chain(&norm).copied().collect());
        }
    }
    out.push(norm);
}

fn normalise(text: &str) -> Vec<char> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        fold_char(c, &mut out);
    }
    out
}

/// The normalised characters of `text`, each with the byte range of the character it came from.
fn normalise_with_spans(text: &str) -> Vec<(char, usize, usize)> {
    let mut out = Vec::with_capacity(text.len());
    let mut buf = Vec::new();
    for (at, c) in text.char_indices() {
        buf.clear();
        fold_char(c, &mut buf);
        let end = at + c.len_utf8();
        out.extend(buf.iter().map(|&n| (n, at, end)));
    }
    out
}

/// Appends the normalised form of one character: case folded (upper, then lower, so "ß" and
/// "SS" agree), combining marks and everything but letters and digits dropped, diacritics and
/// full-width forms folded.
fn fold_char(c: char, out: &mut Vec<char>) {
    for upper in c.to_uppercase() {
        for lower in upper.to_lowercase() {
            if is_combining_mark(lower) {
                continue;
            }
            if let Some(folded) = fold_letter(lower) {
                out.extend(folded.chars());
            } else if lower.is_alphanumeric() {
                out.push(lower);
            }
        }
    }
}

/// The combining diacritical mark blocks: dropped, so that a letter written as base letter plus
/// mark reads as the base letter.
fn is_combining_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// The ASCII form of a lowercase letter with a diacritic (Latin-1, Latin Extended-A, the Sámi
/// letters of Latin Extended-B), of the Nordic letters, and of full-width letters and digits.
fn fold_letter(c: char) -> Option<&'static str> {
    let folded = match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' | 'ǎ' | 'ǟ' | 'ǡ' | 'ǻ' => "a",
        'æ' | 'ǣ' | 'ǽ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' | 'ǧ' | 'ǥ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' | 'ǐ' => "i",
        'ĵ' => "j",
        'ķ' | 'ǩ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŋ' => "n",
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'ǒ' | 'ǫ' | 'ǿ' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' => "t",
        'þ' => "th",
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' | 'ǔ' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' | 'ǯ' | 'ʒ' => "z",
        '０'..='９' | 'ａ'..='ｚ' => return fullwidth(c),
        _ => return None,
    };
    Some(folded)
}

fn fullwidth(c: char) -> Option<&'static str> {
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    const LETTERS: [&str; 26] = [
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r",
        "s", "t", "u", "v", "w", "x", "y", "z",
    ];
    let code = u32::from(c);
    match c {
        '０'..='９' => DIGITS.get((code - u32::from('０')) as usize).copied(),
        'ａ'..='ｚ' => LETTERS.get((code - u32::from('ａ')) as usize).copied(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Every parameter of the kind, well-formed.
    fn full(kind: Kind) -> BTreeMap<String, String> {
        map(match kind {
            Kind::VisitScheduled => &[
                ("start", "2027-03-02T16:00:00Z"),
                ("duration_minutes", "90"),
                ("place", "Barneverntjenestens lokaler"),
                ("activity", "Baking av boller"),
            ],
            Kind::VisitChanged => &[
                ("start", "2027-03-03T16:00:00Z"),
                ("previous_start", "2027-03-02T16:00:00Z"),
                ("duration_minutes", "120"),
                ("place", "Aktivitetshuset"),
            ],
            Kind::VisitCancelled => &[("start", "2027-03-02T16:00:00Z"), ("reason", "Sykdom")],
            Kind::VisitReminder => &[
                ("start", "2027-03-02T16:00:00Z"),
                ("place", "Barneverntjenestens lokaler"),
            ],
            Kind::PlanChanged => &[
                ("effective", "2027-04-01"),
                ("summary", "Ett samvær til i måneden"),
            ],
            Kind::StepChanged => &[("step", "involvement"), ("effective", "2027-04-01")],
            Kind::ReviewDue | Kind::ReviewOverdue => {
                &[("due", "2027-04-01"), ("review", "Evaluering av trinn 1")]
            }
            Kind::VisitConcern => &[("start", "2027-03-02T16:00:00Z")],
            Kind::ConferenceInvitation => &[
                ("start", "2027-03-02T16:00:00Z"),
                ("place", "Kulturhuset"),
                ("coordinator", "Kari Koordinator"),
            ],
            Kind::FreeText => &[
                ("subject", "Nytt samværsrom"),
                ("body", "Fra neste uke bruker vi\nrommet i andre etasje."),
            ],
        })
    }

    /// Only the required parameters.
    fn minimal(kind: Kind) -> BTreeMap<String, String> {
        let mut params = full(kind);
        params.retain(|name, _| {
            kind.params()
                .iter()
                .any(|spec| spec.name == name && spec.required)
        });
        params
    }

    fn fields(problems: &[ParamProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    /// A value that is wrong for the type.
    fn malformed(ty: ParamType) -> String {
        match ty {
            ParamType::Instant => "2027-03-02 kl 17".to_owned(),
            ParamType::Minutes => "14".to_owned(),
            ParamType::Step => "trinn 2".to_owned(),
            ParamType::Text => "x".repeat(501),
            ParamType::LongText => "x".repeat(4001),
            ParamType::Date => "2.3.2027".to_owned(),
        }
    }

    #[test]
    fn every_kind_has_distinct_parameters_and_at_least_one_required() {
        for &kind in Kind::ALL {
            let specs = kind.params();
            assert!(specs.iter().any(|s| s.required), "{kind}");
            let mut names: Vec<_> = specs.iter().map(|s| s.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), specs.len(), "{kind}");
        }
    }

    #[test]
    fn full_and_minimal_parameters_pass_for_every_kind() {
        for &kind in Kind::ALL {
            assert_eq!(check(kind, &full(kind)), [], "{kind}");
            assert_eq!(check(kind, &minimal(kind)), [], "{kind}");
        }
    }

    #[test]
    fn a_missing_required_parameter_is_reported_for_every_kind() {
        for &kind in Kind::ALL {
            for spec in kind.params().iter().filter(|s| s.required) {
                let mut params = full(kind);
                params.remove(spec.name);
                let problems = check(kind, &params);
                assert_eq!(
                    problems,
                    [ParamProblem {
                        field: format!("parameters.{}", spec.name),
                        problem: "is required".to_owned(),
                    }],
                    "{kind}"
                );
            }
        }
    }

    #[test]
    fn a_malformed_parameter_is_reported_without_its_value_for_every_kind() {
        for &kind in Kind::ALL {
            for spec in kind.params() {
                let mut params = full(kind);
                let bad = malformed(spec.ty);
                params.insert(spec.name.to_owned(), bad.clone());
                let problems = check(kind, &params);
                assert_eq!(
                    fields(&problems),
                    [format!("parameters.{}", spec.name)],
                    "{kind}"
                );
                assert!(!problems[0].problem.contains(&bad), "{kind}");
                assert!(render(kind, Language::Nb, &params).is_err());
            }
        }
    }

    #[test]
    fn an_unknown_parameter_is_reported_for_every_kind() {
        for &kind in Kind::ALL {
            let mut params = full(kind);
            params.insert("fosterhome_address".to_owned(), "Storgata 12B".to_owned());
            let problems = check(kind, &params);
            assert_eq!(fields(&problems), ["parameters"], "{kind}");
            assert!(problems[0].problem.contains("`fosterhome_address`"));
            assert!(!problems[0].problem.contains("Storgata"));
        }
    }

    #[test]
    fn an_unknown_name_that_is_not_a_plain_code_is_not_echoed() {
        let mut params = full(Kind::VisitReminder);
        params.insert("Ola Nordmann 010190".to_owned(), "x".to_owned());
        let problems = check(Kind::VisitReminder, &params);
        assert_eq!(fields(&problems), ["parameters"]);
        assert!(!problems[0].problem.contains("Ola"));
        assert!(problems[0].problem.contains("start, place"));
    }

    #[test]
    fn all_problems_come_at_once_in_spec_order_then_unknown_names_sorted() {
        let params = map(&[
            ("zeta", "1"),
            ("place", " \n "),
            ("activity", "a\u{7}b"),
            ("duration_minutes", "10081"),
            ("alpha", "2"),
        ]);
        let problems = check(Kind::VisitScheduled, &params);
        assert_eq!(
            problems
                .iter()
                .map(|p| (p.field.as_str(), p.problem.as_str()))
                .collect::<Vec<_>>(),
            [
                ("parameters.start", "is required"),
                ("parameters.duration_minutes", BAD_MINUTES),
                ("parameters.place", BLANK_TEXT),
                ("parameters.activity", CONTROL_TEXT),
                ("parameters", problems[4].problem.as_str()),
                ("parameters", problems[5].problem.as_str()),
            ]
        );
        assert!(problems[4].problem.contains("`alpha`"));
        assert!(problems[5].problem.contains("`zeta`"));
        assert_eq!(
            problems[0].to_string(),
            "parameters.start: is required".to_owned()
        );
    }

    #[test]
    fn values_are_checked_by_type() {
        let ok = |ty, v: &str| value_problem(ty, v).is_none();
        assert!(ok(ParamType::Instant, "2027-03-02T16:00:00Z"));
        assert!(ok(ParamType::Instant, "2027-03-02T17:00:00+01:00"));
        assert!(!ok(ParamType::Instant, "2027-03-02T16:00:00"));
        assert!(!ok(ParamType::Instant, "2027-03-02"));
        assert!(!ok(ParamType::Instant, ""));
        assert!(ok(ParamType::Minutes, "15"));
        assert!(ok(ParamType::Minutes, "10080"));
        assert!(!ok(ParamType::Minutes, "14"));
        assert!(!ok(ParamType::Minutes, "10081"));
        assert!(!ok(ParamType::Minutes, "+90"));
        assert!(!ok(ParamType::Minutes, "90 "));
        assert!(!ok(ParamType::Minutes, "1.5"));
        assert!(!ok(ParamType::Minutes, "99999999999999999999"));
        for step in ["safety", "involvement", "responsibility"] {
            assert!(ok(ParamType::Step, step));
        }
        assert!(!ok(ParamType::Step, "Safety"));
        assert!(!ok(ParamType::Step, "2"));
        assert!(ok(ParamType::Date, "2027-03-02"));
        assert!(!ok(ParamType::Date, "2027-02-29"));
        assert!(!ok(ParamType::Date, "2027-3-2"));
        assert!(!ok(ParamType::Date, "+2027-03-02"));
        assert!(ok(
            ParamType::Text,
            "Barneverntjenestens lokaler\n2. etasje"
        ));
        assert!(ok(ParamType::Text, &"æ".repeat(500)));
        assert!(!ok(ParamType::Text, &"æ".repeat(501)));
        assert!(!ok(ParamType::Text, ""));
        assert!(!ok(ParamType::Text, "a\tb"));
        assert!(!ok(ParamType::Text, "a\r\nb"));
        assert!(!ok(ParamType::Text, "abc\u{202E}def"));
        assert!(ok(ParamType::LongText, &"x".repeat(4000)));
        assert!(!ok(ParamType::LongText, &"x".repeat(4001)));
    }

    fn oslo(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn instants_read_on_the_oslo_wall_clock_in_each_language() {
        let t = oslo(2027, 3, 2, 16, 0);
        assert_eq!(
            instant_text(t, Tongue::Nb),
            "tirsdag 2. mars 2027 kl. 17.00"
        );
        assert_eq!(instant_text(t, Tongue::Nn), "tysdag 2. mars 2027 kl. 17.00");
        assert_eq!(instant_text(t, Tongue::En), "Tuesday 2 March 2027 at 17:00");
        let d = NaiveDate::from_ymd_opt(2027, 3, 6).unwrap();
        assert_eq!(date_text(d, Tongue::Nb), "lørdag 6. mars 2027");
        assert_eq!(date_text(d, Tongue::Nn), "laurdag 6. mars 2027");
        assert_eq!(date_text(d, Tongue::En), "Saturday 6 March 2027");
    }

    #[test]
    fn a_17_00_visit_reads_17_00_on_both_sides_of_the_spring_change() {
        // Summer time starts on Sunday 28 March 2027.
        let winter = map(&[("start", "2027-03-23T16:00:00Z"), ("place", "Parken")]);
        let summer = map(&[("start", "2027-03-30T15:00:00Z"), ("place", "Parken")]);
        let winter = render(Kind::VisitReminder, Language::Nb, &winter).unwrap();
        let summer = render(Kind::VisitReminder, Language::Nb, &summer).unwrap();
        assert!(winter.body.contains("tirsdag 23. mars 2027 kl. 17.00"));
        assert!(summer.body.contains("tirsdag 30. mars 2027 kl. 17.00"));
        assert!(summer.subject.contains("kl. 17.00"));
    }

    #[test]
    fn late_utc_evening_is_the_next_day_in_oslo() {
        let t = oslo(2027, 6, 30, 22, 30);
        assert_eq!(
            instant_text(t, Tongue::Nb),
            "torsdag 1. juli 2027 kl. 00.30"
        );
    }

    #[test]
    fn both_instants_of_the_repeated_autumn_hour_read_the_same_wall_clock_time() {
        // Summer time ends on Sunday 31 October 2027: 03:00 CEST becomes 02:00 CET.
        let first = oslo(2027, 10, 31, 0, 30);
        let second = oslo(2027, 10, 31, 1, 30);
        for t in [first, second] {
            assert_eq!(
                instant_text(t, Tongue::Nb),
                "søndag 31. oktober 2027 kl. 02.30"
            );
        }
        assert_eq!(
            instant_text(oslo(2027, 10, 31, 2, 30), Tongue::En),
            "Sunday 31 October 2027 at 03:30"
        );
    }

    #[test]
    fn durations_read_in_hours_and_minutes() {
        assert_eq!(duration_text(90, Tongue::Nb), "1 time og 30 minutter");
        assert_eq!(duration_text(120, Tongue::Nb), "2 timer");
        assert_eq!(duration_text(45, Tongue::Nb), "45 minutter");
        assert_eq!(duration_text(10_080, Tongue::Nb), "7 døgn");
        assert_eq!(duration_text(150, Tongue::Nn), "2 timar og 30 minutt");
        assert_eq!(duration_text(60, Tongue::En), "1 hour");
        assert_eq!(duration_text(1440, Tongue::En), "1 day");
        assert_eq!(duration_text(75, Tongue::En), "1 hour and 15 minutes");
    }

    #[test]
    fn steps_read_by_their_names() {
        let nb: Vec<_> = Step::ALL
            .iter()
            .map(|&s| step_text(s, Tongue::Nb))
            .collect();
        let nn: Vec<_> = Step::ALL
            .iter()
            .map(|&s| step_text(s, Tongue::Nn))
            .collect();
        let en: Vec<_> = Step::ALL
            .iter()
            .map(|&s| step_text(s, Tongue::En))
            .collect();
        assert_eq!(
            nb,
            [
                "trinn 1 trygghet",
                "trinn 2 involvering",
                "trinn 3 ansvarliggjøring"
            ]
        );
        assert_eq!(
            nn,
            [
                "steg 1 tryggleik",
                "steg 2 involvering",
                "steg 3 ansvarleggjering"
            ]
        );
        assert_eq!(
            en,
            [
                "step 1 safety",
                "step 2 involvement",
                "step 3 responsibility"
            ]
        );
    }

    /// What the rendered text of each kind must show, per language.
    fn expected(kind: Kind, language: Language) -> Vec<String> {
        let t = Tongue::of(language);
        let params = full(kind);
        let mut out = Vec::new();
        for spec in kind.params() {
            let value = &params[spec.name];
            out.push(match spec.ty {
                ParamType::Instant => instant_text(parse_instant(value).unwrap(), t),
                ParamType::Minutes => duration_text(parse_minutes(value).unwrap(), t),
                ParamType::Step => step_text(Step::parse(value).unwrap(), t),
                ParamType::Date => date_text(parse_date(value).unwrap(), t),
                ParamType::Text | ParamType::LongText => value.clone(),
            });
        }
        out
    }

    #[test]
    fn every_kind_renders_in_every_language_with_its_values_and_no_placeholders() {
        for &kind in Kind::ALL {
            for &language in Language::ALL {
                for params in [full(kind), minimal(kind)] {
                    let r = render(kind, language, &params).unwrap();
                    let ctx = format!("{kind} {language}");
                    assert!(!r.subject.trim().is_empty(), "{ctx}");
                    assert!(!r.body.trim().is_empty(), "{ctx}");
                    assert!(!r.subject.contains('\n'), "{ctx}");
                    for text in [&r.subject, &r.body] {
                        assert!(!text.contains(['{', '}']), "{ctx}: {text}");
                    }
                    let last = r.body.lines().last().unwrap();
                    assert!(
                        last.contains("saksbehandleren")
                            || last.contains("saksbehandlaren")
                            || last.contains("caseworker"),
                        "{ctx}: {last}"
                    );
                }
                let r = render(kind, language, &full(kind)).unwrap();
                let all = format!("{}\n{}", r.subject, r.body);
                for value in expected(kind, language) {
                    let value = if kind == Kind::FreeText {
                        value.replace('\n', " ")
                    } else {
                        value
                    };
                    let found = all.contains(&value) || all.replace('\n', " ").contains(&value);
                    assert!(found, "{kind} {language}: {value:?} not in {all}");
                }
            }
        }
    }

    #[test]
    fn texts_read_as_written() {
        let r = render(
            Kind::VisitScheduled,
            Language::Nb,
            &full(Kind::VisitScheduled),
        )
        .unwrap();
        assert_eq!(r.subject, "Samvær tirsdag 2. mars 2027 kl. 17.00");
        assert_eq!(
            r.body,
            "Det er avtalt samvær tirsdag 2. mars 2027 kl. 17.00.\n\n\
             Varighet: 1 time og 30 minutter\n\
             Sted: Barneverntjenestens lokaler\n\
             Aktivitet: Baking av boller\n\n\
             Har du spørsmål, ta kontakt med saksbehandleren i barneverntjenesten."
        );
        let r = render(Kind::VisitChanged, Language::En, &full(Kind::VisitChanged)).unwrap();
        assert!(r.body.starts_with(
            "The visit on Tuesday 2 March 2027 at 17:00 has been moved to \
             Wednesday 3 March 2027 at 17:00."
        ));
        let r = render(Kind::StepChanged, Language::Nn, &full(Kind::StepChanged)).unwrap();
        assert!(r.body.starts_with(
            "Frå og med torsdag 1. april 2027 er samværet på steg 2 involvering i \
             utviklingstrappa."
        ));
        let r = render(
            Kind::ReviewOverdue,
            Language::Nb,
            &full(Kind::ReviewOverdue),
        )
        .unwrap();
        assert!(
            r.body
                .ends_with("Kontaktperson er saksbehandleren for saken.")
        );
    }

    #[test]
    fn a_change_without_a_new_time_says_the_visit_changed() {
        let params = map(&[
            ("start", "2027-03-02T16:00:00Z"),
            ("previous_start", "2027-03-02T17:00:00+01:00"),
            ("place", "Biblioteket"),
        ]);
        let r = render(Kind::VisitChanged, Language::Nb, &params).unwrap();
        assert!(
            r.body
                .starts_with("Samværet tirsdag 2. mars 2027 kl. 17.00 er endret.")
        );
        assert!(r.body.contains("Sted: Biblioteket"));
    }

    #[test]
    fn a_free_text_subject_is_one_line() {
        let params = map(&[("subject", "  Nytt\n  rom  "), ("body", "Hei.\nVi ses.")]);
        let r = render(Kind::FreeText, Language::En, &params).unwrap();
        assert_eq!(r.subject, "Nytt rom");
        assert!(r.body.starts_with("Hei.\nVi ses.\n\n"));
    }

    #[test]
    fn northern_sami_reads_as_bokmal_for_now() {
        for &kind in Kind::ALL {
            assert_eq!(
                render(kind, Language::Se, &full(kind)),
                render(kind, Language::Nb, &full(kind))
            );
        }
    }

    #[test]
    fn render_refuses_parameters_that_fail_the_check() {
        let err = render(Kind::VisitReminder, Language::Nb, &map(&[])).unwrap_err();
        let RenderError::InvalidParameters(problems) = err;
        assert_eq!(fields(&problems), ["parameters.start", "parameters.place"]);
    }

    #[test]
    fn parent_side_is_the_birth_family_and_anyone_unknown() {
        assert!(parent_side(None));
        assert!(parent_side(Some(Affiliation::BirthFamily)));
        assert!(!parent_side(Some(Affiliation::FosterFamily)));
        assert!(!parent_side(Some(Affiliation::Professional)));
    }

    fn protected(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn an_address_is_found_however_it_is_written() {
        let p = protected(&["Storgata 12B, 0155 Oslo"]);
        let (out, removed) = redact(
            "Samvær hos STORGATA  12 b,\n0155 oslo i morgen.",
            &p,
            Language::Nb,
        );
        assert_eq!(out, "Samvær hos [skjermet] i morgen.");
        assert!(removed);
        let (out, _) = redact("Adresse: Storgata 12 B.", &p, Language::Nn);
        assert_eq!(out, "Adresse: [skjerma].");
        let (out, _) = redact("Vi møtes i 0155 Oslo sentrum.", &p, Language::En);
        assert_eq!(out, "Vi møtes i [withheld] sentrum.");
        // A part without digits does not count on its own.
        let (out, removed) = redact("Barneverntjenesten i Oslo", &p, Language::Nb);
        assert_eq!(out, "Barneverntjenesten i Oslo");
        assert!(!removed);
    }

    #[test]
    fn a_phone_number_is_found_with_or_without_country_code_and_separators() {
        let p = protected(&["+47 912 34 567"]);
        for (text, want) in [
            ("Ring 91234567 i dag", "Ring [skjermet] i dag"),
            ("Ring 912.34.567 i dag", "Ring [skjermet] i dag"),
            ("Ring 912 34 567", "Ring [skjermet]"),
            ("Ring 0047 912-34-567.", "Ring [skjermet]."),
            ("Ring +4791234567", "Ring +[skjermet]"),
            ("Ring (+47) 91 23 45 67", "Ring (+[skjermet]"),
        ] {
            assert_eq!(
                redact(text, &p, Language::Nb),
                (want.to_owned(), true),
                "{text}"
            );
        }
        let (out, removed) = redact("Ring 22 33 44 55", &p, Language::Nb);
        assert_eq!(out, "Ring 22 33 44 55");
        assert!(!removed);
    }

    #[test]
    fn an_email_address_is_found_in_any_case() {
        let p = protected(&["Kari.Fosterhjem@Example.no"]);
        let (out, removed) = redact(
            "Skriv til KARI.FOSTERHJEM@EXAMPLE.NO eller kari.fosterhjem@example.no.",
            &p,
            Language::En,
        );
        assert_eq!(out, "Skriv til [withheld] eller [withheld].");
        assert!(removed);
    }

    #[test]
    fn nordic_and_sami_letters_match_precomposed_or_combined() {
        let p = protected(&["Åsveien 3, Čáhppesjávri"]);
        let decomposed = "A\u{30A}SVEIEN 3";
        assert_eq!(
            redact(decomposed, &p, Language::Nb),
            ("[skjermet]".to_owned(), true)
        );
        let p = protected(&["Čáhppesjávri gárdi", "Østre Løkka"]);
        let (out, _) = redact(
            "Bor på C\u{30C}a\u{301}hppesja\u{301}vri GÁRDI ved ØSTRE løkka",
            &p,
            Language::Nb,
        );
        assert_eq!(out, "Bor på [skjermet] ved [skjermet]");
    }

    #[test]
    fn short_values_are_ignored_and_overlaps_give_one_marker() {
        let p = protected(&["12", "Oslo", "Storgata 12B", "12B, 0155"]);
        // "Oslo" has four characters and is matched; "12" is too short.
        let (out, _) = redact("Storgata 12B, 0155 Oslo, rom 12", &p, Language::Nb);
        assert_eq!(out, "[skjermet] [skjermet], rom 12");
        assert_eq!(
            redact("abc", &protected(&["", " . ", "ab"]), Language::Nb),
            ("abc".to_owned(), false)
        );
    }

    #[test]
    fn a_rendered_notice_to_a_parent_has_the_foster_home_removed() {
        let params = map(&[
            ("start", "2027-03-02T16:00:00Z"),
            ("duration_minutes", "90"),
            ("place", "Fosterhjemmet, storgata 12 B"),
        ]);
        let r = render(Kind::VisitScheduled, Language::Nb, &params).unwrap();
        let p = protected(&["Storgata 12B, 0155 Oslo", "+47 912 34 567"]);
        let (body, removed) = redact(&r.body, &p, Language::Nb);
        assert!(removed);
        assert!(body.contains("Sted: Fosterhjemmet, [skjermet]\n"));
    }

    // ---- properties ----

    /// Letters people write values with: ASCII, Nordic, Sámi and other Latin letters.
    const VALUE_CHARS: &str = "[a-zA-Z0-9æøåÆØÅáčđŋšŧžÁČĐŊŠŦŽéüößÉÜÖ]";

    fn normalised(text: &str) -> String {
        normalise(text).into_iter().collect()
    }

    /// A protected value written differently: each character in a random case, random
    /// separators between characters.
    fn disguised() -> impl Strategy<Value = (String, String)> {
        proptest::collection::vec(
            (
                proptest::string::string_regex(VALUE_CHARS).unwrap(),
                any::<u8>(),
                "[ \n\t.,:;/()+\\-_\u{a0}\u{200b}]{0,3}",
            ),
            4..16,
        )
        .prop_map(|parts| {
            let mut value = String::new();
            let mut written = String::new();
            for (c, case, sep) in parts {
                value.push_str(&c);
                match case % 3 {
                    0 => written.push_str(&c.to_uppercase()),
                    1 => written.push_str(&c.to_lowercase()),
                    _ => written.push_str(&c),
                }
                written.push_str(&sep);
            }
            (value, written)
        })
    }

    fn any_language() -> impl Strategy<Value = Language> {
        proptest::sample::select(Language::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn a_protected_value_never_survives_however_it_is_written(
            before in ".{0,40}",
            after in ".{0,40}",
            (value, written) in disguised(),
            language in any_language(),
        ) {
            let text = format!("{before}{written}{after}");
            let protected = vec![value.clone()];
            let (out, removed) = redact(&text, &protected, language);
            prop_assert!(removed);
            let needle = normalised(&value);
            prop_assert!(needle.chars().count() >= MIN_PROTECTED);
            let marker = marker(language);
            // Between markers, nothing of the original text holds the value.
            for piece in out.split(marker) {
                prop_assert!(!normalised(piece).contains(&needle), "{out:?}");
            }
            // Nor does the whole output, unless the value shares letters with the marker, which
            // could join a marker and its neighbours into something that reads like it.
            let marker_letters = normalised(marker);
            if !needle.chars().any(|c| marker_letters.contains(c)) {
                prop_assert!(!normalised(&out).contains(&needle), "{out:?}");
            }
        }

        #[test]
        fn redact_never_panics_on_any_text(
            text in "(?s).{0,200}",
            protected in proptest::collection::vec("(?s).{0,16}", 0..4),
            language in any_language(),
        ) {
            let (out, removed) = redact(&text, &protected, language);
            prop_assert_eq!(removed, out != text);
        }

        #[test]
        fn text_without_protected_values_is_left_as_it_is(
            text in "(?s).{0,200}",
            protected in proptest::collection::vec("(?s).{0,16}", 0..4),
            language in any_language(),
        ) {
            let haystack = normalised(&text);
            let absent = protected.iter().flat_map(|v| patterns(v)).all(|p| {
                !haystack.contains(&p.into_iter().collect::<String>())
            });
            prop_assume!(absent);
            prop_assert_eq!(redact(&text, &protected, language), (text.clone(), false));
        }

        #[test]
        fn text_of_other_characters_is_left_as_it_is(
            text in "[0-9 .,:;!?()\\-\n\u{3b1}-\u{3c9}\u{5d0}-\u{5ea}\u{4e00}-\u{4e20}]{0,200}",
            protected in proptest::collection::vec("[a-zA-ZæøåÆØÅčšž .,\\-]{0,20}", 0..4),
            language in any_language(),
        ) {
            prop_assert_eq!(redact(&text, &protected, language), (text.clone(), false));
        }

        #[test]
        fn check_and_render_never_panic(
            kind in proptest::sample::select(Kind::ALL.to_vec()),
            params in proptest::collection::btree_map(
                "(start|place|due|review|step|effective|subject|body|duration_minutes|x)",
                "(?s).{0,30}",
                0..6,
            ),
            language in any_language(),
        ) {
            let problems = check(kind, &params);
            let rendered = render(kind, language, &params);
            prop_assert_eq!(problems.is_empty(), rendered.is_ok());
        }
    }
}
