//! The status table: one row per member from its own `/status` (or "unreachable"), lag taken from the leader's
//! view, then the leader, why it is there, and DC health. Pure formatting, so it is unit-tested.

use std::fmt::Write;

use meridian_server::admin::StatusReport;

/// One member as the playground sees it.
pub struct Row<'a> {
    /// Member name from the topology.
    pub name: &'a str,
    /// Datacenter from the topology.
    pub dc: &'a str,
    /// Its `/status`, when it answered.
    pub status: Option<&'a StatusReport>,
}

/// The leader's own report, when the leader answered.
pub fn leader_report<'a>(rows: &[Row<'a>]) -> Option<&'a StatusReport> {
    rows.iter().filter_map(|r| r.status).find(|s| s.is_leader)
}

/// The leader's name when every member answered, all agree on it, the leader's membership lists them all, and
/// each has received the membership itself (knows its own role).
pub fn settled_leader(rows: &[Row<'_>]) -> Option<String> {
    let leader = leader_report(rows)?;
    let all_agree = rows
        .iter()
        .all(|r| r.status.is_some_and(|s| s.role != "none" && s.leader.as_ref().is_some_and(|l| l.id == leader.id)));
    let all_members = rows.iter().all(|r| leader.members.iter().any(|m| m.name == r.name));
    (all_agree && all_members).then(|| leader.name.clone())
}

/// Renders the table.
pub fn render(rows: &[Row<'_>]) -> String {
    let leader = leader_report(rows);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:<6} {:<8} {:>5} {:>9} {:>9} {:>5} {:>8}  LEADER",
        "MEMBER", "DC", "ROLE", "TERM", "APPLIED", "REVISION", "LAG", "DB MiB"
    );
    for r in rows {
        match r.status {
            Some(s) => {
                let lag = leader
                    .and_then(|l| l.members.iter().find(|m| m.name == r.name))
                    .and_then(|m| m.lag)
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "-".into());
                let mark = if s.is_leader { "*" } else { "" };
                let db = format!("{:.1}", s.db_size as f64 / f64::from(1 << 20));
                let _ = writeln!(
                    out,
                    "{:<8} {:<6} {:<8} {:>5} {:>9} {:>9} {:>5} {:>8}  {}",
                    r.name, r.dc, s.role, s.term, s.applied, s.revision, lag, db, mark
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "{:<8} {:<6} {:<8} {:>5} {:>9} {:>9} {:>5} {:>8}",
                    r.name, r.dc, "down", "-", "-", "-", "-", "-"
                );
            }
        }
    }
    match leader {
        Some(l) => {
            let _ = writeln!(out, "leader: {} ({}), term {}: {}", l.name, l.dc, l.term, l.leader_reason);
        }
        None => {
            let _ = writeln!(out, "leader: none yet");
        }
    }
    // Verdicts are replicated: any member's copy will do, the leader's first.
    let verdicts = leader.or_else(|| rows.iter().find_map(|r| r.status)).map(|s| &s.verdicts).filter(|v| !v.is_empty());
    match verdicts {
        Some(v) => {
            let list: Vec<String> = v.iter().map(|(dc, v)| format!("{dc} {}", v.state)).collect();
            let _ = writeln!(out, "verdicts: {}", list.join(", "));
        }
        None => {
            let _ = writeln!(out, "verdicts: none written yet");
        }
    }
    // So are the failover groups' active records.
    let groups = leader.or_else(|| rows.iter().find_map(|r| r.status)).map(|s| &s.groups).filter(|g| !g.is_empty());
    if let Some(groups) = groups {
        let list: Vec<String> = groups.iter().map(|(g, a)| format!("{g} in {} (token {})", a.dc, a.token)).collect();
        let _ = writeln!(out, "failover groups: {}", list.join(", "));
    }
    // Alarms are replicated: any member's list will do, the leader's first.
    let alarms = leader.or_else(|| rows.iter().find_map(|r| r.status)).map(|s| &s.alarms);
    match alarms {
        Some(a) if !a.is_empty() => {
            let _ = writeln!(out, "alarms: {} (writes refused; free space, then `etcdctl alarm disarm`)", a.join(", "));
        }
        _ => {
            let _ = writeln!(out, "alarms: none");
        }
    }
    // Users and roles are replicated too; members that disagree on their checksum would be a bug worth seeing.
    if let Some(s) = leader.or_else(|| rows.iter().find_map(|r| r.status)) {
        let agree = rows.iter().filter_map(|r| r.status).all(|r| r.auth.hash == s.auth.hash);
        let state = if s.auth.enabled { "on" } else { "off" };
        let differ = if agree { "" } else { " (members differ!)" };
        let _ = writeln!(out, "auth: {state}, revision {}{differ}", s.auth.revision);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use meridian_server::admin::{AuthSummary, LeaderInfo, MemberStatus, VerdictSummary};

    use super::*;

    fn report(name: &str, dc: &str, leader: Option<(&str, &str)>, is_leader: bool) -> StatusReport {
        StatusReport {
            id: format!("id-{name}"),
            name: name.into(),
            dc: dc.into(),
            zone: "z".into(),
            role: "voter".into(),
            is_leader,
            leader: leader.map(|(n, d)| LeaderInfo { id: format!("id-{n}"), name: n.into(), dc: d.into() }),
            leader_reason: "dc-a is preferred".into(),
            term: 4,
            last_log_index: 12,
            committed: 12,
            applied: 11,
            revision: 7,
            watchers: 0,
            members: Vec::new(),
            verdicts: BTreeMap::new(),
            groups: BTreeMap::new(),
            reachability: Vec::new(),
            db_size: 3 << 20,
            free_disk: Some(1 << 30),
            alarms: Vec::new(),
            auth: AuthSummary { enabled: false, revision: 1, hash: 0 },
            certificates: Vec::new(),
            insecure_allow_remote: false,
        }
    }

    fn member(name: &str, lag: Option<u64>) -> MemberStatus {
        MemberStatus {
            id: format!("id-{name}"),
            name: name.into(),
            dc: "d".into(),
            zone: "z".into(),
            role: "voter".into(),
            peer_url: String::new(),
            client_url: String::new(),
            matched: lag.map(|l| 12 - l),
            lag,
        }
    }

    #[test]
    fn table_marks_the_leader_shows_lag_from_its_view_and_down_members() {
        let mut a1 = report("a1", "dc-a", Some(("a1", "dc-a")), true);
        a1.members = vec![member("a1", Some(0)), member("b1", Some(3))];
        a1.groups.insert("db".into(), meridian_server::admin::GroupSummary { dc: "dc-a".into(), token: 12 });
        a1.verdicts.insert(
            "dc-a".into(),
            VerdictSummary { state: "up".into(), since: "2026-12-06T08:00:00Z".into(), term: 4 },
        );
        let b1 = report("b1", "dc-b", Some(("a1", "dc-a")), false);
        let rows = [
            Row { name: "a1", dc: "dc-a", status: Some(&a1) },
            Row { name: "b1", dc: "dc-b", status: Some(&b1) },
            Row { name: "c1", dc: "dc-c", status: None },
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("a1") && lines[1].ends_with('*'), "{text}");
        assert!(lines[2].starts_with("b1") && lines[2].contains(" 3 ") && !lines[2].ends_with('*'), "{text}");
        assert!(lines[3].starts_with("c1") && lines[3].contains("down"), "{text}");
        assert!(text.contains("leader: a1 (dc-a), term 4: dc-a is preferred"), "{text}");
        assert!(text.contains("verdicts: dc-a up"), "{text}");
        assert!(text.contains("failover groups: db in dc-a (token 12)"), "{text}");
        assert!(lines[1].contains(" 3.0 "), "the kv store's size in MiB: {text}");
        assert!(text.contains("alarms: none"), "{text}");
        let mut full = a1.clone();
        full.alarms = vec!["NOSPACE (a1)".into()];
        let text = render(&[Row { name: "a1", dc: "dc-a", status: Some(&full) }]);
        assert!(text.contains("alarms: NOSPACE (a1) (writes refused"), "{text}");
        assert!(text.contains("auth: off, revision 1\n"), "{text}");
        full.auth.enabled = true;
        let text = render(&[Row { name: "a1", dc: "dc-a", status: Some(&full) }]);
        assert!(text.contains("auth: on, revision 1\n"), "{text}");
        assert_eq!(settled_leader(&rows), None, "c1 did not answer");
    }

    #[test]
    fn leader_is_settled_only_when_everyone_agrees_and_is_a_member() {
        let mut a1 = report("a1", "dc-a", Some(("a1", "dc-a")), true);
        a1.members = vec![member("a1", Some(0)), member("b1", Some(0))];
        let b1 = report("b1", "dc-b", Some(("a1", "dc-a")), false);
        let rows =
            [Row { name: "a1", dc: "dc-a", status: Some(&a1) }, Row { name: "b1", dc: "dc-b", status: Some(&b1) }];
        assert_eq!(settled_leader(&rows).as_deref(), Some("a1"));

        let b1_other = report("b1", "dc-b", Some(("b1", "dc-b")), false);
        let rows = [
            Row { name: "a1", dc: "dc-a", status: Some(&a1) },
            Row { name: "b1", dc: "dc-b", status: Some(&b1_other) },
        ];
        assert_eq!(settled_leader(&rows), None, "b1 believes in another leader");

        let mut b1_joining = report("b1", "dc-b", Some(("a1", "dc-a")), false);
        b1_joining.role = "none".into();
        let rows = [
            Row { name: "a1", dc: "dc-a", status: Some(&a1) },
            Row { name: "b1", dc: "dc-b", status: Some(&b1_joining) },
        ];
        assert_eq!(settled_leader(&rows), None, "b1 has not received the membership yet");

        a1.members.pop();
        let rows =
            [Row { name: "a1", dc: "dc-a", status: Some(&a1) }, Row { name: "b1", dc: "dc-b", status: Some(&b1) }];
        assert_eq!(settled_leader(&rows), None, "b1 is not in the leader's membership yet");
        let text = render(&[Row { name: "x", dc: "d", status: None }]);
        assert!(text.contains("leader: none yet") && text.contains("verdicts: none written yet"), "{text}");
    }
}
