//! etcd authentication and RBAC as etcdctl sees them: users, roles, permissions on a key, a range, a prefix and
//! from a key, `auth enable|disable`, `--user` and `--password`, password changes, and every error on the way.
//! The same etcdctl script runs against etcd 3.4 and Meridian; the normalised transcripts must match, and each
//! side is checked against what etcd is known to answer. Then what Meridian checks beyond etcd 3.4 (the holes
//! etcd's advisories list), a follower's own checks, and the login throttle.

mod common;

use common::transcript::{Session, differential};

const ROOT: &str = "root:rootpw";
const ALICE: &str = "alice:alicepw";

fn user(creds: &str) -> String {
    format!("--user={creds}")
}

fn expect_error(s: &mut Session, out: &common::Output, text: &str, what: &str) {
    let ok = !out.ok() && out.stderr.contains(text);
    s.expect(ok, format!("{what}: expected {text:?}, got {out:?}"));
}

/// root with the root role; alice with role `app`: read-write on the prefix `a/`, read on `r`, read on the
/// range [m, n), write from `w` on.
fn set_up_users(s: &mut Session) {
    s.note("users and roles, before auth is on");
    let out = s.run(&["auth", "enable"]);
    expect_error(s, &out, "etcdserver: root user does not exist", "auth enable without root");
    s.run(&["user", "add", ROOT]);
    s.run(&["user", "add", ALICE]);
    let dup = s.run(&["user", "add", "alice:other"]);
    expect_error(s, &dup, "etcdserver: user name already exists", "a second alice");
    s.run(&["role", "add", "app"]);
    let dup = s.run(&["role", "add", "app"]);
    expect_error(s, &dup, "etcdserver: role name already exists", "a second app role");
    s.run(&["role", "grant-permission", "app", "readwrite", "a/", "--prefix"]);
    s.run(&["role", "grant-permission", "app", "read", "r"]);
    s.run(&["role", "grant-permission", "app", "read", "m", "n"]);
    s.run(&["role", "grant-permission", "app", "write", "w", "--from-key"]);
    s.run(&["role", "get", "app"]);
    let missing = s.run(&["user", "grant-role", "alice", "nope"]);
    expect_error(s, &missing, "etcdserver: role name not found", "granting a missing role");
    let nobody = s.run(&["user", "grant-role", "nobody", "app"]);
    expect_error(s, &nobody, "etcdserver: user name not found", "granting to a missing user");
    s.run(&["user", "grant-role", "alice", "app"]);
    s.run(&["user", "get", "alice"]);
    s.run(&["user", "get", "alice", "--detail"]);
    s.run(&["user", "list"]);
    s.run(&["role", "list"]);
    let not_granted = s.run(&["user", "revoke-role", "alice", "root"]);
    expect_error(s, &not_granted, "etcdserver: role is not granted to the user", "revoking an ungranted role");
    let no_perm = s.run(&["role", "revoke-permission", "app", "zzz"]);
    expect_error(s, &no_perm, "etcdserver: permission is not granted to the role", "revoking a missing permission");
    s.run(&["put", "secret", "root's"]);
    s.run(&["put", "r", "readable"]);
    s.run(&["put", "m1", "in-range"]);
}

