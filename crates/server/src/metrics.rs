//! The process's metrics: one `prometheus-client` registry of counters, gauges and
//! histograms, updated by the events of [`crate::events`] (never by hand elsewhere) and
//! encoded for `GET /metrics` by [`encode`].
//!
//! Labels are bounded by the configuration, never by traffic: a rule number, a command,
//! a verdict, a method, a route number, an `EAI_*` name, a reason from a fixed list. No
//! client address, user or target is ever a label.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// `rule`: a client or socks rule's number (0: the default block rule).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// The rule's number.
    pub rule: u32,
}

/// A socks request's decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `connect`, `bind`, `bindreply`, `udpassociate`, `udpreply`.
    pub command: &'static str,
    /// `pass`, `block`, or `error` (passed but failed before it started).
    pub verdict: &'static str,
    /// The socks rule's number.
    pub rule: u32,
}

/// Bytes relayed one way.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BytesLabels {
    /// `client_to_target` or `target_to_client`.
    pub direction: &'static str,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
}

/// `command`: a session's command (`negotiating` until its request is read).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    /// The command.
    pub command: &'static str,
}

/// `method`: an authentication method's Dante name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// The method.
    pub method: &'static str,
}

/// `class`: an `EAI_*` name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabels {
    /// The class.
    pub class: &'static str,
}

/// `route`: a route's number.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route.
    pub route: u32,
}

/// `reason`: why a datagram was dropped, from a fixed list.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The reason.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

/// Every family.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub(crate) accepted: Family<RuleLabels, Counter>,
    pub(crate) blocked: Family<RuleLabels, Counter>,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) bytes: Family<BytesLabels, Counter>,
    pub(crate) active: Family<CommandLabels, Gauge>,
    pub(crate) negotiate: Histogram,
    pub(crate) connect: Histogram,
    pub(crate) resolve: Histogram,
    pub(crate) duration: Histogram,
    pub(crate) auth_failures: Family<MethodLabels, Counter>,
    pub(crate) dns_failures: Family<ClassLabels, Counter>,
    pub(crate) upstream_failures: Family<RouteLabels, Counter>,
    pub(crate) udp_dropped: Family<ReasonLabels, Counter>,
    open_fds: Gauge,
    max_fds: Gauge,
}

/// The process's one registry.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Latency buckets from 100 µs to about 52 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

/// The descriptors open now (`/proc/self/fd`), and the soft limit.
fn fds() -> (i64, i64) {
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64 - 1);
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(0, |(soft, _)| soft as i64);
    (open, limit)
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let m = Self {
            registry: Registry::default(),
            accepted: Family::default(),
            blocked: Family::default(),
            requests: Family::default(),
            bytes: Family::default(),
            active: Family::default(),
            negotiate: latency(),
            connect: latency(),
            resolve: latency(),
            duration: Histogram::new(exponential_buckets(0.01, 4.0, 12)),
            auth_failures: Family::default(),
            dns_failures: Family::default(),
            upstream_failures: Family::default(),
            udp_dropped: Family::default(),
            open_fds: Gauge::default(),
            max_fds: Gauge::default(),
        };
        let r = &mut registry;
        r.register(
            "ferrosocks_connections_accepted",
            "Connections that passed a client rule (`pass(N): tcp/accept [:` records)",
            m.accepted.clone(),
        );
        r.register(
            "ferrosocks_connections_blocked",
            "Connections a client rule blocked (`block(N): tcp/accept ]:` records of that rule)",
            m.blocked.clone(),
        );
        r.register(
            "ferrosocks_requests",
            "Socks requests by command, verdict (pass, block, error) and socks rule",
            m.requests.clone(),
        );
        r.register(
            "ferrosocks_relayed_bytes",
            "Bytes relayed, counted from the end-of-session summaries' counters",
            m.bytes.clone(),
        );
        r.register(
            "ferrosocks_sessions_active",
            "Live sessions by command (negotiating until the request is read)",
            m.active.clone(),
        );
        r.register(
            "ferrosocks_negotiate_duration_seconds",
            "Time from accept to the end of negotiation (method, authentication, request)",
            m.negotiate.clone(),
        );
        r.register(
            "ferrosocks_connect_duration_seconds",
            "Time to connect to a target (all its addresses in turn), successful or not",
            m.connect.clone(),
        );
        r.register(
            "ferrosocks_resolve_duration_seconds",
            "Time of one name lookup, successful or not",
            m.resolve.clone(),
        );
        r.register(
            "ferrosocks_session_duration_seconds",
            "Sessions' lives from accept to end",
            m.duration.clone(),
        );
        r.register(
            "ferrosocks_auth_failures",
            "Failed authentications by method",
            m.auth_failures.clone(),
        );
        r.register(
            "ferrosocks_dns_failures",
            "Failed name lookups by getaddrinfo class",
            m.dns_failures.clone(),
        );
        r.register(
            "ferrosocks_upstream_failures",
            "Failed chaining through an upstream proxy, by route",
            m.upstream_failures.clone(),
        );
        r.register(
            "ferrosocks_udp_datagrams_dropped",
            "UDP datagrams dropped, by reason",
            m.udp_dropped.clone(),
        );
        r.register(
            "process_open_fds",
            "Open file descriptors",
            m.open_fds.clone(),
        );
        r.register(
            "process_max_fds",
            "The descriptor limit (RLIMIT_NOFILE, soft)",
            m.max_fds.clone(),
        );
        r.register(
            "ferrosocks_build",
            "The running version",
            Info::new(VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        let start: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        start.set(epoch);
        r.register(
            "process_start_time_seconds",
            "When the process started, in seconds since the Unix epoch",
            start,
        );
        registry.register_collector(Box::new(LogCollector));
        Self { registry, ..m }
    }
}

