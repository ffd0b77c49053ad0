//! The catalog as the member's services share it: one [`Catalog`] behind a lock, and a signal that fires each
//! time it moves forward, on which blocking queries wait (Consul's `?index=&wait=`).

use std::time::Duration;

use meridian_registry::ServiceName;
use parking_lot::{RwLock, RwLockReadGuard};
use tokio::sync::watch;

use super::catalog::Catalog;

/// What a blocking query waits for.
#[derive(Clone, Debug)]
pub enum Watched {
    /// Any change to the registry.
    Everything,
    /// A change to one service's registrations or check states.
    Service(ServiceName),
}

/// The member's catalog and its change signal.
pub struct LiveCatalog {
    catalog: RwLock<Catalog>,
    /// Carries the catalog's index; bumped after every change.
    moved: watch::Sender<i64>,
    /// Whether the catalog has been loaded from the store since the member started.
    loaded: watch::Sender<bool>,
}

impl Default for LiveCatalog {
    fn default() -> Self {
        LiveCatalog {
            catalog: RwLock::new(Catalog::default()),
            moved: watch::channel(0).0,
            loaded: watch::channel(false).0,
        }
    }
}

impl LiveCatalog {
    /// Reads the catalog. Hold the guard briefly: the follower waits for it to apply changes.
    pub fn read(&self) -> RwLockReadGuard<'_, Catalog> {
        self.catalog.read()
    }

    /// Replaces the catalog with a freshly loaded one.
    pub fn replace(&self, catalog: Catalog) {
        let index = catalog.index();
        *self.catalog.write() = catalog;
        self.loaded.send_replace(true);
        self.moved.send_replace(index);
    }

    /// Changes the catalog with `f` and wakes the blocking queries.
    pub fn update(&self, f: impl FnOnce(&mut Catalog)) {
        let index = {
            let mut catalog = self.catalog.write();
            f(&mut catalog);
            catalog.index()
        };
        self.moved.send_replace(index);
    }

    /// A receiver of the change signal: it changes each time the catalog moves (the check runners wait on it).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.moved.subscribe()
    }

    /// Waits until the catalog has been loaded once.
    pub async fn wait_loaded(&self) {
        let mut rx = self.loaded.subscribe();
        let _ = rx.wait_for(|loaded| *loaded).await;
    }

    /// The revision of the last change to `what`.
    pub fn changed(&self, what: &Watched) -> i64 {
        let catalog = self.read();
        match what {
            Watched::Everything => catalog.changed(),
            Watched::Service(s) => catalog.service_changed(s),
        }
    }

    /// Consul's blocking query: returns once the last change to `what` is past `index`, or after `wait`. An
    /// `index` ahead of the catalog (a client that saw a store since restored to an older state) answers at once,
    /// as Consul's clients must then start over.
    pub async fn wait_past(&self, what: &Watched, index: i64, wait: Duration) {
        let mut rx = self.moved.subscribe();
        let waiting = async {
            loop {
                let (changed, at) = {
                    let catalog = self.read();
                    let changed = match what {
                        Watched::Everything => catalog.changed(),
                        Watched::Service(s) => catalog.service_changed(s),
                    };
                    (changed, catalog.index())
                };
                if changed > index || index > at {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(wait, waiting).await;
    }
}
