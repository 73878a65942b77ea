//! `ferrosocks log stats|convert|grep`: the command line of the log reader (the
//! commands themselves are in `logcmd`).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// `ferrosocks log`.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    #[command(subcommand)]
    pub(crate) command: LogCommand,
}

/// What `ferrosocks log` does.
#[derive(Debug, Subcommand)]
pub(crate) enum LogCommand {
    /// Per-group traffic: sessions, blocked requests, bytes each way, durations
    ///
    /// A session is counted once, from its end-of-session summary (a `]:` line), or,
    /// while it is still open, from its last interim record (`log.interim`). A log
    /// with start lines only (no `log: disconnect`) counts sessions from them and
    /// says the bytes are unknown. Times are UTC. Recipes: accounting.md in the documentation (/usr/share/doc/ferrosocks).
    Stats(StatsArgs),
    /// Rewrite text log lines as ferrosocks' JSON lines (or CSV rows)
    ///
    /// Traffic records become the JSON objects the JSON log sink writes (every field of
    /// the typed record); other lines become {"msg": …} objects, or are counted and
    /// skipped with --strict.
    Convert(ConvertArgs),
    /// Print the traffic records whose fields match, as they are in the input
    ///
    /// Every option given must match. A record's client is the first endpoint of its
    /// client side and its target the last of its target side; I/O lines, whose
    /// direction a single line does not tell, match by either outer endpoint.
    Grep(GrepArgs),
}

/// The inputs and the time window, common to every `log` command.
#[derive(Debug, Args)]
pub(crate) struct InputArgs {
    /// Log files (plain, gzip or zstd, told by their first bytes); - is standard input
    #[arg(value_name = "FILE", default_value = "-")]
    pub(crate) files: Vec<PathBuf>,
    /// Only records at or after T (YYYY-MM-DD[THH:MM[:SS]][Z|±HH:MM] or @SECONDS; UTC)
    #[arg(long, value_name = "T")]
    pub(crate) since: Option<String>,
    /// Only records before T
    #[arg(long, value_name = "T")]
    pub(crate) until: Option<String>,
    /// No progress bar (shown on a terminal when several files are read)
    #[arg(long)]
    pub(crate) no_progress: bool,
}

/// `--format` of `log stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatsFormat {
    /// Aligned columns and a total row
    Table,
    /// Comma-separated values with a header row
    Csv,
    /// One JSON object per group and line
    Json,
}

/// `--by` of `log stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ByArg {
    /// The authenticated user (- when none)
    User,
    /// The client's address
    Client,
    /// The target's address (or name)
    Target,
    /// The target's port
    Port,
    /// socks-rule #N or client-rule #N
    Rule,
    /// YYYY-MM-DD (UTC)
    Day,
    /// YYYY-MM-DDTHH (UTC)
    Hour,
}

/// `--sort` of `log stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SortArg {
    /// By the group's key
    Key,
    /// Most sessions first
    Sessions,
    /// Most bytes first
    Bytes,
    /// Most blocked requests first
    Blocked,
}

/// `ferrosocks log stats`.
#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// Group by this; repeat for several (columns in the order given)
    #[arg(long, value_name = "WHAT")]
    pub(crate) by: Vec<ByArg>,
    /// Output format
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    pub(crate) format: StatsFormat,
    /// Row order
    #[arg(long, value_name = "ORDER", default_value = "key")]
    pub(crate) sort: SortArg,
    /// Only the first N rows (after sorting)
    #[arg(long, value_name = "N")]
    pub(crate) top: Option<usize>,
    #[command(flatten)]
    pub(crate) input: InputArgs,
}

/// `--to` of `log convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ToFormat {
    /// ferrosocks' JSON lines
    Json,
    /// One CSV row per traffic record, with a header row
    Csv,
}

/// `ferrosocks log convert`.
#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// Output format
    #[arg(long, value_name = "FORMAT")]
    pub(crate) to: ToFormat,
    /// Count and skip lines that are not traffic records instead of passing them on
    #[arg(long)]
    pub(crate) strict: bool,
    #[command(flatten)]
    pub(crate) input: InputArgs,
}

/// `ferrosocks log grep`.
#[derive(Debug, Args)]
pub(crate) struct GrepArgs {
    /// The user name
    #[arg(long, value_name = "NAME")]
    pub(crate) user: Option<String>,
    /// The client's address or CIDR block
    #[arg(long, value_name = "CIDR")]
    pub(crate) client: Option<String>,
    /// The target: an address, a CIDR block or a host name
    #[arg(long, value_name = "HOST")]
    pub(crate) target: Option<String>,
    /// The target's port
    #[arg(long, value_name = "PORT")]
    pub(crate) port: Option<u16>,
    /// pass or block
    #[arg(long, value_name = "VERDICT")]
    pub(crate) verdict: Option<String>,
    /// The rule number
    #[arg(long, value_name = "N")]
    pub(crate) rule: Option<u32>,
    /// accept, connect, bind, bindreply, udpassociate, udpreply or hostid
    #[arg(long, value_name = "COMMAND")]
    pub(crate) command: Option<String>,
    /// start, io, transient, stop, summary or interim
    #[arg(long, value_name = "PHASE")]
    pub(crate) phase: Option<String>,
    /// Print the matching records as JSON lines instead of as they are
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) input: InputArgs,
}

impl ByArg {
    pub(crate) fn dimension(self) -> accounting::Dimension {
        use accounting::Dimension as D;
        match self {
            Self::User => D::User,
            Self::Client => D::Client,
            Self::Target => D::Target,
            Self::Port => D::Port,
            Self::Rule => D::Rule,
            Self::Day => D::Day,
            Self::Hour => D::Hour,
        }
    }
}

impl SortArg {
    pub(crate) fn sort(self) -> accounting::render::Sort {
        use accounting::render::Sort as S;
        match self {
            Self::Key => S::Key,
            Self::Sessions => S::Sessions,
            Self::Bytes => S::Bytes,
            Self::Blocked => S::Blocked,
        }
    }
}
