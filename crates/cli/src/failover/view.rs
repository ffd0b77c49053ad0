//! The tables `meridian failover` prints.

use meridian_server::failover_groups::{ActiveView, GroupReport};

/// One line per group: active datacenter, previous, token, since, failback, manual, pending hooks, datacenters.
pub fn status_table(groups: &[GroupReport]) -> String {
    let header =
        ["GROUP", "ACTIVE", "PREVIOUS", "TOKEN", "SINCE", "FAILBACK", "MANUAL", "PENDING HOOKS", "DATACENTERS"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for g in groups {
        let a = g.active.as_ref();
        let dash = || "-".to_owned();
        rows.push(vec![
            g.name.0.clone(),
            a.map_or_else(dash, |a| a.dc.0.clone()),
            a.and_then(|a| a.previous.as_ref()).map_or_else(dash, |d| d.0.clone()),
            a.map_or_else(dash, |a| a.token.to_string()),
            a.map_or_else(dash, |a| a.since.clone()),
            g.failback.as_str().to_owned(),
            a.map_or_else(dash, |a| if a.manual { "yes" } else { "no" }.to_owned()),
            if g.pending_hooks.is_empty() { dash() } else { g.pending_hooks.join("; ") },
            g.datacenters.iter().map(|d| d.0.as_str()).collect::<Vec<_>>().join(","),
        ]);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a promote or demote did, in one line.
pub fn switched(view: &ActiveView) -> String {
    let from = view.previous.as_ref().map_or("(none)", |d| d.0.as_str());
    format!("{}: {from} -> {} (token {}, term {})", view.group, view.dc, view.token, view.term)
}

#[cfg(test)]
mod tests {
    use meridian_server::failover_groups::Source;
    use meridian_types::{DcName, Failback, GroupName};

    use super::*;

    fn active(dc: &str, previous: Option<&str>, token: i64) -> ActiveView {
        ActiveView {
            group: GroupName::from("db"),
            dc: DcName::from(dc),
            previous: previous.map(DcName::from),
            token,
            term: 3,
            reason: "r".into(),
            since: "2026-12-06T08:00:00Z".into(),
            since_unix_ms: 0,
            manual: true,
        }
    }

    #[test]
    fn the_status_table_lines_up_every_group() {
        let groups = [
            GroupReport {
                name: GroupName::from("db"),
                source: Source::Topology,
                datacenters: vec![DcName::from("dc-a"), DcName::from("dc-b")],
                failback: Failback::Automatic,
                failback_hold_ms: 5000,
                hooks: vec!["webhook http://h:1/x".into()],
                active: Some(active("dc-b", Some("dc-a"), 42)),
                pending_hooks: vec!["webhook http://h:1/x".into()],
            },
            GroupReport {
                name: GroupName::from("billing"),
                source: Source::Api,
                datacenters: vec![DcName::from("dc-b")],
                failback: Failback::Manual,
                failback_hold_ms: 5000,
                hooks: Vec::new(),
                active: None,
                pending_hooks: Vec::new(),
            },
        ];
        let table = status_table(&groups);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("GROUP    ACTIVE  PREVIOUS  TOKEN  SINCE"), "{table}");
        assert!(
            lines[1].starts_with("db       dc-b    dc-a      42     2026-12-06T08:00:00Z  automatic  yes"),
            "{table}"
        );
        assert!(lines[1].contains("webhook http://h:1/x  dc-a,dc-b"), "{table}");
        assert!(lines[2].starts_with("billing  -       -         -      -"), "{table}");
        assert!(lines[2].ends_with("manual     -       -                     dc-b"), "{table}");
    }

    #[test]
    fn a_switch_is_one_line() {
        assert_eq!(switched(&active("dc-c", Some("dc-a"), 57)), "db: dc-a -> dc-c (token 57, term 3)");
        assert_eq!(switched(&active("dc-a", None, 5)), "db: (none) -> dc-a (token 5, term 3)");
    }
}
