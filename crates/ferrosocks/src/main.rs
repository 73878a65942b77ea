//! The `ferrosocks` binary: command line, start-up and shutdown. Thin on purpose; the
//! server lives in the `server` crate.
//!
//! Start-up order matters: parse and check the configuration (exit 64 on any error,
//! before binding anything), bind every listener, detach if asked (before any thread
//! exists), write the pid file, fork the privileged helper if privileges will be dropped
//! (still one thread), start the log writers, drop privileges, print the ready line,
//! then run the tokio runtime until SIGTERM/SIGINT. At exit the helper removes the pid
//! file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

mod cli;
mod collect;
mod logcmd;
mod migrate;
mod systemd;
use cli::Cli;
use server::control::{drop_privileges, log_config, serve_until_stopped, ReloadSource};
use server::privileged::{self, HelperSpec, Privileged};
use server::{listen, load_config, RunConfig, Server, Users, VERSION_LINE};

/// Exit status for a configuration that does not parse or cannot be used (sysexits EX_USAGE).
const EX_CONFIG: u8 = 64;
/// Exit status when the server cannot start (sysexits EX_OSERR).
const EX_START: u8 = 71;
/// The configuration read when no -f is given, if it exists.
const DEFAULT_CONFIG: &str = "/etc/ferrosocks.conf";

/// Prints a message on stderr with the program's name before every line.
fn complain(msg: &str) {
    let mut err = std::io::stderr().lock();
    for line in msg.lines().filter(|l| !l.trim().is_empty()) {
        let _ = writeln!(err, "ferrosocks: {line}");
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help goes to stdout with status 0, as clap prints it.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            complain(&e.render().to_string());
            return ExitCode::from(EX_CONFIG);
        }
    };
    // === subcommands (packaging: ferrosocks migrate) ===
    if let Some(cli::Command::Migrate(args)) = &cli.command {
        return migrate::run(args);
    }
    if let Some(cli::Command::Log(args)) = &cli.command {
        return logcmd::run(args);
    }
    if let Some(cli::Command::Collect(args)) = &cli.command {
        return collect::run(args);
    }
    // === end of subcommands ===
    if cli.version {
        println!("{VERSION_LINE}");
        return ExitCode::SUCCESS;
    }
    if cli.license {
        println!("ferrosocks is licensed under the MIT license or the Apache License 2.0, at your option.");
        return ExitCode::SUCCESS;
    }
    match start(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            complain(&msg);
            ExitCode::from(code)
        }
    }
}

/// The listening sockets: those systemd passed (socket activation), else bound now.
fn listeners(config: &sockd_conf::Config) -> Result<Vec<std::net::TcpListener>, String> {
    use std::os::fd::FromRawFd;
    let passed = sd_notify::listen_fds().map_err(|e| format!("socket activation: {e}"))?;
    if passed.len() == 0 {
        return listen::bind_all(config);
    }
    // SAFETY: systemd passed these descriptors to this process (LISTEN_PID is ours) and
    // nothing else owns them.
    let fds = passed
        .map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
        .collect();
    listen::adopt_all(config, fds)
}

/// The bound management listener and its password.
type Management = (mgmt::serve::Bound, Option<String>);

/// Binds the management interface (before privileges are dropped) and reads its
/// password; an error names the configuration line.
fn bind_management(config: &sockd_conf::Config) -> Result<Option<Management>, (u8, String)> {
    let Some(m) = &config.management else {
        return Ok(None);
    };
    let o = &config.origins;
    let at = |pos: Option<sockd_conf::Pos>, msg: String| {
        o.diagnostic(pos.unwrap_or_default(), msg).to_string()
    };
    let bound = mgmt::serve::Bound::bind(&m.listen).map_err(|e| {
        let what = match &m.listen {
            sockd_conf::MgmtListen::Tcp(a) => a.to_string(),
            sockd_conf::MgmtListen::Unix(p) => p.display().to_string(),
        };
        (
            EX_START,
            at(
                o.management,
                format!("management: cannot listen on {what}: {e}"),
            ),
        )
    })?;
    let password = match &m.password {
        Some(p) => Some(server::management_password(p).map_err(|e| {
            (
                EX_CONFIG,
                at(o.management_password, format!("management.password: {e}")),
            )
        })?),
        None => None,
    };
    Ok(Some((bound, password)))
}

