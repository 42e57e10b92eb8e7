//! The records `issueloop state export` writes and `state import` reads (the ledger, the journal
//! and named values as JSON lines, one record a line), and the pure rule of an import: what is
//! new, what the store already holds, and what conflicts with it.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::journal::RunId;
use crate::ledger::{EntryState, LedgerEntry, LedgerError, to_millis};
use crate::money::Usd;
use crate::owner::ProcessOwner;
use crate::sqlite::redact_json;

/// The record format this version writes, and the newest it reads (`version` of every record).
pub const TRANSFER_VERSION: u32 = 1;

/// One line of an export.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A run's ledger entry, whatever its state: an unsettled reservation keeps its expiry and
    /// its owner, so the target charges it in full when it expires.
    Entry(EntryRecord),
    /// One journal event.
    Event(EventRecord),
    /// A named value (e.g. the forge's poll state).
    Value(ValueRecord),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryRecord {
    pub version: u32,
    pub run_id: RunId,
    pub repo: String,
    pub issue: u64,
    /// The UTC day the reservation is charged to.
    pub day: Date,
    pub state: EntryState,
    pub reserved_micros: i64,
    /// What the day is charged: set once settled or expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_micros: Option<i64>,
    #[serde(default)]
    pub overspent: bool,
    pub reserved_at: Timestamp,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    /// The process that reserved, where the store knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerRecord {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRecord {
    pub version: u32,
    pub run_id: RunId,
    pub at: Timestamp,
    #[serde(rename = "type")]
    pub kind: String,
    pub payload: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueRecord {
    pub version: u32,
    pub key: String,
    pub value: String,
}

impl EntryRecord {
    pub fn new(entry: &LedgerEntry, owner: Option<OwnerRecord>) -> EntryRecord {
        EntryRecord {
            version: TRANSFER_VERSION,
            run_id: entry.run_id.clone(),
            repo: entry.repo.clone(),
            issue: entry.issue,
            day: entry.day,
            state: entry.state,
            reserved_micros: entry.reserved.micros(),
            cost_micros: entry.cost.map(Usd::micros),
            overspent: entry.overspent,
            reserved_at: entry.reserved_at,
            expires_at: entry.expires_at,
            closed_at: entry.closed_at,
            owner,
        }
    }

    /// The entry as the ledger reads it (the owner is not part of it).
    pub fn entry(&self) -> LedgerEntry {
        LedgerEntry {
            run_id: self.run_id.clone(),
            repo: self.repo.clone(),
            issue: self.issue,
            day: self.day,
            state: self.state,
            reserved: Usd::from_micros(self.reserved_micros),
            cost: self.cost_micros.map(Usd::from_micros),
            overspent: self.overspent,
            reserved_at: self.reserved_at,
            expires_at: self.expires_at,
            closed_at: self.closed_at,
        }
    }

    /// Why the entry cannot be stored as it is, if it cannot: every store keeps these rules.
    fn check(&self) -> Result<(), String> {
        if self.reserved_micros <= 0 {
            return Err("`reserved_micros` must be positive".into());
        }
        let closed = self.state != EntryState::Reserved;
        if closed != self.closed_at.is_some() {
            return Err(format!(
                "a {} entry {} `closed_at`",
                self.state,
                if closed { "needs" } else { "has no" }
            ));
        }
        let charged = matches!(self.state, EntryState::Settled | EntryState::Expired);
        let overspent = self.state == EntryState::Settled
            && self.cost_micros.is_some_and(|c| c > self.reserved_micros);
        if self.overspent != overspent {
            return Err(format!(
                "`overspent` is {}, but the cost says {overspent}",
                self.overspent
            ));
        }
        match self.cost_micros {
            Some(c) if c < 0 => Err("`cost_micros` cannot be negative".into()),
            Some(_) if !charged => Err(format!("a {} entry has no cost", self.state)),
            None if charged => Err(format!("a {} entry needs `cost_micros`", self.state)),
            _ => Ok(()),
        }
    }
}

impl OwnerRecord {
    pub fn from_owner(owner: &ProcessOwner) -> OwnerRecord {
        OwnerRecord {
            host: owner.host.clone(),
            pid: Some(owner.pid),
            start: Some(owner.start.clone()),
        }
    }
}

impl Record {
    /// The record as one line: compact JSON and a newline.
    pub fn render(&self) -> String {
        let mut text = serde_json::to_string(self).unwrap_or_default();
        text.push('\n');
        text
    }

    fn version(&self) -> u32 {
        match self {
            Record::Entry(r) => r.version,
            Record::Event(r) => r.version,
            Record::Value(r) => r.version,
        }
    }

    fn run_id(&self) -> Option<&RunId> {
        match self {
            Record::Entry(r) => Some(&r.run_id),
            Record::Event(r) => Some(&r.run_id),
            Record::Value(_) => None,
        }
    }
}

/// Parse an export. Every line must be a record this version reads: a line of a newer format, or
/// one that breaks the ledger's rules, is an error naming it, and nothing is imported.
pub fn parse_records(text: &str) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |why: String| format!("line {}: {why}", i + 1);
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| at(format!("not JSON: {e}")))?;
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        match version {
            Some(v) if v <= u64::from(TRANSFER_VERSION) && v > 0 => {}
            Some(v) => {
                return Err(at(format!(
                    "format version {v}; this issueloop reads version {TRANSFER_VERSION}: \
                     import with the issueloop that exported it, or a newer one"
                )));
            }
            None => return Err(at("no `version`: not an issueloop state export".into())),
        }
        let record: Record = serde_json::from_value(value).map_err(|e| at(e.to_string()))?;
        if let Some(run) = record.run_id() {
            RunId::parse(run.as_str()).map_err(at)?;
        }
        if let Record::Entry(entry) = &record {
            entry
                .check()
                .map_err(|why| at(format!("run `{}`: {why}", entry.run_id)))?;
        }
        debug_assert!(record.version() <= TRANSFER_VERSION);
        out.push(record);
    }
    Ok(out)
}