#[test]
fn users_roles_and_permissions_answer_as_etcd_does() {
    differential("auth_users_roles_permissions", |s| {
        set_up_users(s);
        s.note("auth on: etcdctl adds the root role and grants it to root");
        s.run(&["auth", "enable"]);
        let anonymous = s.run(&["get", "r"]);
        expect_error(s, &anonymous, "etcdserver: user name is empty", "a read without credentials");
        let anonymous = s.run(&["put", "a/1", "x"]);
        expect_error(s, &anonymous, "etcdserver: user name is empty", "a write without credentials");
        let wrong = s.run(&["--user=alice:wrong", "get", "r"]);
        expect_error(s, &wrong, "etcdserver: authentication failed, invalid user ID or password", "a wrong password");
        let unknown = s.run(&["--user=mallory:x", "get", "r"]);
        expect_error(s, &unknown, "etcdserver: authentication failed, invalid user ID or password", "an unknown user");

        s.note("alice inside her permissions");
        s.run(&[&user(ALICE), "put", "a/1", "one"]);
        s.run(&[&user(ALICE), "get", "a/", "--prefix"]);
        s.run(&["--user=alice", "--password=alicepw", "get", "r"]);
        s.run(&[&user(ALICE), "get", "m", "n"]);
        s.run(&[&user(ALICE), "put", "wz", "write-only"]);
        s.run(&[&user(ALICE), "del", "a/1"]);
        s.run_stdin(&[&user(ALICE), "txn"], b"value(\"r\") = \"readable\"\n\nput a/2 two\n\nput a/3 three\n\n");

        s.note("alice outside them: every path is refused and nothing changes");
        for args in [
            vec!["put", "secret", "alice's"],
            vec!["get", "secret"],
            vec!["put", "r", "overwrite"],
            vec!["get", "a/", "--from-key"],
            vec!["get", "m", "o"],
            vec!["get", "wz"],
            vec!["del", "wz", "--prev-kv"],
            vec!["put", "wy", "x", "--prev-kv"],
            vec!["user", "list"],
            vec!["role", "get", "root"],
            vec!["auth", "disable"],
        ] {
            let mut full = vec![user(ALICE)];
            full.extend(args.iter().map(|a| a.to_string()));
            let refs: Vec<&str> = full.iter().map(String::as_str).collect();
            let out = s.run(&refs);
            expect_error(s, &out, "etcdserver: permission denied", &format!("alice: {args:?}"));
        }
        // The branch that does not run is checked too, and so is every compare.
        let out =
            s.run_stdin(&[&user(ALICE), "txn"], b"value(\"r\") = \"readable\"\n\nput a/5 five\n\nput secret x\n\n");
        expect_error(s, &out, "etcdserver: permission denied", "a txn with a refused op in the other branch");
        let out = s.run_stdin(&[&user(ALICE), "txn"], b"value(\"secret\") = \"x\"\n\nput a/5 five\n\n\n");
        expect_error(s, &out, "etcdserver: permission denied", "a txn comparing a refused key");
        s.run(&[&user(ROOT), "get", "", "--prefix"]);

        s.note("root manages: password change, role revoke, deletes");
        s.run_stdin(&[&user(ROOT), "user", "passwd", "alice", "--interactive=false"], b"newpw\n");
        let old = s.run(&[&user(ALICE), "get", "r"]);
        expect_error(s, &old, "etcdserver: authentication failed, invalid user ID or password", "the old password");
        s.run(&["--user=alice:newpw", "get", "r"]);
        s.run(&[&user(ROOT), "role", "revoke-permission", "app", "r"]);
        let revoked = s.run(&["--user=alice:newpw", "get", "r"]);
        expect_error(s, &revoked, "etcdserver: permission denied", "a read after its permission was revoked");
        s.run(&[&user(ROOT), "role", "revoke-permission", "app", "a/", "--prefix"]);
        s.run(&[&user(ROOT), "role", "get", "app"]);
        s.run(&[&user(ROOT), "user", "revoke-role", "alice", "app"]);
        let root_role = s.run(&[&user(ROOT), "user", "revoke-role", "root", "root"]);
        expect_error(s, &root_role, "etcdserver: invalid auth management", "root losing root");
        let del_root = s.run(&[&user(ROOT), "user", "delete", "root"]);
        expect_error(s, &del_root, "etcdserver: invalid auth management", "deleting root");
        s.run(&[&user(ROOT), "role", "delete", "app"]);
        let gone = s.run(&[&user(ROOT), "role", "get", "app"]);
        expect_error(s, &gone, "etcdserver: role name not found", "a deleted role");
        s.run(&[&user(ROOT), "user", "delete", "alice"]);
        let gone = s.run(&[&user(ROOT), "user", "get", "alice"]);
        expect_error(s, &gone, "etcdserver: user name not found", "a deleted user");
        s.run(&[&user(ROOT), "user", "list"]);
        s.run(&[&user(ROOT), "auth", "disable"]);
        s.run(&["get", "secret"]);
    });
}