/// The bound metrics listener and, with `metrics.control: on`, the management password
/// the dashboard's kill asks for.
type Metrics = (std::net::TcpListener, Option<String>);

/// Binds the metrics endpoint (before privileges are dropped); nothing listens without
/// `metrics:`. An error names the configuration line.
fn bind_metrics(config: &sockd_conf::Config) -> Result<Option<Metrics>, (u8, String)> {
    let Some(m) = &config.metrics else {
        return Ok(None);
    };
    let o = &config.origins;
    let listener = mgmt::metrics_http::bind(m.listen).map_err(|e| {
        let msg = format!("metrics: cannot listen on {}: {e}", m.listen);
        (
            EX_START,
            o.diagnostic(o.metrics.unwrap_or_default(), msg).to_string(),
        )
    })?;
    let password = match (
        m.control,
        config.management.as_ref().and_then(|m| m.password.as_ref()),
    ) {
        (true, Some(p)) => Some(server::management_password(p).map_err(|e| {
            (
                EX_CONFIG,
                o.diagnostic(
                    o.management_password.unwrap_or_default(),
                    format!("management.password: {e}"),
                )
                .to_string(),
            )
        })?),
        _ => None,
    };
    Ok(Some((listener, password)))
}

/// Every session uses two descriptors (four more while splicing bulk data): take all the
/// descriptors allowed — as root up to 262144, else the hard limit.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let wanted = 262_144.max(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_err() && soft < hard {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn start(cli: Cli) -> Result<(), (u8, String)> {
    let path = cli.file.clone().or_else(|| {
        Path::new(DEFAULT_CONFIG)
            .exists()
            .then(|| PathBuf::from(DEFAULT_CONFIG))
    });
    let config_name = path.as_ref().map_or_else(
        || "<embedded default>".to_string(),
        |p| p.display().to_string(),
    );
    let direct = Privileged::direct();
    let parsed = load_config(path.as_deref(), &direct).map_err(|e| {
        (
            EX_CONFIG,
            format!("{e}\n{config_name}: configuration has errors; not started"),
        )
    })?;
    let mut warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    // What binding, dropping privileges and opening files would meet, found before
    // anything is bound: -V and the start-up check the same things.
    let problems = server::preflight::check(&parsed.config);
    if !problems.is_empty() {
        let mut text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        text.push(format!(
            "{config_name}: configuration has errors; not started"
        ));
        return Err((EX_CONFIG, text.join("\n")));
    }
    let (mut run, more) = RunConfig::prepare(parsed.config, &direct).map_err(|e| (EX_CONFIG, e))?;
    warnings.extend(more);
    if cli.verify {
        for w in &warnings {
            complain(&format!("warning: {w}"));
        }
        println!("{config_name}: configuration OK");
        return Ok(());
    }

    raise_fd_limit();
    let listeners = listeners(&run.config).map_err(|e| (EX_START, e))?;
    let ready = listen::ready_line(&listeners);
    let first_listener = listeners.first().and_then(|l| l.local_addr().ok());
    let management = bind_management(&run.config)?;
    let metrics = bind_metrics(&run.config)?;
    let mgmt_socket: Vec<PathBuf> = management
        .as_ref()
        .and_then(|(b, _)| b.path().map(Path::to_path_buf))
        .into_iter()
        .collect();
    let remove_at_exit: Vec<&Path> = mgmt_socket.iter().map(PathBuf::as_path).collect();
    if cli.detach {
        println!("{ready}");
        let _ = std::io::stdout().flush();
        nix::unistd::daemon(true, false).map_err(|e| (EX_START, format!("cannot detach: {e}")))?;
    }
    if let Some(p) = &cli.pidfile {
        std::fs::write(p, format!("{}\n", std::process::id())).map_err(|e| {
            (
                EX_START,
                format!("cannot write pid file {}: {e}", p.display()),
            )
        })?;
    }

    // Dropping privileges: a helper keeps them for the chores that need them.
    let dropping =
        run.config.user_unprivileged.is_some() && nix::unistd::Uid::effective().is_root();
    let files = if dropping {
        use std::os::fd::AsRawFd;
        privileged::spawn(HelperSpec {
            config: path.clone(),
            pidfile: cli.pidfile.clone(),
            remove: mgmt_socket.clone(),
            user: run.config.user_privileged.clone(),
            close: listeners.iter().map(AsRawFd::as_raw_fd).collect(),
        })
        .map_err(|e| (EX_START, e))?
    } else {
        direct
    };
    if let Users::System(_) = run.users {
        run.users = Users::System(files.clone());
    }

    let logger = logsys::Logger::start(
        "ferrosocks",
        std::process::id(),
        log_config(&run, cli.debug),
    );
    if files.has_helper() {
        logger.set_opener(Box::new(files.clone()));
    }
    for w in &warnings {
        logger.warning(w.clone());
    }
    if let (Some(d), true) = (
        cli.debug,
        run.config.debug != cli.debug.unwrap_or(run.config.debug),
    ) {
        logger.info(format!(
            "debug level {d} from the command line overrides debug: {} in {config_name}",
            run.config.debug
        ));
    }
    if let Some(user) = run.config.user_unprivileged.clone() {
        match drop_privileges(&user) {
            Ok(true) => logger.info(format!("Running as user {user}")),
            Ok(false) => {}
            Err(e) => {
                logger.error(e.clone());
                logger.flush();
                let _ = files.finish(cli.pidfile.as_deref(), &remove_at_exit);
                return Err((EX_START, e));
            }
        }
    }
    logger.info(format!(
        "{VERSION_LINE} running, configuration {config_name}"
    ));
    if !cli.detach {
        println!("{ready}");
        let _ = std::io::stdout().flush();
    }

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = std::env::var("FERROSOCKS_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        builder.worker_threads(n);
    }
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| (EX_START, format!("cannot start the runtime: {e}")))?;
    let srv = Server::new(logger.clone(), run);
    let source = ReloadSource {
        path,
        debug_override: cli.debug,
        files: files.clone(),
    };
    let grace = Duration::from_secs(cli.grace_period);
    let controls = server::control::channel();
    let systemd = systemd::Systemd::from_env(logger.clone());
    let result = runtime.block_on(async {
        // The operator's interfaces run beside the server and end after it: the status
        // file is written a last time at a clean exit.
        let operators_stop = tokio_util::sync::CancellationToken::new();
        let status = tokio::spawn(mgmt::status_loop::run(srv.clone(), operators_stop.clone()));
        let mut watchers: Vec<std::sync::Arc<dyn server::control::Lifecycle>> =
            vec![systemd.clone()];
        let management = management.map(|(bound, password)| {
            let ctx = mgmt::serve::Context::new(
                srv.clone(),
                controls.0.clone(),
                password,
                first_listener,
            );
            watchers.push(ctx.clone());
            tokio::spawn(mgmt::serve::serve(bound, ctx, operators_stop.clone()))
        });
        let metrics = metrics.map(|(listener, password)| {
            let ctx = mgmt::metrics_http::Context::new(srv.clone(), controls.0.clone(), password);
            tokio::spawn(mgmt::metrics_http::serve(
                listener,
                ctx,
                operators_stop.clone(),
            ))
        });
        let notify = tokio::spawn(systemd.clone().run(
            srv.clone(),
            controls.0.clone(),
            listeners.len(),
        ));
        let result = serve_until_stopped(srv, listeners, grace, source, controls, &watchers).await;
        notify.abort();
        operators_stop.cancel();
        let _ = status.await;
        if let Some(m) = management {
            let _ = m.await;
        }
        if let Some(m) = metrics {
            let _ = m.await;
        }
        result
    });
    if let Err(e) = files.finish(cli.pidfile.as_deref(), &remove_at_exit) {
        logger.error(e);
    }
    logger.flush();
    // Log directories are left cleanly finished (current 0744).
    logger.close();
    result.map_err(|e| (EX_START, format!("signal handling failed: {e}")))
}
