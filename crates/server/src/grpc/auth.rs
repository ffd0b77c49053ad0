//! The etcd `Auth` service. Writes (enable, disable, users, roles) go through the log with the caller, so the
//! root-role check happens where they apply; passwords are hashed here first. Reads (user and role get and
//! list) are answered after a read barrier; a user may read their own entry and their own roles, anything else
//! needs the root role. Authenticate needs no credentials, only the password, and is throttled.

use std::sync::Arc;

use meridian_kv::{AuthStore, CommandResponse};
use meridian_proto::etcdserverpb::auth_server::Auth;
use meridian_proto::etcdserverpb::*;
use meridian_proto::meridianpb::auth_command::Op;
use meridian_proto::meridianpb::raft_command::Cmd;
use meridian_proto::meridianpb::{AuthCommand, RaftCommand, RequestAuth};
use meridian_types::EtcdError;
use tonic::{Request, Response, Status};

use crate::auth::CallerSource;
use crate::error::to_status;
use crate::member::Member;

/// The Auth service of one member.
pub struct AuthService {
    member: Arc<Member>,
}

impl AuthService {
    /// Serves Auth on `member`.
    pub fn new(member: Arc<Member>) -> Self {
        AuthService { member }
    }

    /// Replicates one auth change on behalf of `who`.
    async fn change(&self, who: RequestAuth, op: Op) -> Result<ResponseHeader, Status> {
        let cmd = RaftCommand {
            auth: Some(who),
            cmd: Some(Cmd::AuthChange(AuthCommand { op: Some(op) })),
            ..Default::default()
        };
        match self.member.propose(cmd).await.map_err(to_status)? {
            CommandResponse::Auth => Ok(self.member.current_header()),
            other => Err(to_status(EtcdError::Internal(format!("unexpected apply result {other:?}")))),
        }
    }

    /// The caller of `req`, judged on this member.
    fn caller<T>(&self, req: &Request<T>) -> Result<RequestAuth, Status> {
        self.member.caller(&CallerSource::of(req)).map_err(to_status)
    }

    /// The auth store after a read barrier, once `allowed` accepts the caller.
    async fn read(
        &self,
        who: &RequestAuth,
        allowed: impl FnOnce(&AuthStore, &RequestAuth) -> bool,
    ) -> Result<AuthStore, Status> {
        self.member.read_barrier().await.map_err(to_status)?;
        let store = self.member.kv().read().auth().clone();
        if !allowed(&store, who) {
            store.check_admin(who).map_err(to_status)?;
        }
        Ok(store)
    }

    async fn new_password(&self, password: String, no_password: bool) -> Result<String, Status> {
        if no_password {
            return Ok(String::new());
        }
        if password.is_empty() {
            return Err(to_status(EtcdError::PasswordEmpty));
        }
        self.member.authenticator().hash_password(password).await.map_err(to_status)
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_enable(&self, request: Request<AuthEnableRequest>) -> Result<Response<AuthEnableResponse>, Status> {
        let who = self.caller(&request)?;
        let header = self.change(who, Op::Enable(request.into_inner())).await?;
        Ok(Response::new(AuthEnableResponse { header: Some(header) }))
    }

    async fn auth_disable(
        &self,
        request: Request<AuthDisableRequest>,
    ) -> Result<Response<AuthDisableResponse>, Status> {
        let who = self.caller(&request)?;
        let header = self.change(who, Op::Disable(request.into_inner())).await?;
        Ok(Response::new(AuthDisableResponse { header: Some(header) }))
    }

    async fn auth_status(&self, _request: Request<AuthStatusRequest>) -> Result<Response<AuthStatusResponse>, Status> {
        self.member.read_barrier().await.map_err(to_status)?;
        let (enabled, auth_revision) = {
            let kv = self.member.kv().read();
            (kv.auth().enabled(), kv.auth().revision())
        };
        Ok(Response::new(AuthStatusResponse { header: Some(self.member.current_header()), enabled, auth_revision }))
    }

    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let remote = CallerSource::of(&request).remote;
        let req = request.into_inner();
        let auth = self.member.authenticator();
        auth.admit_login(&req.name, remote).map_err(to_status)?;
        self.member.read_barrier().await.map_err(to_status)?;
        let store = self.member.kv().read().auth().clone();
        let token = auth.login(&req.name, req.password, remote, &store).await.map_err(to_status)?;
        Ok(Response::new(AuthenticateResponse { header: Some(self.member.current_header()), token }))
    }

    async fn user_add(&self, request: Request<AuthUserAddRequest>) -> Result<Response<AuthUserAddResponse>, Status> {
        let who = self.caller(&request)?;
        let mut req = request.into_inner();
        if req.name.is_empty() {
            return Err(to_status(EtcdError::UserEmpty));
        }
        let no_password = req.options.is_some_and(|o| o.no_password);
        req.hashed_password = self.new_password(std::mem::take(&mut req.password), no_password).await?;
        let header = self.change(who, Op::UserAdd(req)).await?;
        Ok(Response::new(AuthUserAddResponse { header: Some(header) }))
    }

