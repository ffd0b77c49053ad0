//! etcd's Lock and Election services, as etcd 3.4 serves them: the recipes of its Go `concurrency` package
//! (`Mutex`, `Election`) run on the server on behalf of the client that asked.
//!
//! A waiter for lock (or candidate in election) `N` puts `N/<its lease id in hex>` with its lease, in a txn
//! that keeps the key if the lease already has one; the key's create revision is its place in the queue. It
//! holds the lock (leads) when no key under `N/` was created before its own; otherwise it waits for the key
//! created just before it to be deleted, and looks again. A holder's key goes when it unlocks (resigns) or its
//! lease expires or is revoked, and that deletion is what wakes the next waiter. The create revision of a
//! holder's key only grows per name, so it doubles as a fencing token (docs/fencing.md).
//!
//! - `keys`: the keys and the reads of the queue (pure);
//! - `client`: the key-value calls the recipes make, judged as the caller's own;
//! - `key_watch`: a watcher on this member's watch hub; `queue`: waiting for one's turn with it;
//! - `withdraw`: taking a waiter's key back when it gives up (an error, or the client cancelled);
//! - `mutex`: Lock and Unlock; `election`: Campaign, Proclaim, Resign and Leader; `observe`: Observe.
//!
//! The gRPC adapters are `grpc::lock` and `grpc::election`.

pub mod client;
pub mod election;
pub mod key_watch;
pub mod keys;
pub mod mutex;
pub mod observe;
pub mod queue;
pub mod withdraw;
