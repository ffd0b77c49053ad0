//! Whether a caller may touch a key range: the union of the permissions of the caller's roles, merged into
//! disjoint intervals, must cover the whole requested range (etcd's unified range permissions). The root role
//! may do anything; with auth disabled, everyone may.

use meridian_proto::authpb::permission;
use meridian_proto::meridianpb::RequestAuth;
use meridian_types::EtcdError;

use super::state::AuthStore;

/// What a request does to a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermKind {
    /// Range, watch, compares, `prev_kv`.
    Read,
    /// Put, delete, lease revoke of attached keys.
    Write,
}

/// A half-open key interval; `end == None` is unbounded.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Interval {
    start: Vec<u8>,
    end: Option<Vec<u8>>,
}

/// etcd's (key, range_end) convention as an interval: empty `range_end` is the single key, `"\0"` every key
/// from `key` on.
fn interval(key: &[u8], range_end: &[u8]) -> Interval {
    match range_end {
        [] => {
            let mut end = key.to_vec();
            end.push(0);
            Interval { start: key.to_vec(), end: Some(end) }
        }
        [0] => Interval { start: key.to_vec(), end: None },
        end => Interval { start: key.to_vec(), end: Some(end.to_vec()) },
    }
}

/// Whether the union of `granted` covers `want`. An empty or inverted `want` is judged as its first key, so a
/// malformed range never widens what a caller may do.
fn covers(mut granted: Vec<Interval>, want: &Interval) -> bool {
    let want_end = match &want.end {
        Some(e) if e.as_slice() <= want.start.as_slice() => {
            let mut e = want.start.clone();
            e.push(0);
            Some(e)
        }
        other => other.clone(),
    };
    granted.sort_by(|a, b| a.start.cmp(&b.start));
    let mut merged: Vec<Interval> = Vec::with_capacity(granted.len());
    for g in granted {
        match merged.last_mut() {
            Some(last) if reaches(&last.end, &g.start) => {
                last.end = match (&last.end, g.end) {
                    (None, _) | (_, None) => None,
                    (Some(a), Some(b)) => Some(if *a >= b { a.clone() } else { b }),
                };
            }
            _ => merged.push(g),
        }
    }
    merged.iter().any(|m| {
        m.start.as_slice() <= want.start.as_slice()
            && match (&m.end, &want_end) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(me), Some(we)) => we <= me,
            }
    })
}

/// Whether an interval ending at `end` touches one starting at `start` (so the two merge).
fn reaches(end: &Option<Vec<u8>>, start: &[u8]) -> bool {
    end.as_ref().is_none_or(|e| start <= e.as_slice())
}

fn allows(perm_type: i32, kind: PermKind) -> bool {
    let t = permission::Type::try_from(perm_type).unwrap_or(permission::Type::Read);
    match kind {
        PermKind::Read => matches!(t, permission::Type::Read | permission::Type::Readwrite),
        PermKind::Write => matches!(t, permission::Type::Write | permission::Type::Readwrite),
    }
}

impl AuthStore {
    /// Whether `who` may `kind` the keys of (`key`, `range_end`): etcd's checks in etcd's order (credentials
    /// given, auth revision not stale, user exists, root, then the ranges of the user's roles).
    pub fn check_range(
        &self,
        who: &RequestAuth,
        key: &[u8],
        range_end: &[u8],
        kind: PermKind,
    ) -> Result<(), EtcdError> {
        if !self.enabled {
            return Ok(());
        }
        if who.auth_revision == 0 {
            return Err(EtcdError::UserEmpty);
        }
        if who.auth_revision < self.revision {
            return Err(EtcdError::AuthOldRevision);
        }
        let user = self.users.get(&who.username).ok_or(EtcdError::PermissionDenied)?;
        if user.roles.iter().any(|r| r == super::ROOT) {
            return Ok(());
        }
        let granted = user
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .flat_map(|role| role.key_permission.iter())
            .filter(|p| allows(p.perm_type, kind))
            .map(|p| interval(&p.key, &p.range_end))
            .collect();
        if covers(granted, &interval(key, range_end)) { Ok(()) } else { Err(EtcdError::PermissionDenied) }
    }

    /// Whether `who` may administer the cluster (holds the root role), as etcd's IsAdminPermitted.
    pub fn check_admin(&self, who: &RequestAuth) -> Result<(), EtcdError> {
        if !self.enabled {
            return Ok(());
        }
        if who.username.is_empty() {
            return Err(EtcdError::UserEmpty);
        }
        let user = self.users.get(&who.username).ok_or(EtcdError::UserNotFound)?;
        if user.roles.iter().any(|r| r == super::ROOT) { Ok(()) } else { Err(EtcdError::PermissionDenied) }
    }

    /// Whether `who` is a known user (for calls that touch no key, such as lease grants and keep-alives).
    pub fn check_user(&self, who: &RequestAuth) -> Result<(), EtcdError> {
        if !self.enabled {
            return Ok(());
        }
        if who.username.is_empty() || who.auth_revision == 0 {
            return Err(EtcdError::UserEmpty);
        }
        if self.users.contains_key(&who.username) { Ok(()) } else { Err(EtcdError::UserNotFound) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(k: &str, e: &str) -> Interval {
        interval(k.as_bytes(), e.as_bytes())
    }

    #[test]
    fn merged_permissions_cover_ranges_that_no_single_one_does() {
        // (granted, wanted, covered)
        type Case<'a> = (&'a [(&'a str, &'a str)], (&'a str, &'a str), bool);
        let cases: &[Case<'_>] = &[
            (&[("a", "")], ("a", ""), true),
            (&[("a", "")], ("b", ""), false),
            (&[("a", "")], ("a", "b"), false),
            (&[("a", "c")], ("a", "b"), true),
            (&[("a", "c")], ("b", "c"), true),
            (&[("a", "c")], ("b", "d"), false),
            (&[("a", "b"), ("b", "c")], ("a", "c"), true),
            (&[("a", "b"), ("c", "d")], ("a", "d"), false),
            (&[("a", "\0")], ("zzz", "\0"), true),
            (&[("a", "c")], ("a", "\0"), false),
            (&[("b", "\0")], ("a", "\0"), false),
            (&[("a", "b"), ("a", "\0")], ("q", "z"), true),
            (&[], ("a", ""), false),
            // An inverted range is judged as its first key.
            (&[("b", "")], ("b", "a"), true),
            (&[("a", "")], ("b", "a"), false),
        ];
        for (granted, (k, e), want) in cases {
            let g = granted.iter().map(|(gk, ge)| iv(gk, ge)).collect();
            assert_eq!(covers(g, &iv(k, e)), *want, "granted {granted:?} want ({k:?},{e:?})");
        }
    }
}
