//! A realistic, seeded customer base for `milepost demo`: accounts across the
//! three segments with personas (healthy, slow, late catchers, stalled), and
//! the product events each would send, generated day by day so memory stays
//! flat however many accounts are simulated.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use milepost_domain::{
    Account, AccountId, AgreedOutcome, Checkpoint, Contact, Criterion, EmailAddress, Group, Measure, MilestoneDef,
    MilestoneMap, ProductEvent, Segment, Timestamp,
};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// The simulated calendar starts here, so the same seed always gives the same output.
pub fn sim_start() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).single().expect("valid date")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persona {
    /// Reaches milestones ahead of time; rarely a day or two late.
    Healthy,
    /// Reaches most milestones just in time; some late, a few never.
    Slow,
    /// Misses most milestones, then catches up days later.
    LateCatcher,
    /// Starts, then goes quiet.
    Stalled,
}

impl Persona {
    fn pick(rng: &mut ChaCha8Rng) -> Persona {
        match rng.random_range(0..100) {
            0..45 => Persona::Healthy,
            45..70 => Persona::Slow,
            70..85 => Persona::LateCatcher,
            _ => Persona::Stalled,
        }
    }

    /// Chance of background activity on a given day.
    fn daily_activity(self) -> f64 {
        match self {
            Persona::Healthy => 0.85,
            Persona::Slow => 0.5,
            Persona::LateCatcher => 0.4,
            Persona::Stalled => 0.6,
        }
    }
}

/// A run of product events that meets (or advances) one criterion.
#[derive(Clone, Debug)]
pub struct Burst {
    pub start: Timestamp,
    /// When the last event lands: the moment the criterion is met.
    pub end: Timestamp,
    pub event: String,
    pub count: u32,
    /// Events come from `count` distinct users rather than the first few.
    pub distinct_users: bool,
    /// Metric values, one per event, the last meeting the target.
    pub metric: Option<(String, Vec<f64>)>,
}

impl Burst {
    fn time_of(&self, i: u32) -> Timestamp {
        if self.count <= 1 {
            return self.end;
        }
        let span = (self.end - self.start).num_seconds();
        self.start + Duration::seconds(span * i64::from(i) / i64::from(self.count - 1))
    }
}

/// A success plan the account's CSM sets (as `milepost outcomes set`
/// would), and the measures the product reports of it.
pub struct DemoPlan {
    pub set_at: Timestamp,
    pub outcomes: Vec<AgreedOutcome>,
    /// `outcome.measured` events every two weeks from the contract start.
    pub measures: Burst,
}

/// Each goal the demo's accounts state, as an outcome: what measures it,
/// its unit, baseline and target for the year, and the value agreed for
/// the checkpoint two months in.
const GOAL_MEASURES: [(&str, &str, &str, f64, f64, f64); 5] = [
    (
        "cut month-end close from 8 days to 3",
        "days_to_close",
        "days",
        8.0,
        3.0,
        6.0,
    ),
    (
        "save every analyst 10 hours a week",
        "hours_saved_per_week",
        "hours",
        0.0,
        10.0,
        3.0,
    ),
    (
        "replace three spreadsheets with one shared workflow",
        "spreadsheets_in_use",
        "spreadsheets",
        3.0,
        1.0,
        2.0,
    ),
    ("reduce procurement costs by 5%", "cost_savings_pct", "%", 0.0, 5.0, 1.5),
    (
        "give leadership a live view of pipeline health",
        "leaders_on_live_view",
        "leaders",
        0.0,
        6.0,
        2.0,
    ),
];
/// Days from the contract start to a plan's first checkpoint, and between measures.
const FIRST_CHECKPOINT_DAYS: i64 = 60;
const MEASURE_EVERY_DAYS: i64 = 14;

pub struct AccountPlan {
    pub index: usize,
    pub account: Account,
    pub persona: Persona,
    /// Half the enterprise and mid-market accounts agree a success plan.
    pub success_plan: Option<DemoPlan>,
    /// When the account record reaches Milepost (a Segment `group` call). Some
    /// arrive after their first product events, which are parked meanwhile.
    pub appears_at: Timestamp,
    pub bursts: Vec<Burst>,
    /// Manual milestones the CSM confirms, and when.
    pub manual_marks: Vec<(Timestamp, String)>,
    /// Stalled accounts go quiet after this.
    pub silent_after: Timestamp,
}

