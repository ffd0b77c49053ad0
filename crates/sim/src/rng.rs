//! The simulation's generator: every choice the runner and the simulated clients make comes from one seeded
//! [`SplitMix64`] stream (or a stream seeded from it), so a seed fixes the whole run.

pub use meridian_types::SplitMix64 as SimRng;