    async fn user_get(&self, request: Request<AuthUserGetRequest>) -> Result<Response<AuthUserGetResponse>, Status> {
        let who = self.caller(&request)?;
        let name = request.into_inner().name;
        let store = self.read(&who, |_, w| w.username == name).await?;
        let roles = store.user_roles(&name).map_err(to_status)?;
        Ok(Response::new(AuthUserGetResponse { header: Some(self.member.current_header()), roles }))
    }

    async fn user_list(&self, request: Request<AuthUserListRequest>) -> Result<Response<AuthUserListResponse>, Status> {
        let who = self.caller(&request)?;
        let store = self.read(&who, |_, _| false).await?;
        Ok(Response::new(AuthUserListResponse {
            header: Some(self.member.current_header()),
            users: store.user_names(),
        }))
    }

    async fn user_delete(
        &self,
        request: Request<AuthUserDeleteRequest>,
    ) -> Result<Response<AuthUserDeleteResponse>, Status> {
        let who = self.caller(&request)?;
        let header = self.change(who, Op::UserDelete(request.into_inner())).await?;
        Ok(Response::new(AuthUserDeleteResponse { header: Some(header) }))
    }

    async fn user_change_password(
        &self,
        request: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        let who = self.caller(&request)?;
        let mut req = request.into_inner();
        let no_password = {
            let kv = self.member.kv().read();
            let user = kv.auth().user(&req.name).ok_or_else(|| to_status(EtcdError::UserNotFound))?;
            user.options.is_some_and(|o| o.no_password)
        };
        req.hashed_password = self.new_password(std::mem::take(&mut req.password), no_password).await?;
        let header = self.change(who, Op::UserChangePassword(req)).await?;
        Ok(Response::new(AuthUserChangePasswordResponse { header: Some(header) }))
    }

    async fn user_grant_role(
        &self,
        request: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        let who = self.caller(&request)?;
        let header = self.change(who, Op::UserGrantRole(request.into_inner())).await?;
        Ok(Response::new(AuthUserGrantRoleResponse { header: Some(header) }))
    }

    async fn user_revoke_role(
        &self,
        request: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        let who = self.caller(&request)?;
        let header = self.change(who, Op::UserRevokeRole(request.into_inner())).await?;
        Ok(Response::new(AuthUserRevokeRoleResponse { header: Some(header) }))
    }

    async fn role_add(&self, request: Request<AuthRoleAddRequest>) -> Result<Response<AuthRoleAddResponse>, Status> {
        let who = self.caller(&request)?;
        let header = self.change(who, Op::RoleAdd(request.into_inner())).await?;
        Ok(Response::new(AuthRoleAddResponse { header: Some(header) }))
    }

    async fn role_get(&self, request: Request<AuthRoleGetRequest>) -> Result<Response<AuthRoleGetResponse>, Status> {
        let who = self.caller(&request)?;
        let role = request.into_inner().role;
        let own = |s: &AuthStore, w: &RequestAuth| s.user(&w.username).is_some_and(|u| u.roles.contains(&role));
        let store = self.read(&who, own).await?;
        let perm = store.role_permissions(&role).map_err(to_status)?;
        Ok(Response::new(AuthRoleGetResponse { header: Some(self.member.current_header()), perm }))
    }

    async fn role_list(&self, request: Request<AuthRoleListRequest>) -> Result<Response<AuthRoleListResponse>, Status> {
        let who = self.caller(&request)?;
        let store = self.read(&who, |_, _| false).await?;
        Ok(Response::new(AuthRoleListResponse {
            header: Some(self.member.current_header()),
            roles: store.role_names(),
        }))
    }

    async fn role_delete(
        &self,
        request: Request<AuthRoleDeleteRequest>,
    ) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        let who = self.caller(&request)?;
        let header = self.change(who, Op::RoleDelete(request.into_inner())).await?;
        Ok(Response::new(AuthRoleDeleteResponse { header: Some(header) }))
    }

    async fn role_grant_permission(
        &self,
        request: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        let who = self.caller(&request)?;
        let header = self.change(who, Op::RoleGrantPermission(request.into_inner())).await?;
        Ok(Response::new(AuthRoleGrantPermissionResponse { header: Some(header) }))
    }

    async fn role_revoke_permission(
        &self,
        request: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        let who = self.caller(&request)?;
        let header = self.change(who, Op::RoleRevokePermission(request.into_inner())).await?;
        Ok(Response::new(AuthRoleRevokePermissionResponse { header: Some(header) }))
    }
}
