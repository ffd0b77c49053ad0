//! `AuthStore`: whether auth is on, the auth revision, the users and the roles; its reads (as etcd's Auth
//! service answers them) and its stored form.

use std::collections::BTreeMap;

use meridian_proto::authpb::{Permission, Role, User, permission};
use meridian_proto::meridianpb::AuthState;
use meridian_types::EtcdError;
use prost::Message;

use crate::error::{Error, Result};

/// The name of the root user and of the root role.
pub const ROOT: &str = "root";

/// Users, roles and the auth switch, as replicated.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthStore {
    pub(super) enabled: bool,
    /// Bumped by every change of users or roles and by disabling auth, never by enabling it (as etcd).
    pub(super) revision: u64,
    pub(super) users: BTreeMap<String, User>,
    pub(super) roles: BTreeMap<String, Role>,
}

impl Default for AuthStore {
    /// A fresh store: auth off, revision 1 (etcd starts there, so that 0 can mean "no credentials").
    fn default() -> Self {
        AuthStore { enabled: false, revision: 1, users: BTreeMap::new(), roles: BTreeMap::new() }
    }
}

impl AuthStore {
    /// Whether auth is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The auth revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The user `name`, if it exists.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// The roles of user `name` (etcd's UserGet).
    pub fn user_roles(&self, name: &str) -> std::result::Result<Vec<String>, EtcdError> {
        self.users.get(name).map(|u| u.roles.clone()).ok_or(EtcdError::UserNotFound)
    }

    /// Every user name, sorted (etcd's UserList).
    pub fn user_names(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    /// The permissions of role `name` (etcd's RoleGet: the root role reads as read-write on every key).
    pub fn role_permissions(&self, name: &str) -> std::result::Result<Vec<Permission>, EtcdError> {
        let role = self.roles.get(name).ok_or(EtcdError::RoleNotFound)?;
        if name == ROOT {
            return Ok(vec![Permission {
                perm_type: permission::Type::Readwrite as i32,
                key: Vec::new(),
                range_end: vec![0],
            }]);
        }
        Ok(role.key_permission.clone())
    }

    /// Every role name, sorted (etcd's RoleList).
    pub fn role_names(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    /// Whether user `name` holds the root role.
    pub fn is_root(&self, name: &str) -> bool {
        self.users.get(name).is_some_and(|u| u.roles.iter().any(|r| r == ROOT))
    }

    /// A checksum of the whole store (CRC-32C of its stored form): equal on members that applied the same auth
    /// changes, so members can be compared as HashKV compares their keys.
    pub fn hash(&self) -> u32 {
        crate::hash::crc32c(&self.encode())
    }

    /// The stored form (an `AuthState` message).
    pub(crate) fn encode(&self) -> Vec<u8> {
        AuthState {
            enabled: self.enabled,
            revision: self.revision,
            users: self.users.values().cloned().collect(),
            roles: self.roles.values().cloned().collect(),
        }
        .encode_to_vec()
    }

    /// Reads what [`AuthStore::encode`] wrote.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let state = AuthState::decode(bytes).map_err(|e| Error::corrupt(format!("auth store: {e}")))?;
        let name =
            |n: &[u8]| String::from_utf8(n.to_vec()).map_err(|_| Error::corrupt("auth store: a name is not UTF-8"));
        let mut users = BTreeMap::new();
        for u in state.users {
            users.insert(name(&u.name)?, u);
        }
        let mut roles = BTreeMap::new();
        for r in state.roles {
            roles.insert(name(&r.name)?, r);
        }
        Ok(AuthStore { enabled: state.enabled, revision: state.revision.max(1), users, roles })
    }
}