const FIRST: &[&str] = &[
    "Ana", "Ben", "Chloé", "Dev", "Erin", "Farah", "Gus", "Hana", "Ivan", "June", "Kofi", "Lena", "Mateo", "Nia",
    "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Viktor", "Wen", "Yara", "Zoe",
];
const LAST: &[&str] = &[
    "Okafor",
    "Lindqvist",
    "Nakamura",
    "García",
    "O'Brien",
    "Schmidt",
    "Kowalski",
    "Haddad",
    "Chen",
    "Müller",
    "Rossi",
    "Dubois",
    "Patel",
    "Silva",
    "Novak",
];
const NAME_A: &[&str] = &[
    "Northwind",
    "Bluepeak",
    "Cobalt",
    "Evergreen",
    "Harbor",
    "Ironclad",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Nimbus",
    "Orchard",
    "Pioneer",
    "Quarry",
    "Redwood",
    "Summit",
    "Tidal",
    "Umber",
    "Vantage",
    "Willow",
];
const NAME_B: &[&str] = &[
    "Logistics",
    "Health",
    "Foods",
    "Capital",
    "Robotics",
    "Media",
    "Energy",
    "Labs",
    "Retail",
    "Insurance",
    "Freight",
    "Studios",
    "Dental",
    "Analytics",
    "Hotels",
];
/// Names with characters that must be escaped in HTML and mail headers.
const TRICKY_NAMES: &[&str] = &[
    "Smith & Jones <Partners>",
    "O'Reilly \"Fresh\" Produce",
    "Café Łódź & Søn",
];
const CSMS: &[(&str, &str)] = &[
    ("Maya Thompson", "maya.thompson@vendor.example"),
    ("Jonas Berg", "jonas.berg@vendor.example"),
    ("Aisha Bello", "aisha.bello@vendor.example"),
    ("Diego Ramos", "diego.ramos@vendor.example"),
    ("Mei Lin", "mei.lin@vendor.example"),
];
/// The onboarding team: enterprise and mid-market accounts have one of them
/// (maps give onboarding milestones to the `onboarding` role); SMB accounts
/// have none, so those milestones fall back to the CSM.
const ONBOARDING: &[(&str, &str)] = &[
    ("Priya Nair", "priya.nair@vendor.example"),
    ("Tomás Silva", "tomas.silva@vendor.example"),
];
/// Account executives: the expansion milestones' owner (`owner: ae`).
const ACCOUNT_EXECUTIVES: &[(&str, &str)] = &[
    ("Jordan Ellis", "jordan.ellis@vendor.example"),
    ("Sofia Marin", "sofia.marin@vendor.example"),
    ("Kwame Boateng", "kwame.boateng@vendor.example"),
];
const TIMEZONES: &[chrono_tz::Tz] = &[
    chrono_tz::America::New_York,
    chrono_tz::America::Chicago,
    chrono_tz::America::Los_Angeles,
    chrono_tz::Europe::London,
    chrono_tz::Europe::Berlin,
    chrono_tz::Asia::Singapore,
    chrono_tz::Australia::Sydney,
];
const GOALS: &[&str] = &[
    "cut month-end close from 8 days to 3",
    "save every analyst 10 hours a week",
    "replace three spreadsheets with one shared workflow",
    "reduce procurement costs by 5%",
    "give leadership a live view of pipeline health",
];

