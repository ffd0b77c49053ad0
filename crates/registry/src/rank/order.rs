//! The ranking itself: group into tiers, order each, pick the primary, give each tier its reason.

use std::collections::{BTreeMap, BTreeSet};

use meridian_types::{DcName, SplitMix64};

use super::{Candidate, Entry, Query, Ranked, Reason, Scope, Tier};
use crate::health::dns_weight;
use crate::status::Status;

/// Ranks `candidates` (every instance of one service with its health) for `query`. Deterministic: the same
/// inputs (seed included) give the same answer.
pub fn rank<'a>(candidates: &[Candidate<'a>], query: &Query<'_>) -> Ranked<'a> {
    let from = query.from;
    let threshold = query.policy.failover_threshold.max(1);
    let matching: Vec<&Candidate<'a>> = candidates.iter().filter(|c| c.instance.has_tags(query.tags)).collect();
    let excluded_down: Vec<DcName> = matching
        .iter()
        .map(|c| &c.instance.dc)
        .chain([&from.dc])
        .filter(|dc| query.down.contains(*dc))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    let mut groups: Vec<(Scope, Reason, Vec<&Candidate<'a>>)> = Vec::new();
    if !query.down.contains(&from.dc) {
        let local: Vec<_> = matching.iter().copied().filter(|c| c.instance.dc == from.dc).collect();
        let (in_zone, rest): (Vec<_>, Vec<_>) =
            local.into_iter().partition(|c| from.zone.is_some() && c.instance.zone == from.zone);
        if let Some(zone) = &from.zone {
            groups.push((Scope::Zone { dc: from.dc.clone(), zone: zone.clone() }, Reason::LocalZone, in_zone));
        }
        groups.push((Scope::Dc { dc: from.dc.clone(), except_zone: from.zone.clone() }, Reason::LocalDc, rest));
    }
    let mut remote: BTreeMap<&DcName, Vec<&Candidate<'a>>> = BTreeMap::new();
    for c in matching.iter().filter(|c| c.instance.dc != from.dc && !query.down.contains(&c.instance.dc)) {
        remote.entry(&c.instance.dc).or_default().push(c);
    }
    let mut remote: Vec<_> = remote.into_iter().collect();
    remote.sort_by_key(|(dc, _)| {
        let rtt = query.rtt_ms.get(*dc);
        (rtt.is_none(), rtt.copied().unwrap_or(0), (*dc).clone())
    });
    for (dc, members) in remote {
        let rtt_ms = query.rtt_ms.get(dc).copied();
        groups.push((Scope::RemoteDc { dc: dc.clone(), rtt_ms }, Reason::RemoteDc { rtt_ms }, members));
    }

    let mut rng = query.seed.map(SplitMix64::new);
    let mut tiers: Vec<Tier<'a>> = groups
        .into_iter()
        .map(|(scope, reason, members)| {
            let instances = order_tier(&members, query.include_warning, rng.as_mut());
            let healthy = instances.len();
            Tier { scope, reason, healthy, meets_threshold: healthy >= threshold, instances }
        })
        .collect();

    let primary = tiers.iter().position(|t| t.meets_threshold).or_else(|| tiers.iter().position(|t| t.healthy > 0));
    if let Some(p) = primary {
        let mut passed: Vec<String> = Vec::new();
        if query.down.contains(&from.dc) {
            passed.push(format!("{} is down", from.dc));
        }
        for tier in &mut tiers[..p] {
            passed.push(format!("{} healthy in {}", tier.healthy, tier.scope));
            tier.reason = Reason::BelowThreshold { healthy: tier.healthy, threshold };
        }
        if !passed.is_empty() {
            let mut why = format!("{} (threshold {threshold})", passed.join(", "));
            if !tiers[p].meets_threshold {
                why.push_str("; no tier reaches the threshold");
            }
            let from = match &from.zone {
                Some(zone) => Scope::Zone { dc: from.dc.clone(), zone: zone.clone() },
                None => Scope::Dc { dc: from.dc.clone(), except_zone: None },
            };
            tiers[p].reason = Reason::Failover { from, why };
        }
    }
    Ranked { tiers, primary, threshold, excluded_down }
}

/// A tier's healthy instances: passing first, then warning if included; each group in (node, id) order, then
/// shuffled if a generator is given.
fn order_tier<'a>(
    members: &[&Candidate<'a>],
    include_warning: bool,
    mut rng: Option<&mut SplitMix64>,
) -> Vec<Entry<'a>> {
    let mut out = Vec::new();
    let wanted: &[Status] = if include_warning { &[Status::Passing, Status::Warning] } else { &[Status::Passing] };
    for &health in wanted {
        let mut group: Vec<Entry<'a>> = members
            .iter()
            .filter(|c| c.health == health)
            .filter_map(|c| {
                dns_weight(health, c.instance.weights).map(|weight| Entry { instance: c.instance, health, weight })
            })
            .collect();
        group.sort_by(|a, b| (&a.instance.node, &a.instance.id).cmp(&(&b.instance.node, &b.instance.id)));
        if let Some(rng) = rng.as_deref_mut() {
            for i in (1..group.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                group.swap(i, j);
            }
        }
        out.extend(group);
    }
    out
}