/// What an import adds, and what it leaves as it was.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportPlan {
    pub entries: Vec<EntryRecord>,
    pub events: Vec<EventRecord>,
    pub values: Vec<ValueRecord>,
    pub summary: ImportSummary,
}

/// Counts of an import, for a person and for `--json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Ledger entries added.
    pub entries_added: usize,
    /// Ledger entries the store already held, identical.
    pub entries_present: usize,
    pub events_added: usize,
    pub events_present: usize,
    pub values_added: usize,
    /// Named values the store already held (kept, whether equal or not: they are this store's
    /// own progress, e.g. the forge's poll state).
    pub values_kept: usize,
}

impl ImportSummary {
    /// Whether the import changed nothing.
    pub fn unchanged(&self) -> bool {
        self.entries_added == 0 && self.events_added == 0 && self.values_added == 0
    }
}

/// The events of one run as a comparable sequence.
type RunEvents = Vec<(Timestamp, String, serde_json::Value)>;

/// Decide an import of `incoming` into a store that holds `current` (its own export). Pure.
///
/// - An entry whose run the store does not know is added as it is (its state, cost, expiry and
///   owner kept: an unsettled reservation stays unsettled, to be settled or charged in full at
///   its expiry). An identical one is left alone. Any other: a conflict.
/// - A run's events are added when the store has none for that run, left alone when it has the
///   same ones, a conflict otherwise.
/// - A named value is added when the store has none under its key; the store's own is kept.
///
/// Any conflict refuses the whole import ([`LedgerError::ImportConflict`]): nothing is written.
/// Importing the same records twice adds nothing the second time.
pub fn plan_import(current: &[Record], incoming: &[Record]) -> Result<ImportPlan, LedgerError> {
    let mut have_entries: BTreeMap<&RunId, LedgerEntry> = BTreeMap::new();
    let mut have_events: BTreeMap<&RunId, RunEvents> = BTreeMap::new();
    let mut have_values: BTreeSet<&str> = BTreeSet::new();
    for record in current {
        match record {
            Record::Entry(e) => {
                have_entries.insert(&e.run_id, e.entry());
            }
            Record::Event(e) => have_events.entry(&e.run_id).or_default().push((
                e.at,
                e.kind.clone(),
                e.payload.clone(),
            )),
            Record::Value(v) => {
                have_values.insert(&v.key);
            }
        }
    }
    let mut plan = ImportPlan::default();
    let mut conflicts = Vec::new();
    let mut new_events: BTreeMap<RunId, Vec<EventRecord>> = BTreeMap::new();
    let mut seen_entries: BTreeSet<RunId> = BTreeSet::new();
    let mut seen_values: BTreeSet<&str> = BTreeSet::new();
    for record in incoming {
        match record {
            Record::Entry(e) => {
                // Every store keeps times to the millisecond: compare and store what it keeps.
                let e = EntryRecord {
                    reserved_at: to_millis(e.reserved_at),
                    expires_at: to_millis(e.expires_at),
                    closed_at: e.closed_at.map(to_millis),
                    ..e.clone()
                };
                if !seen_entries.insert(e.run_id.clone()) {
                    conflicts.push(format!("run `{}`: two entries in the file", e.run_id));
                    continue;
                }
                match have_entries.get(&e.run_id) {
                    None => {
                        plan.summary.entries_added += 1;
                        plan.entries.push(e);
                    }
                    Some(have) if *have == e.entry() => plan.summary.entries_present += 1,
                    Some(have) => conflicts.push(format!(
                        "run `{}`: the store holds it {} (reserved {}, cost {}), the file {} \
                         (reserved {}, cost {})",
                        e.run_id,
                        have.state,
                        have.reserved,
                        shown_cost(have.cost),
                        e.state,
                        Usd::from_micros(e.reserved_micros),
                        shown_cost(e.cost_micros.map(Usd::from_micros)),
                    )),
                }
            }
            Record::Event(e) => {
                // Stored payloads are redacted: compare and store the redacted form.
                let mut e = e.clone();
                e.at = to_millis(e.at);
                redact_json(&mut e.payload);
                new_events.entry(e.run_id.clone()).or_default().push(e);
            }
            Record::Value(v) => {
                if !seen_values.insert(&v.key) || have_values.contains(v.key.as_str()) {
                    plan.summary.values_kept += 1;
                } else {
                    plan.summary.values_added += 1;
                    plan.values.push(v.clone());
                }
            }
        }
    }
    for (run, events) in new_events {
        let theirs: RunEvents = events
            .iter()
            .map(|e| (e.at, e.kind.clone(), e.payload.clone()))
            .collect();
        match have_events.get(&run) {
            None => {
                plan.summary.events_added += events.len();
                plan.events.extend(events);
            }
            Some(ours) if *ours == theirs => plan.summary.events_present += events.len(),
            Some(ours) => conflicts.push(format!(
                "run `{run}`: the store's journal holds {} event(s) for it, the file {} other(s)",
                ours.len(),
                theirs.len()
            )),
        }
    }
    if conflicts.is_empty() {
        Ok(plan)
    } else {
        Err(LedgerError::ImportConflict { conflicts })
    }
}

