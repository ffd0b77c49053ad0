//! What the members outside a datacenter see of it at one instant. The rule that keeps a cut-off minority
//! from declaring the majority dead: `down` needs every fresh reporter outside the datacenter to reach none
//! of its members, and a majority of the voters outside it to have heard nothing from any of them for the
//! whole detection window. A datacenter some datacenters reach and others do not is `partitioned`: a cut link
//! is not a dead datacenter.

use std::collections::BTreeMap;

use meridian_types::{DcName, NodeId};

use crate::record::{DcState, Evidence};
use crate::report::ReceivedReport;

/// A member as the verdicts need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// Its id.
    pub id: NodeId,
    /// Its name, used in evidence.
    pub name: String,
    /// Its datacenter.
    pub dc: DcName,
    /// Whether it votes (only voters confirm `down`).
    pub voter: bool,
}

/// How many voters outside a datacenter must confirm it `down`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quorum {
    /// A majority of the voters outside it: the rule.
    MajorityOutside,
    /// The leader's own view alone: a minority's view. Exists only so the simulation can plant this bug and see
    /// its checker catch it (the driver then passes only the leader's report).
    LeaderAlone,
}

/// Verdict tunables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerdictConfig {
    /// How long a datacenter must have been silent to a majority outside it before it is `down` (default two
    /// election timeouts).
    pub detection_window_ms: u64,
    /// How long a datacenter must look `up` again before a verdict says so (default the failback hold).
    pub stable_window_ms: u64,
    /// Reports older than this are ignored (the reporter may be the one cut off).
    pub stale_report_ms: u64,
    /// Who confirms `down`.
    pub quorum: Quorum,
}

impl VerdictConfig {
    /// The defaults for a timing: the detection window is two election timeouts, reports go stale after one,
    /// and `up` must hold for the failback hold.
    pub fn for_timing(election_ms: u64, failback_hold_ms: u64) -> VerdictConfig {
        VerdictConfig {
            detection_window_ms: 2 * election_ms,
            stable_window_ms: failback_hold_ms,
            stale_report_ms: election_ms,
            quorum: Quorum::MajorityOutside,
        }
    }
}

/// The state a datacenter is seen in now, with what each reporter outside it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    /// The state.
    pub state: DcState,
    /// One entry per fresh reporter outside the datacenter.
    pub evidence: Vec<Evidence>,
}

/// One fresh reporter's view of one datacenter.
struct View<'a> {
    reporter: &'a MemberInfo,
    reached: Vec<&'a MemberInfo>,
    unreachable: Vec<&'a MemberInfo>,
    /// Whether it has heard nothing from any member of the datacenter for the detection window.
    silent_for_window: bool,
    age_ms: u64,
}

/// Assesses every datacenter of `members` from `reports` at `now_ms`. A datacenter no fresh reporter
/// outside it reports on gets no assessment (nothing is known, so nothing may change).
pub fn assess(
    members: &[MemberInfo],
    reports: &BTreeMap<NodeId, ReceivedReport>,
    now_ms: u64,
    config: &VerdictConfig,
) -> BTreeMap<DcName, Assessment> {
    let mut dcs: BTreeMap<&DcName, Vec<&MemberInfo>> = BTreeMap::new();
    for m in members {
        dcs.entry(&m.dc).or_default().push(m);
    }
    dcs.iter()
        .filter_map(|(dc, inside)| {
            let views = views_of(dc, inside, members, reports, now_ms, config);
            (!views.is_empty()).then(|| ((*dc).clone(), judge(dc, members, &views, config)))
        })
        .collect()
}

fn views_of<'a>(
    dc: &DcName,
    inside: &[&'a MemberInfo],
    members: &'a [MemberInfo],
    reports: &BTreeMap<NodeId, ReceivedReport>,
    now_ms: u64,
    config: &VerdictConfig,
) -> Vec<View<'a>> {
    members
        .iter()
        .filter(|r| &r.dc != dc)
        .filter_map(|reporter| {
            let report = reports.get(&reporter.id).filter(|r| r.age_ms(now_ms) <= config.stale_report_ms)?;
            let mut view = View {
                reporter,
                reached: Vec::new(),
                unreachable: Vec::new(),
                silent_for_window: true,
                age_ms: report.age_ms(now_ms),
            };
            for m in inside {
                match report.seen(m.id, now_ms) {
                    Some(seen) if seen.reachable => view.reached.push(m),
                    Some(seen) => {
                        view.silent_for_window &= seen.silent_ms >= config.detection_window_ms;
                        view.unreachable.push(m);
                    }
                    // A member the reporter does not probe yet: nothing known, and no confirmation of silence.
                    None => view.silent_for_window = false,
                }
            }
            view.silent_for_window &= view.reached.is_empty();
            Some(view)
        })
        .collect()
}

fn judge(dc: &DcName, members: &[MemberInfo], views: &[View<'_>], config: &VerdictConfig) -> Assessment {
    let evidence = views.iter().map(evidence_of).collect();
    let reached_by_any = views.iter().any(|v| !v.reached.is_empty());
    let state = if !reached_by_any {
        let voters_outside = members.iter().filter(|m| m.voter && &m.dc != dc).count();
        let confirming = views.iter().filter(|v| v.reporter.voter && v.silent_for_window).count();
        let needed = match config.quorum {
            Quorum::MajorityOutside => voters_outside / 2 + 1,
            Quorum::LeaderAlone => 1,
        };
        // Until a majority outside confirms the whole window of silence, its members are merely unreachable.
        if voters_outside > 0 && confirming >= needed { DcState::Down } else { DcState::Degraded }
    } else if reporting_dcs_cut_off(views) {
        DcState::Partitioned
    } else if views.iter().any(|v| !v.unreachable.is_empty()) {
        DcState::Degraded
    } else {
        DcState::Up
    };
    Assessment { state, evidence }
}

/// Whether some datacenter's reporters all reach none of the assessed datacenter's members (while, since
/// this is asked only then, some other datacenter reaches it).
fn reporting_dcs_cut_off(views: &[View<'_>]) -> bool {
    let mut reaches: BTreeMap<&DcName, bool> = BTreeMap::new();
    for v in views {
        *reaches.entry(&v.reporter.dc).or_default() |= !v.reached.is_empty();
    }
    reaches.values().any(|r| !r)
}

fn evidence_of(v: &View<'_>) -> Evidence {
    let names = |ms: &[&MemberInfo]| ms.iter().map(|m| m.name.clone()).collect();
    Evidence {
        reporter: v.reporter.name.clone(),
        reporter_dc: v.reporter.dc.clone(),
        voter: v.reporter.voter,
        reached: names(&v.reached),
        unreachable: names(&v.unreachable),
        age_ms: v.age_ms,
    }
}
