//! The publisher and its scheduler, on top of everything else: `core` (what it holds, its locks), `run`
//! (a run of a dataset's due periods), `push` (the CKAN push after a run), `withdraw` (a deleted dataset),
//! `read` (what is published, for the public side) and `scheduler`.
mod core;
mod push;
mod read;
mod run;
mod scheduler;
mod withdraw;

pub use core::{Deps, Publisher};
pub use read::Publication;
pub use scheduler::run_scheduler;
