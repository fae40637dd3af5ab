//! Loading and validating milestone maps from YAML, reporting every problem
//! with its file, line and field rather than stopping at the first; and
//! finding the map files of a directory.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoadError, Node, Span};

use milepost_domain::after_playbook::{MAX_LAPSED_REMINDERS, MAX_REMINDER_DAY, MAX_TASK_SLA};
use milepost_domain::criterion::{MAX_MARKS, MAX_WINDOW_DAYS};
use milepost_domain::holdout::{Holdout, DEFAULT_HOLDOUT_MAX_ARR, MAX_HOLDOUT};
use milepost_domain::map::{PropertyType, MAX_WARN_DAYS};
use milepost_domain::{
    AfterPlaybook, ArrThresholds, CompareOp, ContactPolicy, Criterion, Guide, HeadsUpRule, MapSegment, MilestoneDef,
    MilestoneMap, MovedBy, Phase, Playbook, Tenure,
};

pub mod files;
pub use files::{advise_files, check_files, map_files, read_maps};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapProblem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Where in the map, e.g. `milestones[2].criterion.kind`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for MapProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.field, self.message
        )
    }
}

/// Parses and validates one map file.
pub fn load_map(file: &str, text: &str) -> Result<MilestoneMap, Vec<MapProblem>> {
    load_map_with_advice(file, text).map(|(map, _)| map)
}

/// `load_map`, with the advice on a valid map: what it allows but a
/// customer would be poorer for (a customer-side milestone with no
/// customer title, or no guide for its follow-up). Advice never refuses a map.
pub fn load_map_with_advice(file: &str, text: &str) -> Result<(MilestoneMap, Vec<MapProblem>), Vec<MapProblem>> {
    let mut v = Validator {
        file,
        problems: Vec::new(),
        advice: Vec::new(),
    };
    let root = match marked_yaml::parse_yaml(0, text) {
        Ok(root) => root,
        Err(e) => {
            let (line, column, message) = describe_load_error(&e);
            return Err(vec![MapProblem {
                file: file.to_string(),
                line,
                column,
                field: "(document)".to_string(),
                message,
            }]);
        }
    };
    let map = v.map(&root);
    match map {
        Some(map) if v.problems.is_empty() => Ok((map, v.advice)),
        _ => Err(v.problems),
    }
}

fn describe_load_error(e: &LoadError) -> (usize, usize, String) {
    let (marker, message) = match e {
        LoadError::TopLevelMustBeMapping(m) => (m, "the map must be a YAML mapping".to_string()),
        LoadError::TopLevelMustBeSequence(m) => (m, "expected a sequence".to_string()),
        LoadError::UnexpectedAnchor(m) => (m, "anchors and aliases are not supported".to_string()),
        LoadError::MappingKeyMustBeScalar(m) => (m, "mapping keys must be plain strings".to_string()),
        LoadError::UnexpectedTag(m) => (m, "YAML tags are not supported".to_string()),
        LoadError::ScanError(m, err) => (m, format!("not valid YAML: {err}")),
        LoadError::DuplicateKey(_) => return (0, 0, e.to_string()),
    };
    (marker.line(), marker.column(), message)
}

fn position(span: &Span) -> (usize, usize) {
    span.start().map_or((0, 0), |m| (m.line(), m.column()))
}

struct Validator<'a> {
    file: &'a str,
    problems: Vec<MapProblem>,
    advice: Vec<MapProblem>,
}

const MAP_KEYS: &[&str] = &[
    "segment",
    "tenure",
    "escalate_to_exec_sponsor",
    "business_days",
    "contact_policy",
    "min_arr_at_risk",
    "holdout",
    "holdout_max_arr",
    "lapsed_reminder_days",
    "task_sla_business_days",
    "events",
    "milestones",
    "description",
];
const THRESHOLD_KEYS: &[&str] = &["csm_task", "leadership"];
const CONTACT_POLICY_KEYS: &[&str] = &["max_per_day", "max_per_week", "business_hours", "business_days_only"];
const MILESTONE_KEYS: &[&str] = &[
    "id",
    "name",
    "customer_title",
    "phase",
    "due_days",
    "owner",
    "criterion",
    "moved_by",
    "arr_weight",
    "warn_before_days",
    "warn_champion",
    "holdout",
    "playbook",
    "expansion",
    "description",
];
const EXPANSION_KEYS: &[&str] = &["adds", "unit", "unit_price", "play"];
/// The longest unit name (`plan_upgrades`, `api_calls_1m`).
const MAX_UNIT_BYTES: usize = 40;
/// What an expansion milestone may not say: it is never missed, so nothing
/// reaches the customer and no playbook runs.
const NOT_FOR_EXPANSION: &[&str] = &[
    "due_days",
    "customer_title",
    "moved_by",
    "arr_weight",
    "warn_before_days",
    "warn_champion",
    "holdout",
    "playbook",
];
/// An expansion milestone's window: to the end of the contract's twelfth month, as the phase spans.
const EXPANSION_DUE_DAYS: u32 = 360;
const PLAYBOOK_KEYS: &[&str] = &["outreach", "csm", "leadership", "sponsor", "guides"];
const GUIDE_KEYS: &[&str] = &["title", "url"];
/// The longest text a map may hold in one field (a name, a playbook stage, a guide).
const MAX_TEXT_BYTES: usize = 4096;
/// The most guides one playbook may list.
const MAX_GUIDES: usize = 10;
const CRITERION_KINDS: &[&str] = &[
    "event_count",
    "distinct_users",
    "seat_ratio",
    "metric_threshold",
    "manual",
    "agreed_outcome",
];

