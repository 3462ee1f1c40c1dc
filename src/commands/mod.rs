//! Bodies of the subcommands other than `serve`.

pub mod mock;
