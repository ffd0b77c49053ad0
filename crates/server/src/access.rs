//! The permission each RPC needs, in one place (the table in ARCHITECTURE.md "Security: permissions"): the
//! handlers ask here before they serve a read or a cluster operation. Writes are judged again where they apply,
//! from the caller their command carries.

use meridian_kv::PermKind;
use meridian_proto::meridianpb::RequestAuth;
use tonic::{Request, Status};

use crate::auth::CallerSource;
use crate::error::to_status;
use crate::member::Member;

/// The caller of `req` (any credentials, or none): for writes, judged where they apply.
pub fn caller<T>(member: &Member, req: &Request<T>) -> Result<RequestAuth, Status> {
    member.caller(&CallerSource::of(req)).map_err(to_status)
}

/// The caller of `req`, who must hold the root role (maintenance, membership changes).
pub fn admin<T>(member: &Member, req: &Request<T>) -> Result<RequestAuth, Status> {
    let who = caller(member, req)?;
    member.kv().read().auth().check_admin(&who).map_err(to_status)?;
    Ok(who)
}

/// The caller of `req`, who must be a known user (calls that touch no key: lease keep-alive, member list).
pub fn user<T>(member: &Member, req: &Request<T>) -> Result<RequestAuth, Status> {
    let who = caller(member, req)?;
    member.kv().read().auth().check_user(&who).map_err(to_status)?;
    Ok(who)
}

/// Whether `who` may `kind` the keys of (`key`, `range_end`) on this member now.
pub fn range(member: &Member, who: &RequestAuth, key: &[u8], range_end: &[u8], kind: PermKind) -> Result<(), Status> {
    member.kv().read().auth().check_range(who, key, range_end, kind).map_err(to_status)
}