/// Derives an independent, reproducible RNG for one purpose.
pub fn rng_for(seed: u64, account: usize, stream: u64) -> ChaCha8Rng {
    let mixed = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((account as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(stream.wrapping_mul(0x94D0_49BB_1331_11EB));
    ChaCha8Rng::seed_from_u64(mixed)
}

/// A name no other account of the run has (a report's top ten must tell its
/// accounts apart): the indexes walk every pairing of the two word lists once
/// (the stride is coprime with their count), starting where the seed says;
/// past the last pairing a number is added.
fn account_name(index: usize, seed: u64) -> String {
    let numbered = |name: String, round: usize| match round {
        0 => name,
        round => format!("{name} {}", round + 1),
    };
    if index % 97 == 13 {
        let tricky = index / 97;
        let name = TRICKY_NAMES[tricky % TRICKY_NAMES.len()].to_string();
        return numbered(name, tricky / TRICKY_NAMES.len());
    }
    const STRIDE: usize = 7;
    let pairings = NAME_A.len() * NAME_B.len();
    let at = (index * STRIDE + seed as usize % pairings) % pairings;
    let name = format!("{} {}", NAME_A[at % NAME_A.len()], NAME_B[at / NAME_A.len()]);
    numbered(name, index / pairings)
}

pub fn plan_accounts(count: usize, seed: u64, maps: &[MilestoneMap]) -> Vec<AccountPlan> {
    (0..count).map(|i| plan_account(i, seed, maps)).collect()
}

fn plan_account(index: usize, seed: u64, maps: &[MilestoneMap]) -> AccountPlan {
    let mut rng = rng_for(seed, index, 0);
    let segment = match rng.random_range(0..100) {
        0..20 => Segment::Enterprise,
        20..55 => Segment::MidMarket,
        _ => Segment::Smb,
    };
    let persona = Persona::pick(&mut rng);
    let tenure_year = if rng.random_bool(0.15) {
        rng.random_range(2..=4)
    } else {
        1
    };
    let start_offset = rng.random_range(0..30);
    let contract_start: NaiveDate = sim_start().date_naive() + Duration::days(start_offset);
    let (arr, seats) = match segment {
        Segment::Enterprise => (rng.random_range(80..400) * 1000, rng.random_range(100..300)),
        Segment::MidMarket => (rng.random_range(20..80) * 1000, rng.random_range(25..90)),
        Segment::Smb => (rng.random_range(30..150) * 100, rng.random_range(5..20)),
    };
    // Still drawn, so a seed's accounts are the ones earlier versions
    // generated (the same events, the same chaos runs), only named apart.
    let _earlier_name = (NAME_A.choose(&mut rng), NAME_B.choose(&mut rng));
    let name = account_name(index, seed);
    let domain = format!("customer{index}.example");
    let person = |rng: &mut ChaCha8Rng| {
        let first = *FIRST.choose(rng).expect("names");
        let last = *LAST.choose(rng).expect("names");
        let local: String = format!("{first}.{last}")
            .to_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        Contact::parse(format!("{first} {last}"), &format!("{local}@{domain}")).expect("generated addresses are valid")
    };
    let primary_contact = person(&mut rng);
    let sponsor_odds = match segment {
        Segment::Enterprise => 0.9,
        Segment::MidMarket => 0.5,
        Segment::Smb => 0.0,
    };
    let exec_sponsor = rng.random_bool(sponsor_odds).then(|| person(&mut rng));
    let (csm_name, csm_email) = CSMS[index % CSMS.len()];
    let account = Account {
        id: AccountId(format!("acct-{index:05}")),
        name,
        segment,
        contract_start,
        renewal_date: contract_start + Duration::days(365),
        tenure_year,
        arr,
        licensed_seats: seats,
        primary_contact,
        csm: Contact::parse(csm_name, csm_email).expect("built-in addresses are valid"),
        cs_leader_email: EmailAddress::parse("cs-leadership@vendor.example").expect("a valid address"),
        exec_sponsor,
        timezone: *TIMEZONES.choose(&mut rng).expect("timezones"),
        goal: Some(GOALS.choose(&mut rng).expect("goals").to_string()),
        traits_at: None,
        contacts: contacts_by_role(segment, index),
        renewals: Vec::new(),
        domain: None,
        hubspot_company_id: None,
        success_plan: None,
    };
    let start_at = account.contract_start_at();
    // One account in ten reaches Milepost a day after its first product events.
    let appears_at = if rng.random_bool(0.1) {
        start_at + Duration::hours(rng.random_range(26..40))
    } else {
        start_at + Duration::hours(rng.random_range(1..8))
    };
    let silent_after = if persona == Persona::Stalled {
        start_at + Duration::days(rng.random_range(15..40))
    } else {
        start_at + Duration::days(10_000)
    };

    let map = MilestoneMap::select(maps, segment, account.tenure())
        .expect("the demo ships a map for every segment and tenure");
    // A plan's checkpoints come from the plan: drawn apart, below.
    let mut milestones: Vec<_> = map
        .milestones
        .iter()
        .filter(|m| !matches!(m.criterion, Criterion::AgreedOutcome) && !m.phase.is_expansion())
        .collect();
    milestones.sort_by_key(|m| m.due_days);
    let stalled_keeps = rng.random_range(0..=2);
    let mut bursts = Vec::new();
    let mut manual_marks = Vec::new();
    for (rank, m) in milestones.iter().enumerate() {
        let due = f64::from(m.due_days);
        // Days after contract start when the criterion gets met, or None.
        let target = planned_day(&mut rng, persona, rank < stalled_keeps, due);
        let target = if target.is_none_or(|t| t > due) {
            plant_recovery(&mut rng, &account, map, m)
        } else {
            target
        };
        let Some(target) = target else { continue };
        let end = start_at + Duration::minutes((target.max(0.1) * 24.0 * 60.0) as i64);
        let spread = Duration::minutes(rng.random_range(30..(2 * 24 * 60)));
        let start = (end - spread).max(start_at + Duration::hours(1));
        let Some(burst) = burst_for(m, start, end, start_at, seats) else {
            manual_marks.push((end, m.id.clone()));
            continue;
        };
        bursts.push(burst);
    }
    // Growth, drawn from a stream of its own (so every other draw is as
    // before): half the healthy accounts outgrow what they bought,
    // one to six months into the contract.
    let mut growth = rng_for(seed, index, 12);
    for m in map.milestones.iter().filter(|m| m.phase.is_expansion()) {
        if persona != Persona::Healthy || !growth.random_bool(0.5) {
            continue;
        }
        let end = start_at + Duration::days(growth.random_range(30..180));
        let start = end - Duration::days(growth.random_range(5..20));
        match burst_for(m, start, end, start_at, seats) {
            Some(burst) => bursts.push(burst),
            None => manual_marks.push((end, m.id.clone())),
        }
    }
    let success_plan = success_plan_of(index, seed, &account, persona, appears_at, silent_after);
    AccountPlan {
        index,
        account,
        persona,
        success_plan,
        appears_at,
        bursts,
        manual_marks,
        silent_after,
    }
}

/// The success plan half the enterprise and mid-market accounts agree (drawn
/// from a stream of its own, so every other draw is as before): the goal
/// their traits state, measured; set a day after the account arrives. The
/// measures keep pace by persona: healthy accounts ahead of the first
/// checkpoint, slow ones and late catchers behind it then catching up,
/// stalled ones far behind until they go quiet.
fn success_plan_of(
    index: usize,
    seed: u64,
    account: &Account,
    persona: Persona,
    appears_at: Timestamp,
    silent_after: Timestamp,
) -> Option<DemoPlan> {
    let mut rng = rng_for(seed, index, 11);
    if account.segment == Segment::Smb || !rng.random_bool(0.5) {
        return None;
    }
    let goal = account.goal.as_deref()?;
    let &(_, property, unit, baseline, target, first) = GOAL_MEASURES.iter().find(|g| g.0 == goal)?;
    let start = account.contract_start;
    let mut title = goal.to_string();
    title[..1].make_ascii_uppercase();
    let agreed_by = account
        .exec_sponsor
        .as_ref()
        .unwrap_or(&account.primary_contact)
        .name
        .clone();
    let outcome = AgreedOutcome {
        id: property.to_string(),
        title,
        measure: Measure {
            event: "outcome.measured".to_string(),
            property: property.to_string(),
        },
        unit: unit.to_string(),
        baseline,
        target,
        starts_on: start,
        by: start + Duration::days(365),
        checkpoints: vec![
            Checkpoint {
                on: start + Duration::days(FIRST_CHECKPOINT_DAYS),
                value: first,
            },
            Checkpoint {
                on: start + Duration::days(180),
                value: (baseline + target) / 2.0,
            },
        ],
        agreed_by,
    };
    // The share of the way to the first checkpoint's value each day.
    let pace = match persona {
        Persona::Healthy => rng.random_range(1.15..1.4),
        Persona::Slow => rng.random_range(0.9..1.0),
        Persona::LateCatcher => rng.random_range(0.75..0.85),
        Persona::Stalled => rng.random_range(0.2..0.4),
    } / FIRST_CHECKPOINT_DAYS as f64;
    let start_at = account.contract_start_at();
    let days: Vec<i64> = (1..=8)
        .map(|n| n * MEASURE_EVERY_DAYS)
        .filter(|d| start_at + Duration::days(*d) < silent_after)
        .collect();
    let values = days
        .iter()
        .map(|&d| {
            let reached = (pace * d as f64).min((target - baseline) / (first - baseline));
            (10.0 * (baseline + (first - baseline) * reached)).round() / 10.0
        })
        .collect();
    let at = |d: i64| start_at + Duration::days(d) + Duration::hours(10);
    Some(DemoPlan {
        set_at: appears_at + Duration::days(1),
        outcomes: vec![outcome],
        measures: Burst {
            start: at(*days.first()?),
            end: at(*days.last()?),
            event: "outcome.measured".to_string(),
            count: days.len() as u32,
            distinct_users: false,
            metric: Some((property.to_string(), values)),
        },
    })
}

/// The account's contacts by role: an onboarding lead and an account
/// executive, except at SMBs (their CSM owns both).
fn contacts_by_role(segment: Segment, index: usize) -> std::collections::BTreeMap<String, Contact> {
    let contact = |(name, email): (&str, &str)| Contact::parse(name, email).expect("built-in addresses are valid");
    match segment {
        Segment::Smb => Default::default(),
        _ => [
            ("onboarding".to_string(), contact(ONBOARDING[index % ONBOARDING.len()])),
            (
                "ae".to_string(),
                contact(ACCOUNT_EXECUTIVES[index % ACCOUNT_EXECUTIVES.len()]),
            ),
        ]
        .into(),
    }
}

/// The day after contract start on which a `persona` meets a milestone due
/// on day `due`, or None when it never does; `kept`: one of the milestones
/// a stalled account still reaches.
fn planned_day(rng: &mut ChaCha8Rng, persona: Persona, kept: bool, due: f64) -> Option<f64> {
    match persona {
        Persona::Healthy if rng.random_bool(0.08) => Some(due + rng.random_range(0.2..2.0)),
        Persona::Healthy => Some(due * rng.random_range(0.35..0.9)),
        Persona::Slow => match rng.random_range(0..100) {
            0..65 => Some(due * rng.random_range(0.75..0.98)),
            65..90 => Some(due + rng.random_range(0.5..12.0)),
            _ => None,
        },
        Persona::LateCatcher if rng.random_bool(0.7) => Some(due + rng.random_range(0.5..9.0)),
        Persona::LateCatcher => Some(due * rng.random_range(0.6..0.95)),
        Persona::Stalled if kept => Some(due * rng.random_range(0.5..0.95)),
        Persona::Stalled => None,
    }
}

/// The events that meet `m` between `start` and `end` (a manual milestone
/// has none: its owner confirms it; nor has the map's agreed-outcome
/// milestone, whose checkpoints come from accounts' plans).
fn burst_for(m: &MilestoneDef, start: Timestamp, end: Timestamp, start_at: Timestamp, seats: u32) -> Option<Burst> {
    let burst = match &m.criterion {
        Criterion::EventCount { event, min, .. } => Burst {
            start,
            end,
            event: event.clone(),
            count: *min,
            distinct_users: false,
            metric: None,
        },
        Criterion::DistinctUsers { event, min, .. } => Burst {
            start,
            end,
            event: event.clone(),
            count: *min,
            distinct_users: true,
            metric: None,
        },
        Criterion::SeatRatio { .. } => Burst {
            start,
            end,
            event: m.criterion.event().expect("seat ratio has an event").to_string(),
            count: m.criterion.threshold(seats),
            distinct_users: true,
            metric: None,
        },
        Criterion::MetricThreshold {
            event, property, value, ..
        } => {
            // Measurements climb towards the target over the weeks before it.
            let steps = [0.3, 0.6, 0.85, 1.0];
            Burst {
                start: (end - Duration::days(45)).max(start_at + Duration::hours(1)),
                end,
                event: event.clone(),
                count: steps.len() as u32,
                distinct_users: false,
                metric: Some((
                    property.clone(),
                    steps.iter().map(|s| (value * s * 100.0).round() / 100.0).collect(),
                )),
            }
        }
        Criterion::Manual | Criterion::AgreedOutcome => return None,
    };
    Some(burst)
}

/// The playbook effect the demo plants: of the customers who miss a
/// milestone, this share catches up within `RECOVERY_DAYS` of the due date
/// with the playbook, and `PLANTED_CONTROL_RECOVERY` without (the control
/// group). `milepost report` should find the difference, within its interval.
pub const PLANTED_PLAYBOOK_RECOVERY: f64 = 0.60;
pub const PLANTED_CONTROL_RECOVERY: f64 = 0.35;
/// Planted recoveries land between 1 and this many days after the due date
/// (inside the report's default 30-day window).
pub const RECOVERY_DAYS: f64 = 20.0;

/// When (days after contract start) a customer who misses `m` catches up, or
/// never: by the group the sweep will put the miss in (the same pure
/// function of account, milestone and due time). Of those who do not recover
/// in time, some come back long after the window, as real customers do.
fn plant_recovery(rng: &mut ChaCha8Rng, account: &Account, map: &MilestoneMap, m: &MilestoneDef) -> Option<f64> {
    let due = f64::from(m.due_days);
    let due_at = account.contract_start_at() + Duration::days(i64::from(m.due_days));
    let group = m.holdout_in(map).group_of(&account.id, &m.id, due_at, account.arr);
    let odds = match group {
        Group::Playbook => PLANTED_PLAYBOOK_RECOVERY,
        Group::Control => PLANTED_CONTROL_RECOVERY,
    };
    if rng.random_bool(odds) {
        Some(due + rng.random_range(1.0..RECOVERY_DAYS))
    } else if rng.random_bool(0.4) {
        Some(due + rng.random_range(35.0..70.0))
    } else {
        None
    }
}

impl AccountPlan {
    /// The product events this account sends on day `day` (0 = the simulation's first day), in no particular order.
    /// The measures of its success plan the product reports on `day`
    /// (`milepost demo` only: the chaos run sets no plans).
    pub fn measures_on(&self, day: i64, out: &mut Vec<ProductEvent>) {
        if let Some(plan) = &self.success_plan {
            self.burst_on(day, &plan.measures, format_args!("measure"), out);
        }
    }

    /// The events of `burst` that fall on `day`, their ids `<account>-<tag>-<i>`.
    fn burst_on(&self, day: i64, burst: &Burst, tag: std::fmt::Arguments, out: &mut Vec<ProductEvent>) {
        let day_start = sim_start() + Duration::days(day);
        let day_end = day_start + Duration::days(1);
        if burst.end < day_start || burst.start >= day_end {
            return;
        }
        for i in 0..burst.count {
            let at = burst.time_of(i);
            if at < day_start || at >= day_end {
                continue;
            }
            let user = if burst.distinct_users { i + 1 } else { 1 + i % 3 };
            let mut properties = serde_json::Map::new();
            if let Some((property, values)) = &burst.metric {
                properties.insert(property.clone(), json!(values[i as usize]));
            }
            out.push(ProductEvent {
                id: format!("{}-{tag}-{i}", self.account.id),
                account_id: self.account.id.clone(),
                event: burst.event.clone(),
                timestamp: at,
                user_id: Some(format!("{}-u{user}", self.account.id)),
                properties,
            });
        }
    }

    pub fn events_on(&self, day: i64, seed: u64, out: &mut Vec<ProductEvent>) {
        let day_start = sim_start() + Duration::days(day);
        let day_end = day_start + Duration::days(1);
        let account_start = self.account.contract_start_at();
        if day_end <= account_start {
            return;
        }
        for (b, burst) in self.bursts.iter().enumerate() {
            self.burst_on(day, burst, format_args!("b{b}"), out);
        }
        // Background usage: page views that keep the account's activity fresh.
        if day_start >= self.silent_after && self.persona == Persona::Stalled {
            return;
        }
        let mut rng = rng_for(seed, self.index, 1_000 + day as u64);
        if !rng.random_bool(self.persona.daily_activity()) {
            return;
        }
        let first_hour = (account_start.max(day_start) - day_start).num_hours().clamp(0, 23);
        for j in 0..rng.random_range(1..5) {
            let at = day_start
                + Duration::hours(rng.random_range(first_hour..24))
                + Duration::minutes(rng.random_range(0..60));
            if at < account_start {
                continue;
            }
            out.push(ProductEvent {
                id: format!("{}-d{day}-{j}", self.account.id),
                account_id: self.account.id.clone(),
                event: "page.viewed".to_string(),
                timestamp: at,
                user_id: Some(format!(
                    "{}-u{}",
                    self.account.id,
                    rng.random_range(1..=self.account.licensed_seats.min(5))
                )),
                properties: serde_json::Map::new(),
            });
        }
    }
}

/// A Segment `batch` of `track` calls for `events`, as analytics.js or a
/// server library sends it (the benches and the chaos run deliver the
/// stream this way).
pub fn segment_batch(events: &[ProductEvent]) -> Vec<u8> {
    let calls: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            json!({"type": "track", "messageId": e.id, "event": e.event, "userId": e.user_id,
                   "timestamp": e.timestamp.to_rfc3339(), "properties": e.properties,
                   "context": {"groupId": e.account_id.as_str()}})
        })
        .collect();
    serde_json::to_vec(&json!({ "batch": calls })).expect("JSON of a batch")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn every_account_of_a_run_has_its_own_name() {
        for seed in [0, 7, 42, 1_000_003] {
            let names: HashSet<String> = (0..2_000).map(|i| super::account_name(i, seed)).collect();
            assert_eq!(names.len(), 2_000, "seed {seed}");
        }
    }
}
