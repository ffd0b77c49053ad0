//! Behaviour tests of the checkers over hand-written and generated histories.

mod util;