impl Validator<'_> {
    /// What is said of `field`, at `span` of this file.
    fn note(&self, span: &Span, field: &str, message: impl Into<String>) -> MapProblem {
        let (line, column) = position(span);
        MapProblem {
            file: self.file.to_string(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn advise(&mut self, span: &Span, field: &str, message: impl Into<String>) {
        let advice = self.note(span, field, message);
        self.advice.push(advice);
    }

    fn problem(&mut self, span: &Span, field: &str, message: impl Into<String>) {
        let problem = self.note(span, field, message);
        self.problems.push(problem);
    }

    fn check_keys(&mut self, map: &MarkedMappingNode, allowed: &[&str], path: &str) {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                let field = join(path, key.as_str());
                self.problem(
                    key.span(),
                    &field,
                    format!("unknown field (expected one of: {})", allowed.join(", ")),
                );
            }
        }
    }

    fn mapping<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n MarkedMappingNode> {
        let m = node.as_mapping();
        if m.is_none() {
            self.problem(node.span(), path, "must be a mapping");
        }
        m
    }

    fn scalar<'n>(
        &mut self,
        parent: &'n MarkedMappingNode,
        key: &str,
        path: &str,
        required: bool,
    ) -> Option<&'n MarkedScalarNode> {
        let field = join(path, key);
        match parent.get_node(key) {
            None if required => {
                self.problem(parent.span(), &field, "is required");
                None
            }
            None => None,
            Some(Node::Scalar(s)) if required && s.as_str().trim().is_empty() => {
                self.problem(s.span(), &field, "must not be empty");
                None
            }
            Some(Node::Scalar(s)) => Some(s),
            Some(other) => {
                self.problem(other.span(), &field, "must be a single value");
                None
            }
        }
    }

    fn string(&mut self, parent: &MarkedMappingNode, key: &str, path: &str) -> Option<String> {
        let s = self.scalar(parent, key, path, true)?;
        self.bounded_text(s, &join(path, key))
    }

    /// Text no longer than `MAX_TEXT_BYTES`: every tracked milestone carries
    /// its map's texts, and its item must stay within DynamoDB's 400 KB.
    fn bounded_text(&mut self, s: &MarkedScalarNode, field: &str) -> Option<String> {
        if s.as_str().len() > MAX_TEXT_BYTES {
            self.problem(
                s.span(),
                field,
                format!("is {} bytes; the limit is {MAX_TEXT_BYTES}", s.as_str().len()),
            );
            return None;
        }
        Some(s.as_str().to_string())
    }

    fn integer(&mut self, parent: &MarkedMappingNode, key: &str, path: &str, required: bool, min: u32) -> Option<u32> {
        self.integer_in(parent, key, path, required, min, u32::MAX)
    }

    /// A whole number in `min..=max` (the upper bounds keep criterion progress
    /// within its storage budget: docs/capacity.md).
    fn integer_in(
        &mut self,
        parent: &MarkedMappingNode,
        key: &str,
        path: &str,
        required: bool,
        min: u32,
        max: u32,
    ) -> Option<u32> {
        let s = self.scalar(parent, key, path, required)?;
        match s.as_u32() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let range = if max == u32::MAX {
                    format!("at least {min}")
                } else {
                    format!("from {min} to {max}")
                };
                self.problem(
                    s.span(),
                    &join(path, key),
                    format!("must be a whole number {range}, not `{}`", s.as_str()),
                );
                None
            }
        }
    }

    fn number(&mut self, parent: &MarkedMappingNode, key: &str, path: &str, required: bool) -> Option<f64> {
        let s = self.scalar(parent, key, path, required)?;
        match s.as_f64() {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                self.problem(
                    s.span(),
                    &join(path, key),
                    format!("must be a number, not `{}`", s.as_str()),
                );
                None
            }
        }
    }

    /// The number `s` holds; anything else is a problem at `at`, naming the `alternative` too.
    fn number_in(&mut self, s: &MarkedScalarNode, at: &str, alternative: &str) -> Option<f64> {
        match s.as_f64() {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                self.problem(
                    s.span(),
                    at,
                    format!("must be a number {alternative}, not `{}`", s.as_str()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, parent: &MarkedMappingNode, key: &str, path: &str) -> bool {
        let Some(s) = self.scalar(parent, key, path, false) else {
            return false;
        };
        match s.as_bool() {
            Some(b) => b,
            None => {
                let message = format!("must be true or false, not `{}`", s.as_str());
                self.problem(s.span(), &join(path, key), message);
                false
            }
        }
    }

    fn map(&mut self, root: &Node) -> Option<MilestoneMap> {
        let top = self.mapping(root, "(document)")?;
        self.check_keys(top, MAP_KEYS, "");
        let segment = self.scalar(top, "segment", "", true).and_then(|s| {
            let parsed = MapSegment::parse(s.as_str());
            if parsed.is_none() {
                self.problem(
                    s.span(),
                    "segment",
                    format!(
                        "unknown segment `{}` (expected enterprise, mid_market, smb or all)",
                        s.as_str()
                    ),
                );
            }
            parsed
        });
        let tenure = self
            .scalar(top, "tenure", "", false)
            .and_then(|s| match s.as_str().parse::<Tenure>() {
                Ok(t) => Some(t),
                Err(e) => {
                    self.problem(s.span(), "tenure", e);
                    None
                }
            });
        let escalate_to_exec_sponsor = self.boolean(top, "escalate_to_exec_sponsor", "");
        let business_days = self.boolean(top, "business_days", "");
        let events = top.get_node("events").map(|n| self.events(n)).unwrap_or_default();
        let contact_policy = top
            .get_node("contact_policy")
            .map(|n| self.contact_policy(n))
            .unwrap_or_default();
        let min_arr_at_risk = top
            .get_node("min_arr_at_risk")
            .map(|n| self.thresholds(n))
            .unwrap_or_default();
        let holdout = Holdout {
            share: self.holdout_share(top, "").unwrap_or(0.0),
            max_arr: self
                .integer_in(top, "holdout_max_arr", "", false, 0, u32::MAX)
                .map_or(DEFAULT_HOLDOUT_MAX_ARR, u64::from),
        };

        let mut milestones = Vec::new();
        match top.get_node("milestones") {
            None => self.problem(top.span(), "milestones", "is required"),
            Some(Node::Sequence(seq)) if seq.is_empty() => {
                self.problem(seq.span(), "milestones", "must list at least one milestone")
            }
            Some(Node::Sequence(seq)) => {
                let mut first_seen: HashMap<String, usize> = HashMap::new();
                for (i, node) in seq.iter().enumerate() {
                    let path = format!("milestones[{i}]");
                    // Found on the raw id, so a milestone with other problems still reports the clash.
                    let id = node
                        .as_mapping()
                        .and_then(|m| m.get_node("id"))
                        .and_then(Node::as_scalar);
                    if let Some(id) = id.filter(|id| !id.as_str().trim().is_empty()) {
                        let (line, _) = position(node.span());
                        match first_seen.get(id.as_str()) {
                            Some(first_line) => self.problem(
                                id.span(),
                                &format!("{path}.id"),
                                format!(
                                    "duplicate milestone id `{}` (first defined on line {first_line})",
                                    id.as_str()
                                ),
                            ),
                            None => {
                                first_seen.insert(id.as_str().to_string(), line);
                            }
                        }
                    }
                    if let Some(def) = self.milestone(node, &path, &events, escalate_to_exec_sponsor) {
                        milestones.push(def);
                    }
                }
            }
            Some(other) => self.problem(other.span(), "milestones", "must be a list of milestones"),
        }
        // ARR at risk is ARR × each missed milestone's weight: weights summing
        // above 1 put more than an account's ARR at risk when it misses them all.
        let total: f64 = milestones.iter().map(MilestoneDef::arr_weight).sum();
        if total > 1.0 + 1e-9 {
            if let Some(node) = top.get_node("milestones") {
                self.advise(
                    node.span(),
                    "milestones",
                    format!(
                        "their arr_weight values sum to {total:.2} (an unset or not yet discovered one counts {}): an account that missed them all would have more ARR at risk than its ARR; weigh them to sum to 1 or less",
                        milepost_domain::map::DEFAULT_ARR_WEIGHT
                    ),
                );
            }
        }
        let after_playbook = self.after_playbook(top);
        Some(MilestoneMap {
            after_playbook,
            segment: segment?,
            tenure,
            escalate_to_exec_sponsor,
            business_days,
            contact_policy,
            min_arr_at_risk,
            holdout,
            events,
            milestones,
        })
    }

    /// `lapsed_reminder_days:` (days after a lapse, ascending; `[]` for
    /// none) and `task_sla_business_days:` (0: never raised); either optional.
    fn after_playbook(&mut self, top: &MarkedMappingNode) -> AfterPlaybook {
        let mut rules = AfterPlaybook::default();
        if let Some(n) = self.integer_in(top, "task_sla_business_days", "", false, 0, MAX_TASK_SLA) {
            rules.task_sla_business_days = n;
        }
        let path = "lapsed_reminder_days";
        match top.get_node(path) {
            None => {}
            Some(Node::Sequence(seq)) => {
                let days: Vec<Option<u32>> = seq
                    .iter()
                    .map(|n| {
                        n.as_scalar()
                            .and_then(|s| s.as_u32())
                            .filter(|d| (1..=MAX_REMINDER_DAY).contains(d))
                    })
                    .collect();
                let ascending = days.windows(2).all(|w| matches!(w, [Some(a), Some(b)] if a < b));
                if seq.len() > MAX_LAPSED_REMINDERS || days.iter().any(Option::is_none) || !ascending {
                    self.problem(
                        seq.span(),
                        path,
                        format!(
                            "must list up to {MAX_LAPSED_REMINDERS} whole days from 1 to {MAX_REMINDER_DAY}, ascending, e.g. [14, 30] ([] for no reminders)"
                        ),
                    );
                } else {
                    rules.lapsed_reminder_days = days.into_iter().flatten().collect();
                }
            }
            Some(other) => self.problem(
                other.span(),
                path,
                "must be a list of days after the lapse, e.g. [14, 30]",
            ),
        }
        rules
    }

    /// `min_arr_at_risk:` — whole amounts of the account's currency; either optional.
    fn thresholds(&mut self, node: &Node) -> ArrThresholds {
        let path = "min_arr_at_risk";
        let mut t = ArrThresholds::default();
        let Some(m) = self.mapping(node, path) else {
            return t;
        };
        self.check_keys(m, THRESHOLD_KEYS, path);
        if let Some(n) = self.integer_in(m, "csm_task", path, false, 0, u32::MAX) {
            t.csm_task = u64::from(n);
        }
        if let Some(n) = self.integer_in(m, "leadership", path, false, 0, u32::MAX) {
            t.leadership = u64::from(n);
        }
        if t.leadership < t.csm_task && m.get_node("leadership").is_some() {
            self.problem(
                m.span(),
                &join(path, "leadership"),
                format!(
                    "is {} but csm_task is {}: a miss too small for a CSM task never reaches leadership, so leadership's threshold cannot be lower",
                    t.leadership, t.csm_task
                ),
            );
        }
        t
    }

    /// `contact_policy:` — every field optional, the rest the defaults.
    fn contact_policy(&mut self, node: &Node) -> ContactPolicy {
        let path = "contact_policy";
        let mut policy = ContactPolicy::default();
        let Some(m) = self.mapping(node, path) else {
            return policy;
        };
        self.check_keys(m, CONTACT_POLICY_KEYS, path);
        if let Some(n) = self.integer_in(m, "max_per_day", path, false, 1, 10) {
            policy.max_per_day = n;
        }
        if let Some(n) = self.integer_in(m, "max_per_week", path, false, 1, 70) {
            policy.max_per_week = n;
        }
        if policy.max_per_week < policy.max_per_day {
            self.problem(
                m.span(),
                &join(path, "max_per_week"),
                format!(
                    "is {} but max_per_day is {}: a week cannot allow fewer than a day",
                    policy.max_per_week, policy.max_per_day
                ),
            );
        }
        match m.get_node("business_hours") {
            None => {}
            Some(Node::Sequence(seq)) if seq.len() == 2 => {
                let hour = |n: &Node| n.as_scalar().and_then(|s| s.as_u32()).filter(|h| *h <= 24);
                match (hour(&seq[0]), hour(&seq[1])) {
                    (Some(start), Some(end)) if start < end => policy.business_hours = (start, end),
                    _ => self.problem(
                        seq.span(),
                        &join(path, "business_hours"),
                        "must be [start, end]: two whole hours from 0 to 24, start before end",
                    ),
                }
            }
            Some(other) => self.problem(
                other.span(),
                &join(path, "business_hours"),
                "must be [start, end], e.g. [9, 17]",
            ),
        }
        if let Some(s) = self.scalar(m, "business_days_only", path, false) {
            match s.as_bool() {
                Some(b) => policy.business_days_only = b,
                None => self.problem(
                    s.span(),
                    &join(path, "business_days_only"),
                    format!("must be true or false, not `{}`", s.as_str()),
                ),
            }
        }
        policy
    }

    fn events(&mut self, node: &Node) -> BTreeMap<String, BTreeMap<String, PropertyType>> {
        let mut out = BTreeMap::new();
        let Some(events) = self.mapping(node, "events") else {
            return out;
        };
        for (event, props) in events.iter() {
            let path = format!("events.{}", event.as_str());
            let mut declared = BTreeMap::new();
            if let Some(props) = self.mapping(props, &path) {
                for (prop, ty) in props.iter() {
                    let field = format!("{path}.{}", prop.as_str());
                    match ty.as_scalar().map(|s| s.as_str()) {
                        Some(name) => match PropertyType::parse(name) {
                            Some(t) => {
                                declared.insert(prop.as_str().to_string(), t);
                            }
                            None => self.problem(
                                ty.span(),
                                &field,
                                format!(
                                    "unknown event property type `{name}` (expected {})",
                                    PropertyType::NAMES.join(", ")
                                ),
                            ),
                        },
                        None => self.problem(ty.span(), &field, "must be a type name"),
                    }
                }
            }
            out.insert(event.as_str().to_string(), declared);
        }
        out
    }

    fn milestone(
        &mut self,
        node: &Node,
        path: &str,
        events: &BTreeMap<String, BTreeMap<String, PropertyType>>,
        escalates_to_sponsor: bool,
    ) -> Option<MilestoneDef> {
        let m = self.mapping(node, path)?;
        self.check_keys(m, MILESTONE_KEYS, path);
        let id = self.scalar(m, "id", path, true).and_then(|s| {
            let ok = s
                .as_str()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if !ok {
                self.problem(
                    s.span(),
                    &join(path, "id"),
                    "may contain only letters, digits, `_`, `-` and `.`",
                );
            }
            ok.then(|| s.as_str().to_string())
        });
        let name = self.string(m, "name", path);
        let customer_title = m
            .get_node("customer_title")
            .and_then(|_| self.string(m, "customer_title", path));
        let phase = self.scalar(m, "phase", path, true).and_then(|s| {
            let p = Phase::parse(s.as_str());
            if p.is_none() {
                self.problem(
                    s.span(),
                    &join(path, "phase"),
                    format!(
                        "unknown phase `{}` (expected onboarding, adoption, value_realization, renewal_prep or expansion)",
                        s.as_str()
                    ),
                );
            }
            p
        });
        // An agreed outcome's checkpoints fall due on the dates each account's plan sets.
        let per_plan = m
            .get_mapping("criterion")
            .and_then(|c| c.get_scalar("kind"))
            .is_some_and(|k| k.as_str() == "agreed_outcome");
        let growth = phase == Some(Phase::Expansion);
        let due_days = if growth {
            Some(EXPANSION_DUE_DAYS)
        } else if per_plan {
            if let Some(node) = m.get_node("due_days") {
                self.problem(
                    node.span(),
                    &join(path, "due_days"),
                    "an agreed_outcome milestone falls due on each checkpoint's date in the account's success plan: remove due_days",
                );
            }
            Some(0)
        } else {
            self.integer(m, "due_days", path, true, 1)
        };
        if let (Some(phase), Some(due), false, false) = (phase, due_days, per_plan, growth) {
            let allowed = phase.due_days();
            if !allowed.contains(&due) {
                let span = *m.get_node("due_days").expect("parsed above").span();
                let months = phase.months();
                self.problem(
                    &span,
                    &join(path, "due_days"),
                    format!(
                        "due_days {due} is outside the {phase} phase (months {}–{}: days {}–{})",
                        months.start(),
                        months.end(),
                        allowed.start(),
                        allowed.end()
                    ),
                );
            }
        }
        let owner = self.scalar(m, "owner", path, true).and_then(|s| {
            if milepost_domain::is_role_name(s.as_str()) {
                Some(s.as_str().to_string())
            } else {
                self.problem(
                    s.span(),
                    &join(path, "owner"),
                    format!(
                        "`{}` is not a role: a lowercase identifier such as csm, onboarding or account_executive",
                        s.as_str()
                    ),
                );
                None
            }
        });
        let criterion = match m.get_node("criterion") {
            Some(c) => self.criterion(c, &join(path, "criterion"), events),
            None => {
                self.problem(m.span(), &join(path, "criterion"), "is required");
                None
            }
        };
        if growth {
            // Every problem of the block is reported, whatever else is wrong.
            let def = self.expansion_milestone(m, path, per_plan);
            let (id, name, owner, criterion) = (id?, name?, owner?, criterion?);
            return def.map(|def| MilestoneDef {
                id,
                name,
                owner,
                criterion,
                ..def
            });
        }
        if let Some(node) = m.get_node("expansion") {
            self.problem(
                node.span(),
                &join(path, "expansion"),
                "only an expansion milestone opens an opportunity: set phase: expansion, or remove expansion",
            );
        }
        // `discovered`: measured from renewal outcomes once a discovery is kept.
        let weight = self.scalar(m, "arr_weight", path, false);
        let discovered = weight.is_some_and(|s| s.as_str() == "discovered");
        if let (true, true, Some(s)) = (discovered, per_plan, weight) {
            self.problem(
                s.span(),
                &join(path, "arr_weight"),
                "cannot be discovered for an agreed outcome: each checkpoint is its account's own target, which discovery leaves out; set a share of ARR",
            );
        }
        let arr_weight = match weight {
            Some(s) if !discovered => self.number_in(s, &join(path, "arr_weight"), "or `discovered`"),
            _ => None,
        };
        if let Some(w) = arr_weight {
            if !(0.0..=1.0).contains(&w) {
                let span = *m.get_node("arr_weight").expect("parsed above").span();
                self.problem(
                    &span,
                    &join(path, "arr_weight"),
                    format!("must be between 0 and 1 (a share of ARR), not {w}"),
                );
            }
        }
        let moved_by = self.moved_by(m, path);
        // A misspelt side is one problem, not one more per field it would allow.
        let side = match m.get_node("moved_by") {
            Some(_) => moved_by,
            None => criterion.as_ref().map(MovedBy::default_for),
        };
        // A checkpoint's title for the customer is the outcome they agreed, in the plan's words.
        if let (Some(MovedBy::Customer), None, Some(name), false) = (side, &customer_title, &name, per_plan) {
            self.problem(
                m.span(),
                &join(path, "customer_title"),
                format!("is required: the milestone is the customer's to move, so customer mail and the in-app message name it; \"{name}\" is our name for it, give the customer's words (or say moved_by: vendor)"),
            );
        }
        let heads_up = self.heads_up(m, path, due_days.filter(|_| !per_plan), side);
        let holdout = self.holdout_share(m, path);
        if let (Some(MovedBy::Customer), true) = (side, escalates_to_sponsor) {
            // "Executive sponsor identified" asked of the executive sponsor.
            let about_sponsor = [id.as_deref(), name.as_deref()]
                .into_iter()
                .flatten()
                .any(|t| t.to_ascii_lowercase().contains("sponsor"));
            if about_sponsor {
                self.problem(
                    m.span(),
                    &join(path, "moved_by"),
                    "the map escalates to the customer's executive sponsor, who would be asked about the sponsor: make this milestone vendor-side (moved_by: vendor)",
                );
            }
        }
        let playbook = match m.get_node("playbook") {
            Some(p) => self.playbook(
                p,
                &join(path, "playbook"),
                escalates_to_sponsor,
                side.unwrap_or(MovedBy::Customer),
            ),
            None => {
                self.problem(
                    m.span(),
                    &join(path, "playbook"),
                    "is required (outreach, csm and leadership stages)",
                );
                None
            }
        };
        Some(MilestoneDef {
            expansion: None,
            id: id?,
            name: name?,
            customer_title,
            phase: phase?,
            due_days: due_days?,
            owner: owner?,
            criterion: criterion?,
            arr_weight,
            discovered_weight: discovered.then(|| milepost_domain::map::DiscoveredWeight {
                measured: None,
                unmeasured: Some("not measured yet: no kept discovery has weighed it".to_string()),
            }),
            heads_up,
            holdout,
            moved_by,
            playbook: playbook?,
        })
    }

    /// A milestone of the `expansion` phase: never missed, so it has no due
    /// day, playbook, weight, heads-up or holdout; reaching it opens the
    /// opportunity its `expansion:` describes, for its `owner`.
    /// (Its id, name, owner and criterion are the caller's to fill in.)
    fn expansion_milestone(&mut self, m: &MarkedMappingNode, path: &str, per_plan: bool) -> Option<MilestoneDef> {
        for key in NOT_FOR_EXPANSION {
            if let Some(node) = m.get_node(key) {
                self.problem(
                    node.span(),
                    &join(path, key),
                    "an expansion milestone is never missed and sends the customer nothing: remove it (its owner's words go in expansion.play)",
                );
            }
        }
        if per_plan {
            let span = *m.get_node("criterion").map_or(m.span(), |c| c.span());
            self.problem(
                &span,
                &join(path, "criterion"),
                "an agreed outcome is the customer's goal, not a growth signal: use another criterion for an expansion milestone",
            );
        }
        let field = join(path, "expansion");
        let Some(node) = m.get_node("expansion") else {
            self.problem(
                m.span(),
                &field,
                "is required for an expansion milestone: what reaching it offers (adds, unit, play)",
            );
            return None;
        };
        let e = self.mapping(node, &field)?;
        self.check_keys(e, EXPANSION_KEYS, &field);
        let adds = self.integer(e, "adds", &field, true, 1);
        let unit = self.scalar(e, "unit", &field, true).and_then(|s| {
            let word = s.as_str();
            let ok = word.len() <= MAX_UNIT_BYTES
                && word.starts_with(|c: char| c.is_ascii_lowercase())
                && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                self.problem(
                    s.span(),
                    &join(&field, "unit"),
                    format!(
                        "`{word}` is not a unit: a lowercase word of up to {MAX_UNIT_BYTES} letters, digits and `_`, such as seats or projects"
                    ),
                );
            }
            ok.then(|| word.to_string())
        });
        let unit_price = match self.scalar(e, "unit_price", &field, false) {
            None => Some(None),
            Some(s) => match s.as_u32() {
                Some(p) if p > 0 => Some(Some(u64::from(p))),
                _ => {
                    self.problem(
                        s.span(),
                        &join(&field, "unit_price"),
                        format!(
                            "must be a whole yearly price above 0 for one unit, not `{}`",
                            s.as_str()
                        ),
                    );
                    None
                }
            },
        };
        let play = self.string(e, "play", &field);
        if let (Some(unit), Some(None)) = (&unit, &unit_price) {
            if unit != milepost_domain::expansion::SEATS {
                self.advise(
                    e.span(),
                    &join(&field, "unit_price"),
                    format!("none: its opportunities count as unpriced pipeline (only seats are priced from the account's ARR per seat); give the yearly price of one of {unit}"),
                );
            }
        }
        let play = milepost_domain::ExpansionPlay {
            adds: adds?,
            unit: unit?,
            unit_price: unit_price?,
            play: play?,
        };
        Some(MilestoneDef {
            id: String::new(),
            name: String::new(),
            customer_title: None,
            phase: Phase::Expansion,
            due_days: EXPANSION_DUE_DAYS,
            owner: String::new(),
            criterion: Criterion::Manual,
            arr_weight: Some(0.0),
            discovered_weight: None,
            heads_up: None,
            holdout: None,
            moved_by: None,
            playbook: milepost_domain::map::Playbook {
                outreach: String::new(),
                csm: play.play.clone(),
                leadership: String::new(),
                sponsor: None,
                guides: Vec::new(),
            },
            expansion: Some(play),
        })
    }

    /// `moved_by:` — `customer` or `vendor`; unset, the criterion decides.
    fn moved_by(&mut self, m: &MarkedMappingNode, path: &str) -> Option<MovedBy> {
        let s = self.scalar(m, "moved_by", path, false)?;
        let side = MovedBy::parse(s.as_str());
        if side.is_none() {
            self.problem(
                s.span(),
                &join(path, "moved_by"),
                format!(
                    "unknown side `{}` (expected {}: who can move the milestone)",
                    s.as_str(),
                    MovedBy::NAMES.join(" or ")
                ),
            );
        }
        side
    }

    /// `holdout:` — the share of misses held out of the playbook, 0 to 0.5.
    fn holdout_share(&mut self, parent: &MarkedMappingNode, path: &str) -> Option<f64> {
        let share = self.number(parent, "holdout", path, false)?;
        if (0.0..=MAX_HOLDOUT).contains(&share) {
            return Some(share);
        }
        let span = *parent.get_node("holdout").expect("parsed above").span();
        self.problem(
            &span,
            &join(path, "holdout"),
            format!(
                "must be a share from 0 to {MAX_HOLDOUT} (0.1 holds one miss in ten out of the playbook), not {share}"
            ),
        );
        None
    }

    /// `warn_before_days:` (1 to 30, less than `due_days`) and
    /// `warn_champion:` (only with it, and not on a vendor-side milestone:
    /// its champion has nothing to do).
    fn heads_up(
        &mut self,
        m: &MarkedMappingNode,
        path: &str,
        due_days: Option<u32>,
        side: Option<MovedBy>,
    ) -> Option<HeadsUpRule> {
        let days = self.integer_in(m, "warn_before_days", path, false, 1, MAX_WARN_DAYS);
        let champion = self.boolean(m, "warn_champion", path);
        if let Some(span) = m.get_node("warn_champion").map(|n| *n.span()).filter(|_| champion) {
            if days.is_none() && m.get_node("warn_before_days").is_none() {
                self.problem(
                    &span,
                    &join(path, "warn_champion"),
                    "needs warn_before_days: how many days before the due date the heads-up goes",
                );
            }
            if side == Some(MovedBy::Vendor) {
                self.problem(
                    &span,
                    &join(path, "warn_champion"),
                    "a vendor-side milestone is ours to move: the champion has nothing to do",
                );
            }
        }
        let days = days?;
        if let Some(due) = due_days.filter(|due| days >= *due) {
            let span = *m.get_node("warn_before_days").expect("parsed above").span();
            self.problem(
                &span,
                &join(path, "warn_before_days"),
                format!("must be less than due_days ({due}): a heads-up comes before the due date"),
            );
            return None;
        }
        Some(HeadsUpRule {
            days_before: days,
            champion,
        })
    }

    fn playbook(&mut self, node: &Node, path: &str, escalates_to_sponsor: bool, side: MovedBy) -> Option<Playbook> {
        let p = self.mapping(node, path)?;
        self.check_keys(p, PLAYBOOK_KEYS, path);
        if side == MovedBy::Vendor {
            return self.vendor_side_playbook(p, path);
        }
        let stage = |v: &mut Self, key: &str| match p.get_node(key) {
            None => {
                v.problem(
                    p.span(),
                    &join(path, key),
                    format!("missing playbook stage `{key}` (every milestone needs outreach, csm and leadership)"),
                );
                None
            }
            Some(_) => v.string(p, key, path),
        };
        let outreach = stage(self, "outreach");
        let csm = stage(self, "csm");
        let leadership = stage(self, "leadership");
        // The sponsor is the customer's executive: their words are written for
        // them, never the `leadership` note meant for our own VP.
        let sponsor = match p.get_node("sponsor") {
            None if escalates_to_sponsor => {
                self.problem(
                    p.span(),
                    &join(path, "sponsor"),
                    "is required: the map sets escalate_to_exec_sponsor, and the sponsor's email needs words written for the customer's executive (the leadership text is internal)",
                );
                None
            }
            None => None,
            Some(_) => self.string(p, "sponsor", path),
        };
        let mut guides = Vec::new();
        match p.get_node("guides") {
            None => {}
            Some(Node::Sequence(seq)) => {
                if seq.len() > MAX_GUIDES {
                    self.problem(
                        node.span(),
                        &join(path, "guides"),
                        format!("lists {} guides; the limit is {MAX_GUIDES}", seq.len()),
                    );
                }
                for (i, g) in seq.iter().enumerate().take(MAX_GUIDES) {
                    let field = format!("{path}.guides[{i}]");
                    guides.extend(self.guide(g, &field));
                }
            }
            Some(other) => self.problem(other.span(), &join(path, "guides"), "must be a list"),
        }
        if guides.iter().all(|g| g.url.is_none()) {
            self.advise(
                p.span(),
                &join(path, "guides"),
                "none: the day-1 follow-up will offer only the link to book 1:1 help; a guide lets the customer take the step alone",
            );
        }
        Some(Playbook {
            outreach: outreach?,
            csm: csm?,
            leadership: leadership?,
            sponsor: if escalates_to_sponsor { Some(sponsor?) } else { sponsor },
            guides,
        })
    }

    /// A vendor-side milestone's playbook: the owner's (`csm`) and
    /// leadership's words; what would be sent to the customer is refused,
    /// since nothing is.
    fn vendor_side_playbook(&mut self, p: &MarkedMappingNode, path: &str) -> Option<Playbook> {
        for key in ["outreach", "sponsor", "guides"] {
            if let Some(node) = p.get_node(key) {
                self.problem(
                    node.span(),
                    &join(path, key),
                    "is never sent: a vendor-side milestone (moved_by: vendor, the default for a manual one) sends nothing to the customer; remove it, or set moved_by: customer",
                );
            }
        }
        let mut stage = |key: &str| match p.get_node(key) {
            None => {
                self.problem(
                    p.span(),
                    &join(path, key),
                    format!("missing playbook stage `{key}` (a vendor-side milestone needs csm and leadership)"),
                );
                None
            }
            Some(_) => self.string(p, key, path),
        };
        let csm = stage("csm");
        let leadership = stage("leadership");
        Some(Playbook {
            outreach: String::new(),
            csm: csm?,
            leadership: leadership?,
            sponsor: None,
            guides: Vec::new(),
        })
    }

    /// A guide is `{title, url}`: the follow-up email links it, so it needs an https address.
    fn guide(&mut self, node: &Node, field: &str) -> Option<Guide> {
        let Some(g) = node.as_mapping() else {
            self.problem(
                node.span(),
                field,
                "must be a mapping with `title` and `url` (the follow-up email links every guide)",
            );
            return None;
        };
        self.check_keys(g, GUIDE_KEYS, field);
        let title = self.string(g, "title", field);
        let url = self.scalar(g, "url", field, true).and_then(|u| {
            let text = u.as_str().trim();
            match https_url_problem(text) {
                Some(why) => {
                    self.problem(u.span(), &join(field, "url"), why);
                    None
                }
                None => self.bounded_text(u, &join(field, "url")).map(|_| text.to_string()),
            }
        });
        Some(Guide::new(title?, url?))
    }

    fn criterion(
        &mut self,
        node: &Node,
        path: &str,
        events: &BTreeMap<String, BTreeMap<String, PropertyType>>,
    ) -> Option<Criterion> {
        let c = self.mapping(node, path)?;
        let kind_node = self.scalar(c, "kind", path, true)?;
        let kind = kind_node.as_str();
        let fields: &[&str] = match kind {
            "event_count" | "distinct_users" => &["kind", "event", "min", "window_days"],
            "seat_ratio" => &["kind", "event", "min_ratio", "window_days"],
            "metric_threshold" => &["kind", "event", "property", "op", "value"],
            "manual" | "agreed_outcome" => &["kind"],
            other => {
                self.problem(
                    kind_node.span(),
                    &join(path, "kind"),
                    format!(
                        "unknown criterion kind `{other}` (expected one of: {})",
                        CRITERION_KINDS.join(", ")
                    ),
                );
                return None;
            }
        };
        self.check_keys(c, fields, path);
        let event = if kind == "manual" || kind == "agreed_outcome" {
            None
        } else {
            self.string(c, "event", path)
        };
        let window_days = if fields.contains(&"window_days") {
            self.integer_in(c, "window_days", path, false, 1, MAX_WINDOW_DAYS)
        } else {
            None
        };
        let criterion = match kind {
            "event_count" => Criterion::EventCount {
                event: event?,
                min: self.integer_in(c, "min", path, true, 1, MAX_MARKS as u32)?,
                window_days,
            },
            "distinct_users" => Criterion::DistinctUsers {
                event: event?,
                min: self.integer_in(c, "min", path, true, 1, MAX_MARKS as u32)?,
                window_days,
            },
            "seat_ratio" => {
                let ratio = self.number(c, "min_ratio", path, true)?;
                if !(ratio > 0.0 && ratio <= 1.0) {
                    let span = *c.get_node("min_ratio").expect("parsed").span();
                    self.problem(
                        &span,
                        &join(path, "min_ratio"),
                        format!("must be above 0 and at most 1, not {ratio}"),
                    );
                    return None;
                }
                Criterion::SeatRatio {
                    event: event?,
                    min_ratio: ratio,
                    window_days,
                }
            }
            "metric_threshold" => {
                let property = self.scalar(c, "property", path, true);
                let op = self.scalar(c, "op", path, true).and_then(|s| {
                    let op = CompareOp::parse(s.as_str());
                    if op.is_none() {
                        self.problem(
                            s.span(),
                            &join(path, "op"),
                            format!("unknown comparison `{}` (expected >=, >, <=, < or ==)", s.as_str()),
                        );
                    }
                    op
                });
                let value = self.number(c, "value", path, true);
                let event = event?;
                let property = property?;
                if let Some(declared) = events.get(&event) {
                    match declared.get(property.as_str()) {
                        None => self.problem(
                            property.span(),
                            &join(path, "property"),
                            format!("event `{event}` declares no property `{}`", property.as_str()),
                        ),
                        Some(PropertyType::Number) => {}
                        Some(other) => self.problem(
                            property.span(),
                            &join(path, "property"),
                            format!(
                                "property `{}` of `{event}` is declared {other:?}, but a threshold needs a number",
                                property.as_str()
                            ),
                        ),
                    }
                }
                Criterion::MetricThreshold {
                    event,
                    property: property.as_str().to_string(),
                    op: op?,
                    value: value?,
                }
            }
            "agreed_outcome" => Criterion::AgreedOutcome,
            _ => Criterion::Manual,
        };
        Some(criterion)
    }
}

/// Why `text` is not a link a customer's email can carry, if it is not.
fn https_url_problem(text: &str) -> Option<String> {
    let Some(rest) = text.strip_prefix("https://") else {
        return Some(format!("must be an https:// address, not `{text}`"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Some(format!("`{text}` names no host"));
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '\\'))
    {
        return Some(format!("`{text}` holds a space or a character a link cannot"));
    }
    None
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests;