fn shown_cost(cost: Option<Usd>) -> String {
    cost.map_or_else(|| "none".into(), |c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn entry(run: &str, state: EntryState, cost: Option<i64>) -> EntryRecord {
        let closed = state != EntryState::Reserved;
        EntryRecord {
            version: 1,
            run_id: RunId::parse(run).unwrap(),
            repo: "acme/app".into(),
            issue: 3,
            day: "2026-12-05".parse().unwrap(),
            state,
            reserved_micros: 500_000,
            cost_micros: cost,
            overspent: false,
            reserved_at: ts("2026-12-05T10:00:00.123Z"),
            expires_at: ts("2026-12-05T11:00:00.123Z"),
            closed_at: closed.then(|| ts("2026-12-05T10:30:00Z")),
            owner: Some(OwnerRecord {
                host: "ci-1".into(),
                pid: Some(42),
                start: Some("1234".into()),
            }),
        }
    }

    fn event(run: &str, kind: &str) -> EventRecord {
        EventRecord {
            version: 1,
            run_id: RunId::parse(run).unwrap(),
            at: ts("2026-12-05T10:00:01Z"),
            kind: kind.into(),
            payload: serde_json::json!({"repo": "acme/app", "issue": 3}),
        }
    }

    fn value(key: &str, v: &str) -> ValueRecord {
        ValueRecord {
            version: 1,
            key: key.into(),
            value: v.into(),
        }
    }

    #[test]
    fn records_read_as_documented() {
        let text = r#"{"kind":"entry","version":1,"run_id":"r-1","repo":"acme/app","issue":3,"day":"2026-12-05","state":"reserved","reserved_micros":500000,"reserved_at":"2026-12-05T10:00:00Z","expires_at":"2026-12-05T11:00:00Z","owner":{"host":"ci-1","pid":42,"start":"1234"}}
{"kind":"event","version":1,"run_id":"r-1","at":"2026-12-05T10:00:01Z","type":"run_started","payload":{"repo":"acme/app","issue":3}}

{"kind":"value","version":1,"key":"poll","value":"etag"}
"#;
        let records = parse_records(text).unwrap();
        assert_eq!(records.len(), 3);
        let Record::Entry(e) = &records[0] else {
            panic!("{records:?}")
        };
        assert_eq!(
            (e.state, e.cost_micros, e.closed_at),
            (EntryState::Reserved, None, None)
        );
        let rendered: String = records.iter().map(Record::render).collect();
        assert_eq!(parse_records(&rendered).unwrap(), records);
    }

    #[test]
    fn lines_that_cannot_be_imported_say_which_and_why() {
        let good = entry("r", EntryState::Reserved, None);
        let line = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = serde_json::to_value(Record::Entry(good.clone())).unwrap();
            f(&mut v);
            format!("{v}\n")
        };
        let cases: Vec<(String, &str)> = vec![
            ("not json\n".into(), "not JSON"),
            (line(&|v| v["version"] = 2.into()), "format version 2"),
            (
                line(&|v| {
                    v.as_object_mut().unwrap().remove("version");
                }),
                "no `version`",
            ),
            (line(&|v| v["kind"] = "lease".into()), "unknown variant"),
            (line(&|v| v["extra"] = 1.into()), "unknown field"),
            (line(&|v| v["run_id"] = "../x".into()), "is not a run id"),
            (
                line(&|v| v["reserved_micros"] = 0.into()),
                "must be positive",
            ),
            (
                line(&|v| v["state"] = "settled".into()),
                "needs `closed_at`",
            ),
            (
                line(&|v| v["overspent"] = true.into()),
                "`overspent` is true",
            ),
            (
                line(&|v| v["cost_micros"] = 1.into()),
                "a reserved entry has no cost",
            ),
        ];
        for (text, words) in cases {
            let err = parse_records(&format!("\n{text}")).unwrap_err();
            assert!(err.starts_with("line 2: "), "{err}");
            assert!(err.contains(words), "{words}: {err}");
        }
    }

    #[test]
    fn import_table() {
        let reserved = entry("a", EntryState::Reserved, None);
        let settled = entry("a", EntryState::Settled, Some(400_000));
        let other = entry("b", EntryState::Expired, Some(500_000));
        let e = |r: &EntryRecord| Record::Entry(r.clone());
        let ev = |run: &str, kind: &str| Record::Event(event(run, kind));
        let v = |k: &str, val: &str| Record::Value(value(k, val));
        // (current, incoming, Ok((entries, events, values added; entries, events present;
        // values kept)) or Err(conflicts))
        type Want = Result<[usize; 6], usize>;
        let cases: Vec<(Vec<Record>, Vec<Record>, Want)> = vec![
            (
                vec![],
                vec![e(&reserved), ev("a", "run_started"), v("k", "1")],
                Ok([1, 1, 1, 0, 0, 0]),
            ),
            // The same again: nothing added.
            (
                vec![e(&reserved), ev("a", "run_started"), v("k", "1")],
                vec![e(&reserved), ev("a", "run_started"), v("k", "1")],
                Ok([0, 0, 0, 1, 1, 1]),
            ),
            // The store's own value is kept, whatever the file says.
            (vec![v("k", "2")], vec![v("k", "1")], Ok([0, 0, 0, 0, 0, 1])),
            // Other runs live beside the imported ones.
            (
                vec![e(&other), ev("b", "run_started")],
                vec![e(&reserved), ev("a", "run_started")],
                Ok([1, 1, 0, 0, 0, 0]),
            ),
            // The same run with other data: refused.
            (vec![e(&settled)], vec![e(&reserved)], Err(1)),
            (
                vec![ev("a", "run_started")],
                vec![ev("a", "run_started"), ev("a", "run_finished")],
                Err(1),
            ),
            // Twice in the file, differently: refused.
            (vec![], vec![e(&reserved), e(&settled)], Err(1)),
            // Every conflict is listed, not only the first.
            (
                vec![e(&settled), ev("b", "note")],
                vec![e(&reserved), ev("b", "run_started")],
                Err(2),
            ),
        ];
        for (i, (current, incoming, want)) in cases.into_iter().enumerate() {
            match (plan_import(&current, &incoming), want) {
                (Ok(plan), Ok(counts)) => {
                    let s = &plan.summary;
                    assert_eq!(
                        [
                            s.entries_added,
                            s.events_added,
                            s.values_added,
                            s.entries_present,
                            s.events_present,
                            s.values_kept
                        ],
                        counts,
                        "case {i}"
                    );
                    assert_eq!(plan.entries.len(), counts[0], "case {i}");
                    assert_eq!(plan.events.len(), counts[1], "case {i}");
                    assert_eq!(plan.values.len(), counts[2], "case {i}");
                }
                (Err(LedgerError::ImportConflict { conflicts }), Err(n)) => {
                    assert_eq!(conflicts.len(), n, "case {i}: {conflicts:?}");
                }
                (got, want) => panic!("case {i}: {got:?}, expected {want:?}"),
            }
        }
        let err = plan_import(&[e(&settled)], &[e(&reserved)]).unwrap_err();
        assert!(
            err.to_string().contains(
                "run `a`: the store holds it settled (reserved $0.50, cost $0.40), the file \
                 reserved (reserved $0.50, cost none)"
            ),
            "{err}"
        );
    }

    fn arb_time() -> impl Strategy<Value = Timestamp> {
        // 2000-01-01 .. 2100-01-01, at any nanosecond: the format keeps what it is given.
        (946_684_800i64..4_102_444_800, 0i32..1_000_000_000)
            .prop_map(|(s, n)| Timestamp::new(s, n).unwrap())
    }

    fn arb_text() -> impl Strategy<Value = String> {
        // Any text, quotes, backslashes, control characters and newlines included.
        proptest::collection::vec(any::<char>(), 0..20).prop_map(|c| c.into_iter().collect())
    }

    fn arb_run() -> impl Strategy<Value = RunId> {
        "[A-Za-z0-9._-]{1,40}".prop_map(|s| RunId::parse(&s).unwrap())
    }

    fn arb_entry() -> impl Strategy<Value = EntryRecord> {
        let owner = proptest::option::of((
            arb_text(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(arb_text()),
        ));
        (
            (arb_run(), arb_text(), any::<u64>(), 0usize..4),
            (1i64..i64::MAX, any::<i64>().prop_map(i64::abs)),
            (arb_time(), arb_time(), arb_time()),
            owner,
        )
            .prop_map(
                |((run_id, repo, issue, state), (reserved, cost), times, owner)| {
                    let state = EntryState::ALL[state];
                    let closed = state != EntryState::Reserved;
                    let charged = matches!(state, EntryState::Settled | EntryState::Expired);
                    EntryRecord {
                        version: TRANSFER_VERSION,
                        run_id,
                        repo,
                        issue,
                        day: crate::utc_day(times.0),
                        state,
                        reserved_micros: reserved,
                        cost_micros: charged.then_some(cost),
                        overspent: state == EntryState::Settled && cost > reserved,
                        reserved_at: times.0,
                        expires_at: times.1,
                        closed_at: closed.then_some(times.2),
                        owner: owner.map(|(host, pid, start)| OwnerRecord { host, pid, start }),
                    }
                },
            )
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            arb_text().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(arb_text(), inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        prop_oneof![
            arb_entry().prop_map(Record::Entry),
            (arb_run(), arb_time(), arb_text(), arb_json()).prop_map(
                |(run_id, at, kind, payload)| {
                    Record::Event(EventRecord {
                        version: TRANSFER_VERSION,
                        run_id,
                        at,
                        kind,
                        payload,
                    })
                }
            ),
            (arb_text(), arb_text()).prop_map(|(key, value)| Record::Value(ValueRecord {
                version: TRANSFER_VERSION,
                key,
                value,
            })),
        ]
    }

    proptest! {
        /// Whatever a store holds, its export reads back as exactly the same records, one line
        /// each; and importing an export into a store that already holds it adds nothing.
        #[test]
        fn records_round_trip_through_their_lines(
            records in proptest::collection::vec(arb_record(), 0..12)
        ) {
            let text: String = records.iter().map(Record::render).collect();
            prop_assert_eq!(text.lines().count(), records.len());
            let back = parse_records(&text).map_err(TestCaseError::fail)?;
            prop_assert_eq!(&back, &records);
            // Records with distinct runs and keys: the second import changes nothing.
            let mut runs = BTreeSet::new();
            let mut keys = BTreeSet::new();
            let distinct: Vec<Record> = records
                .into_iter()
                .filter(|r| match r {
                    Record::Entry(e) => runs.insert(e.run_id.clone()),
                    Record::Value(v) => keys.insert(v.key.clone()),
                    Record::Event(_) => true,
                })
                .collect();
            if let Ok(first) = plan_import(&[], &distinct) {
                let stored: Vec<Record> = first
                    .entries
                    .into_iter()
                    .map(Record::Entry)
                    .chain(first.events.into_iter().map(Record::Event))
                    .chain(first.values.into_iter().map(Record::Value))
                    .collect();
                let again = plan_import(&stored, &distinct).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(again.summary.unchanged(), "{:?}", again.summary);
            }
        }
    }
}
