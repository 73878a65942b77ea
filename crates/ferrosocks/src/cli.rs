//! The command line: options as Dante's sockd takes them, plus ferrosocks' own, and the
//! `migrate` subcommand. The man page and shell completions are generated from this
//! definition (`packaging`, a test module that fails when the committed copies are stale).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod log;
#[cfg(test)]
mod packaging;

pub(crate) use log::{
    ConvertArgs, GrepArgs, InputArgs, LogArgs, LogCommand, StatsArgs, StatsFormat, ToFormat,
};

/// A SOCKS server that reads Dante's sockd.conf and writes Dante's traffic log.
///
/// With no -f and no /etc/ferrosocks.conf it runs on its embedded default: listening
/// on 127.0.0.1 port 1080, serving loopback clients only, logging to stderr.
#[derive(Debug, Parser)]
#[command(
    name = "ferrosocks",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Cli {
    /// Configuration file (Dante sockd.conf syntax)
    #[arg(short = 'f', value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Debug level 0, 1 or 2; wins over "debug:" in the file
    #[arg(short = 'd', value_name = "N", value_parser = clap::value_parser!(u8).range(0..=2))]
    pub(crate) debug: Option<u8>,
    /// Check the configuration and exit: 0 if it is good, else print every error
    #[arg(short = 'V')]
    pub(crate) verify: bool,
    /// Write the process id to FILE
    #[arg(short = 'p', value_name = "FILE")]
    pub(crate) pidfile: Option<PathBuf>,
    /// Detach from the terminal and run in the background
    #[arg(short = 'D')]
    pub(crate) detach: bool,
    /// Number of processes (accepted for Dante compatibility; ferrosocks uses threads)
    #[arg(short = 'N', value_name = "N")]
    pub(crate) processes: Option<u32>,
    /// Disable TCP keep-alive (accepted for Dante compatibility)
    #[arg(short = 'n')]
    pub(crate) no_keepalive: bool,
    /// Print the version and exit
    #[arg(short = 'v', long = "version")]
    pub(crate) version: bool,
    /// Print the license and exit
    #[arg(short = 'L', long = "license")]
    pub(crate) license: bool,
    /// Seconds open sessions get to finish after SIGTERM before they are cut
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub(crate) grace_period: u64,
    /// A subcommand instead of running the server
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// What ferrosocks can do besides serving.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print a Dante configuration rewritten as one ferrosocks runs
    ///
    /// Keywords ferrosocks does not support yet are commented out, each below a comment
    /// giving the reason; a pass rule that uses one is left out whole, a block rule loses
    /// only the keyword. The changes are also listed on stderr. A file with other errors
    /// (syntax, values Dante refuses too) has them all reported with file:line:column, and
    /// nothing is written (exit status 64).
    Migrate(MigrateArgs),
    /// Read Dante and ferrosocks logs: traffic accounting, conversion, filtering
    ///
    /// Reads any mix of Dante 1.4 and ferrosocks text logs (Dante's own prefix, a syslog
    /// daemon's RFC 3164 or RFC 5424 prefix, multilog @tai64n stamps), ferrosocks JSON
    /// lines, gzip- and zstd-compressed files and - for standard input. Malformed lines
    /// are counted and the first few reported with file:line on standard error.
    Log(LogArgs),
}

/// `ferrosocks migrate`.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// The Dante configuration to read (e.g. /etc/danted.conf)
    #[arg(long = "from-dante", value_name = "FILE")]
    pub(crate) from_dante: PathBuf,
    /// Write the result to FILE (only when there is no error) instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}
