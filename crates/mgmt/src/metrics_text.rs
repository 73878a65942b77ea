//! The exposition formats of `GET /metrics` (pure, no I/O): `prometheus-client` writes
//! OpenMetrics text; [`to_prometheus_text`] rewrites it as Prometheus text format 0.0.4
//! (what `promtool check metrics` and every Prometheus read), [`wants_openmetrics`]
//! reads the `Accept` header.
//!
//! The two formats differ only in framing: 0.0.4 has no `# EOF` and no `# UNIT`, names
//! a counter family by its sample name (`x_total`, where OpenMetrics says `x`), and has
//! no `info` type (an info family is a gauge named `x_info` whose value is 1).

/// The content type of text format 0.0.4.
pub const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of OpenMetrics text 1.0.0.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics (before any plain-text choice).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .map(|p| p.trim())
            .filter(|p| !p.ends_with(";q=0"))
            .any(|p| p.starts_with("application/openmetrics-text"))
    })
}

/// OpenMetrics text (as `prometheus-client` encodes it) as text format 0.0.4.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // A family's HELP comes before its TYPE, which decides its 0.0.4 name.
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gaugehistogram" | "stateset" | "unknown" => (name.to_string(), "untyped"),
                k => (name.to_string(), k),
            };
            let family = rest.split(' ').next().unwrap_or("");
            if let Some((_, text)) = help.take().filter(|(h, _)| *h == family) {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
        } else if !(line.starts_with("# UNIT ") || line == "# EOF") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_info_are_renamed_and_the_framing_goes() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total{rule=\"1\"} 3\n\
                  # HELP a_build The version.\n# TYPE a_build info\na_build_info{version=\"0.1.0\"} 1\n\
                  # HELP a_live Live.\n# TYPE a_live gauge\na_live 2\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total{rule=\"1\"} 3\n\
             # HELP a_build_info The version.\n# TYPE a_build_info gauge\na_build_info{version=\"0.1.0\"} 1\n\
             # HELP a_live Live.\n# TYPE a_live gauge\na_live 2\n"
        );
    }

    #[test]
    fn openmetrics_only_when_asked() {
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("text/plain;version=0.0.4")));
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
    }
}
