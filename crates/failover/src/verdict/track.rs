//! Hysteresis between assessments and written verdicts. Each datacenter's track is `Steady` while the
//! assessment matches the recorded verdict and `Changing` from the first assessment that differs; a change is
//! written once it has held for its window: `down` at once (its assessment already demands a whole detection
//! window of silence), `up` after the stable window (the failback hold), anything else after the detection
//! window. A leader starts with every track steady, so a new leader waits a full window before it changes a
//! verdict its predecessor wrote.

use std::collections::BTreeMap;

use meridian_types::DcName;

use super::assess::{Assessment, VerdictConfig};
use crate::record::{DcState, Evidence};

/// A verdict the leader should write now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The datacenter.
    pub dc: DcName,
    /// Its new state.
    pub state: DcState,
    /// When the assessment first showed that state (leader's clock, ms).
    pub since_ms: u64,
    /// What the reporters outside it saw.
    pub evidence: Vec<Evidence>,
}

/// One datacenter's progress towards a new verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DcTrack {
    /// The assessment agrees with the recorded verdict (or nothing is assessed).
    Steady,
    /// The assessment has shown `to`, different from the record, continuously since `first_ms`.
    Changing {
        /// The state assessed.
        to: DcState,
        /// Since when.
        first_ms: u64,
    },
}

impl DcTrack {
    /// The next track for an assessed state, and whether the change is due now.
    fn step(
        self,
        recorded: Option<DcState>,
        assessed: DcState,
        now_ms: u64,
        config: &VerdictConfig,
    ) -> (DcTrack, bool) {
        if recorded == Some(assessed) {
            return (DcTrack::Steady, false);
        }
        let first_ms = match self {
            DcTrack::Changing { to, first_ms } if to == assessed => first_ms,
            DcTrack::Changing { .. } | DcTrack::Steady => now_ms,
        };
        let window = match (recorded, assessed) {
            (_, DcState::Down) => 0,
            (Some(_), DcState::Up) => config.stable_window_ms,
            _ => config.detection_window_ms,
        };
        (DcTrack::Changing { to: assessed, first_ms }, now_ms.saturating_sub(first_ms) >= window)
    }

    /// When the pending change was first assessed.
    fn first_ms(self) -> Option<u64> {
        match self {
            DcTrack::Changing { first_ms, .. } => Some(first_ms),
            DcTrack::Steady => None,
        }
    }
}

/// The leader's verdict tracks, one per datacenter.
#[derive(Clone, Debug)]
pub struct Verdicts {
    config: VerdictConfig,
    tracks: BTreeMap<DcName, DcTrack>,
}

impl Verdicts {
    /// Every track steady.
    pub fn new(config: VerdictConfig) -> Verdicts {
        Verdicts { config, tracks: BTreeMap::new() }
    }

    /// The tunables.
    pub fn config(&self) -> &VerdictConfig {
        &self.config
    }

    /// Feeds one round of assessments against the verdicts `recorded` in the store; returns the verdicts to
    /// write. A datacenter without an assessment keeps its track unchanged (nothing new is known of it). A change
    /// returned stays pending until the record shows it, so a write that failed is returned again next round.
    pub fn decide(
        &mut self,
        now_ms: u64,
        recorded: &BTreeMap<DcName, DcState>,
        assessed: BTreeMap<DcName, Assessment>,
    ) -> Vec<Change> {
        self.tracks.retain(|dc, _| assessed.contains_key(dc) || recorded.contains_key(dc));
        let mut changes = Vec::new();
        for (dc, assessment) in assessed {
            let track = self.tracks.remove(&dc).unwrap_or(DcTrack::Steady);
            let (next, due) = track.step(recorded.get(&dc).copied(), assessment.state, now_ms, &self.config);
            if due {
                let since_ms = next.first_ms().unwrap_or(now_ms);
                changes.push(Change {
                    dc: dc.clone(),
                    state: assessment.state,
                    since_ms,
                    evidence: assessment.evidence,
                });
            }
            self.tracks.insert(dc, next);
        }
        changes
    }

    /// The pending change of `dc`, if any: the state assessed and since when.
    pub fn track(&self, dc: &DcName) -> DcTrack {
        self.tracks.get(dc).copied().unwrap_or(DcTrack::Steady)
    }
}
