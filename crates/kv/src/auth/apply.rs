//! Applying one auth change, with etcd 3.4/3.5's checks and answers in etcd's order. Passwords arrive as
//! base64 bcrypt hashes (`hashedPassword`), hashed by the member that took the request: hashing is slow and
//! salted, so it never runs inside apply, and plain passwords never enter the log.

use meridian_proto::authpb::{Role, User, UserAddOptions};
use meridian_proto::etcdserverpb::AuthRoleGrantPermissionRequest;
use meridian_proto::meridianpb::AuthCommand;
use meridian_proto::meridianpb::auth_command::Op;
use meridian_types::EtcdError;

use super::state::{AuthStore, ROOT};

type Applied = std::result::Result<(), EtcdError>;

impl AuthStore {
    /// Applies `cmd`. A refused change leaves the store as it was.
    pub(crate) fn apply(&mut self, cmd: &AuthCommand) -> Applied {
        let Some(op) = &cmd.op else {
            return Err(EtcdError::Internal("empty auth command".into()));
        };
        match op {
            Op::Enable(_) => self.enable(),
            Op::Disable(_) => {
                if self.enabled {
                    self.enabled = false;
                    self.revision += 1;
                }
                Ok(())
            }
            Op::UserAdd(r) => {
                if r.name.is_empty() {
                    return Err(EtcdError::UserEmpty);
                }
                if self.users.contains_key(&r.name) {
                    return Err(EtcdError::UserAlreadyExist);
                }
                let options = r.options.unwrap_or_default();
                let password = if options.no_password { Vec::new() } else { hashed(&r.password, &r.hashed_password)? };
                let user =
                    User { name: r.name.clone().into_bytes(), password, roles: Vec::new(), options: Some(options) };
                self.users.insert(r.name.clone(), user);
                self.bump()
            }
            Op::UserDelete(r) => {
                if self.enabled && r.name == ROOT {
                    return Err(EtcdError::InvalidAuthMgmt);
                }
                self.users.remove(&r.name).ok_or(EtcdError::UserNotFound)?;
                self.bump()
            }
            Op::UserChangePassword(r) => {
                let user = self.users.get_mut(&r.name).ok_or(EtcdError::UserNotFound)?;
                if !no_password(user.options.as_ref()) {
                    user.password = hashed(&r.password, &r.hashed_password)?;
                }
                self.bump()
            }
            Op::UserGrantRole(r) => {
                if !self.users.contains_key(&r.user) {
                    return Err(EtcdError::UserNotFound);
                }
                if r.role != ROOT && !self.roles.contains_key(&r.role) {
                    return Err(EtcdError::RoleNotFound);
                }
                let user = self.users.get_mut(&r.user).ok_or(EtcdError::UserNotFound)?;
                match user.roles.binary_search(&r.role) {
                    Ok(_) => Ok(()),
                    Err(at) => {
                        user.roles.insert(at, r.role.clone());
                        self.bump()
                    }
                }
            }
            Op::UserRevokeRole(r) => {
                if self.enabled && r.name == ROOT && r.role == ROOT {
                    return Err(EtcdError::InvalidAuthMgmt);
                }
                let user = self.users.get_mut(&r.name).ok_or(EtcdError::UserNotFound)?;
                let before = user.roles.len();
                user.roles.retain(|role| role != &r.role);
                if user.roles.len() == before {
                    return Err(EtcdError::RoleNotGranted);
                }
                self.bump()
            }
            Op::RoleAdd(r) => {
                if r.name.is_empty() {
                    return Err(EtcdError::RoleEmpty);
                }
                if self.roles.contains_key(&r.name) {
                    return Err(EtcdError::RoleAlreadyExist);
                }
                self.roles
                    .insert(r.name.clone(), Role { name: r.name.clone().into_bytes(), key_permission: Vec::new() });
                self.bump()
            }
            Op::RoleDelete(r) => {
                if self.enabled && r.role == ROOT {
                    return Err(EtcdError::InvalidAuthMgmt);
                }
                self.roles.remove(&r.role).ok_or(EtcdError::RoleNotFound)?;
                for user in self.users.values_mut() {
                    user.roles.retain(|role| role != &r.role);
                }
                self.bump()
            }
            Op::RoleGrantPermission(r) => self.grant(r),
            Op::RoleRevokePermission(r) => {
                let role = self.roles.get_mut(&r.role).ok_or(EtcdError::RoleNotFound)?;
                let before = role.key_permission.len();
                role.key_permission.retain(|p| !(p.key == r.key && p.range_end == r.range_end));
                if role.key_permission.len() == before {
                    return Err(EtcdError::PermissionNotGranted);
                }
                self.bump()
            }
        }
    }

    fn enable(&mut self) -> Applied {
        if self.enabled {
            return Ok(());
        }
        let root = self.users.get(ROOT).ok_or(EtcdError::RootUserNotExist)?;
        if !root.roles.iter().any(|r| r == ROOT) {
            return Err(EtcdError::RootRoleNotExist);
        }
        self.enabled = true;
        Ok(())
    }

    /// Adds a permission to a role, or changes the type of the one with the same key and range end; the
    /// role's permissions stay sorted by key.
    fn grant(&mut self, r: &AuthRoleGrantPermissionRequest) -> Applied {
        let perm = r.perm.as_ref().ok_or(EtcdError::PermissionNotGiven)?;
        let role = self.roles.get_mut(&r.name).ok_or(EtcdError::RoleNotFound)?;
        match role.key_permission.iter_mut().find(|p| p.key == perm.key && p.range_end == perm.range_end) {
            Some(existing) => existing.perm_type = perm.perm_type,
            None => {
                let at = role.key_permission.partition_point(|p| p.key <= perm.key);
                role.key_permission.insert(at, perm.clone());
            }
        }
        self.bump()
    }

    fn bump(&mut self) -> Applied {
        self.revision += 1;
        Ok(())
    }
}

fn no_password(options: Option<&UserAddOptions>) -> bool {
    options.is_some_and(|o| o.no_password)
}

/// The stored hash of a password change: the base64 bcrypt hash the proposing member computed. A plain
/// password in the log means a member skipped hashing; refuse rather than store it.
fn hashed(plain: &str, hashed: &str) -> std::result::Result<Vec<u8>, EtcdError> {
    if !plain.is_empty() || hashed.is_empty() {
        return Err(EtcdError::Internal("auth: password reached the log unhashed".into()));
    }
    base64_decode(hashed).ok_or(EtcdError::Internal("auth: hashed password is not base64".into()))
}

/// Standard base64 (with padding), as etcd encodes `hashedPassword`.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}
