//! Which live member runs an instance's checks. The rule, evaluated by every member over the same membership,
//! so exactly one member runs each instance's checks and no coordination is needed:
//!
//! 1. candidates: the live members in the instance's zone (same datacenter and zone); if there are none (or
//!    the instance has no zone), the live members of its datacenter; if none, every live member;
//! 2. among the candidates, the one with the highest [`score`] of (member name, instance), ties to the
//!    smaller name (rendezvous hashing).
//!
//! Rendezvous hashing moves only what it must: when a member dies only the instances it ran move (each to its
//! second-highest scorer), and when one joins it takes only instances for which it now scores highest. The
//! score is [`crate::hash::stable_hash`], so every member, build and version agrees.

use meridian_types::{DcName, MemberName, ZoneName};

use crate::hash::stable_hash;
use crate::instance::Instance;
use crate::name::InstanceRef;

/// A live member, as the assignment needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveMember {
    /// Its name (the hash key: stable across restarts, unlike addresses).
    pub name: MemberName,
    /// Its datacenter.
    pub dc: DcName,
    /// Its zone, if it has one.
    pub zone: Option<ZoneName>,
}

/// The rendezvous score of `member` for `instance`.
pub fn score(member: &MemberName, instance: &InstanceRef) -> u64 {
    let id = instance.to_string();
    stable_hash(&[member.0.as_bytes(), id.as_bytes()])
}

/// The member that runs `instance`'s checks; `None` only when `members` is empty.
pub fn runner_for<'m>(instance: &Instance, members: &'m [LiveMember]) -> Option<&'m LiveMember> {
    let in_dc = |m: &&LiveMember| m.dc == instance.dc;
    let in_zone = |m: &&LiveMember| in_dc(m) && instance.zone.is_some() && m.zone == instance.zone;
    let candidates: Vec<&LiveMember> =
        [members.iter().filter(in_zone).collect::<Vec<_>>(), members.iter().filter(in_dc).collect()]
            .into_iter()
            .find(|c| !c.is_empty())
            .unwrap_or_else(|| members.iter().collect());
    let reference = instance.reference();
    candidates.into_iter().max_by(|a, b| {
        let by_score = score(&a.name, &reference).cmp(&score(&b.name, &reference));
        by_score.then_with(|| b.name.cmp(&a.name))
    })
}

/// Whether `me` runs `instance`'s checks.
pub fn is_runner(me: &MemberName, instance: &Instance, members: &[LiveMember]) -> bool {
    runner_for(instance, members).is_some_and(|m| &m.name == me)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::instance::tests::web;

    fn member(name: &str, dc: &str, zone: Option<&str>) -> LiveMember {
        LiveMember { name: MemberName::from(name), dc: DcName::from(dc), zone: zone.map(ZoneName::from) }
    }

    fn members() -> Vec<LiveMember> {
        vec![
            member("a1", "dc-a", Some("z1")),
            member("a2", "dc-a", Some("z2")),
            member("a3", "dc-a", Some("z2")),
            member("b1", "dc-b", Some("z1")),
            member("b2", "dc-b", None),
            member("c1", "dc-c", None),
        ]
    }

    fn runner(instance: &Instance, members: &[LiveMember]) -> String {
        runner_for(instance, members).map_or("-".into(), |m| m.name.0.clone())
    }

    #[test]
    fn the_zone_then_the_datacenter_then_anyone() {
        let all = members();
        let without =
            |names: &[&str]| all.iter().filter(|m| !names.contains(&m.name.0.as_str())).cloned().collect::<Vec<_>>();
        let cases: Vec<(Instance, Vec<LiveMember>, &[&str])> = vec![
            (web("w", "dc-a", Some("z1")), all.clone(), &["a1"]),
            (web("w", "dc-b", Some("z1")), all.clone(), &["b1"]),
            (web("w", "dc-a", Some("z2")), all.clone(), &["a2", "a3"]),
            (web("w", "dc-a", Some("z1")), without(&["a1"]), &["a2", "a3"]),
            (web("w", "dc-a", None), all.clone(), &["a1", "a2", "a3"]),
            (web("w", "dc-a", Some("z9")), all.clone(), &["a1", "a2", "a3"]),
            (web("w", "dc-c", Some("z1")), all.clone(), &["c1"]),
            (web("w", "dc-x", None), all.clone(), &["a1", "a2", "a3", "b1", "b2", "c1"]),
            (web("w", "dc-a", None), without(&["a1", "a2", "a3"]), &["b1", "b2", "c1"]),
            (web("w", "dc-a", None), vec![], &["-"]),
        ];
        for (instance, live, allowed) in cases {
            let got = runner(&instance, &live);
            assert!(allowed.contains(&got.as_str()), "{}/{:?}: {got} not in {allowed:?}", instance.dc, instance.zone);
        }
    }

    #[test]
    fn the_choice_is_pinned_and_independent_of_member_order() {
        let mut all = members();
        let i = web("web-1", "dc-x", None);
        let first = runner(&i, &all);
        all.reverse();
        assert_eq!(runner(&i, &all), first);
        // Pinned across versions: changing the hash or the rule moves every check of every cluster.
        let pinned: Vec<String> = (0..6).map(|n| runner(&web(&format!("web-{n}"), "dc-x", None), &all)).collect();
        assert_eq!(pinned, ["b2", "a2", "a1", "c1", "c1", "a3"], "computed independently by a Python FNV-1a + fmix64");
    }

    #[test]
    fn a_member_leaving_moves_only_its_instances_and_spreads_them() {
        let all: Vec<LiveMember> = (1..=4).map(|n| member(&format!("a{n}"), "dc-a", None)).collect();
        let instances: Vec<Instance> = (0..400).map(|n| web(&format!("web-{n}"), "dc-a", None)).collect();
        let before: Vec<String> = instances.iter().map(|i| runner(i, &all)).collect();
        let mut load: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &before {
            *load.entry(r.as_str()).or_default() += 1;
        }
        assert!(load.values().all(|n| (60..=140).contains(n)), "balanced: {load:?}");
        let survivors: Vec<LiveMember> = all.iter().filter(|m| m.name.0 != "a2").cloned().collect();
        let mut received: BTreeMap<String, usize> = BTreeMap::new();
        for (i, was) in instances.iter().zip(&before) {
            let now = runner(i, &survivors);
            if was != "a2" {
                assert_eq!(&now, was, "{} moved though its runner stayed", i.id);
            } else {
                *received.entry(now).or_default() += 1;
            }
        }
        assert_eq!(received.len(), 3, "a2's instances spread over every survivor: {received:?}");
        assert!(is_runner(&MemberName::from("a1"), &instances[0], &all) == (before[0] == "a1"));
    }
}