/// Logging's own counts (`logsys::stats`), read at each scrape.
#[derive(Debug)]
struct LogCollector;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogLabels {
    subsystem: &'static str,
    level: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

impl Collector for LogCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let records = logsys::stats::records();
        if !records.is_empty() {
            let mut family = encoder.encode_descriptor(
                "ferrosocks_log_records",
                "Log records written (past their threshold and mute), by subsystem and level",
                None,
                MetricType::Counter,
            )?;
            for (sub, level, n) in records {
                let labels = LogLabels {
                    subsystem: sub.name(),
                    level: level.name(),
                };
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        let sinks = logsys::stats::sinks();
        if sinks.is_empty() {
            return Ok(());
        }
        for (name, help, pick) in [
            (
                "ferrosocks_log_sink_dropped_records",
                "Log lines dropped for a sink while it was stalled",
                (|s: &logsys::stats::SinkStats| s.dropped) as fn(&logsys::stats::SinkStats) -> u64,
            ),
            (
                "ferrosocks_log_sink_stalls",
                "Times a log sink stalled (its queue full)",
                |s: &logsys::stats::SinkStats| s.stalls,
            ),
            (
                "ferrosocks_log_sink_failures",
                "Times a log sink's writes started failing (disk full, socket gone, ...)",
                |s: &logsys::stats::SinkStats| s.failures,
            ),
            (
                "ferrosocks_log_sink_lost_records",
                "Log lines that could not be written to a sink",
                |s: &logsys::stats::SinkStats| s.lost,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for s in &sinks {
                let labels = SinkLabels {
                    sink: s.name.clone(),
                };
                ConstCounter::new(pick(s)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The registry in OpenMetrics text (with `# EOF`), after reading the values that are
/// sampled at a scrape (descriptors).
pub fn encode() -> String {
    let m = &*METRICS;
    let (open, limit) = fds();
    m.open_fds.set(open);
    m.max_fds.set(limit);
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &m.registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_and_type_and_counters_end_in_total() {
        crate::events::RequestDecided {
            command: traffic_log::Command::Connect,
            decision: crate::events::Decision::Pass,
            rule: 1,
        }
        .emit();
        let text = encode();
        assert!(text.contains("# TYPE ferrosocks_requests counter"));
        assert!(text.contains("# HELP ferrosocks_requests "));
        assert!(text.contains(
            "ferrosocks_requests_total{command=\"connect\",verdict=\"pass\",rule=\"1\"}"
        ));
        assert!(text.contains("ferrosocks_build_info{version=\""));
        assert!(text.ends_with("# EOF\n"));
    }
}
