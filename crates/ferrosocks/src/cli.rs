//! The command line: options as Dante's sockd takes them, plus ferrosocks' own, and the
//! `migrate` and `collect` subcommands. The man page and shell completions are generated from this
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

    /// Receive shipped log files and write one multilog directory per sender
    ///
    /// Listens for shipments from ferrosocks' `logdir.ship` (or any `tcpclient HOST PORT
    /// sh -c 'cat >&7'`) and writes each line as socklog's `socklog ucspi TCPREMOTEIP`
    /// would, with `IP: ` first and a leading `<PRI>` as `facility.priority: `, into
    /// DIR/IP/ and DIR/all/, multilog directories (docs/logdir.md). Runs until SIGTERM
    /// or SIGINT, then leaves every directory cleanly finished.
    Collect(CollectArgs),
}

/// `ferrosocks collect`.
#[derive(Debug, Args)]
pub(crate) struct CollectArgs {
    /// Address and port to listen on (e.g. 0.0.0.0:10116; port 0: the kernel picks)
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) listen: std::net::SocketAddr,
    /// Directory holding all/ and one directory per sender IP
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// Rotate each directory's current past this many bytes (multilog's s)
    #[arg(long, value_name = "BYTES", default_value_t = 99_999,
          value_parser = clap::value_parser!(u64).range(4096..=16_777_215))]
    pub(crate) size: u64,
    /// Files kept per directory, current included (multilog's n)
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub(crate) count: u32,
    /// Do not put @TAI64N before each line (multilog's t, on by default)
    #[arg(long)]
    pub(crate) no_stamp: bool,
    /// Senders served at once; more are refused and reported
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub(crate) max_connections: usize,
    /// Longest line kept whole; a longer one is cut and goes on as a new line
    #[arg(long, value_name = "BYTES", default_value_t = 65_536,
          value_parser = clap::value_parser!(u64).range(1024..=16_777_215))]
    pub(crate) max_line: u64,
    /// Where the collector's own messages go: stderr (default), stdout, syslog[/FACILITY] or a file; repeatable
    #[arg(long = "log", value_name = "TARGET")]
    pub(crate) log: Vec<String>,
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
