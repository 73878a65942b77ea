//! One management connection: the password check ([`Auth`]) and the state around
//! [`crate::proto::parse`] ([`Conn`]: password first, then commands, and the lines of a
//! `client-auth` block). Re-exported by [`crate::proto`], whose module doc describes
//! them.

use std::fmt;

use crate::proto::{parse, reply, Command, LineTooLong};

/// Lines kept from a `client-auth` block.
pub const MAX_BLOCK_LINES: usize = 1000;
/// Password attempts before the connection is closed (`MANAGEMENT_N_PASSWORD_RETRIES`).
pub const PASSWORD_TRIES: u8 = 3;
/// What the server logs (OpenVPN: at warning) when it closes a connection for its
/// failed passwords.
pub const REJECTED_LOG: &str = "MAN: client connection rejected after 3 failed password attempts";

// === Password ===

/// The password check of one connection (§1.1).
pub struct Auth {
    /// The configured password; `None`: no check.
    password: Option<Box<[u8]>>,
    verified: bool,
    failures: u8,
}

/// What the server does after a password attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStep {
    /// Wrong: send [`reply::PROMPT`] again.
    Prompt,
    /// Right: send [`reply::PASSWORD_OK`] then [`reply::GREETING`]; from now on lines
    /// are commands.
    Accepted,
    /// The last attempt was wrong: log [`REJECTED_LOG`] and close, sending nothing.
    Close,
}

impl Auth {
    /// A connection to a server with this password (`None`: no password asked).
    pub fn new(password: Option<&str>) -> Self {
        Self {
            password: password.map(|p| p.as_bytes().into()),
            verified: password.is_none(),
            failures: 0,
        }
    }

    /// Whether the client has yet to give the password.
    pub fn needed(&self) -> bool {
        !self.verified
    }

    /// What a new connection is sent: the prompt, or the greeting when no password is
    /// asked.
    pub fn hello(&self) -> &'static str {
        if self.needed() {
            reply::PROMPT
        } else {
            reply::GREETING
        }
    }

    /// Checks a line sent as the password (only while [`Auth::needed`]; after that,
    /// every line is `Accepted` and nothing is checked).
    pub fn feed(&mut self, line: &str) -> AuthStep {
        if self.verified {
            return AuthStep::Accepted;
        }
        let right = self
            .password
            .as_deref()
            .is_some_and(|p| same_secret(line.as_bytes(), p));
        if right {
            self.verified = true;
            AuthStep::Accepted
        } else {
            self.fail()
        }
    }

    /// Counts an attempt that could not be right (a line too long).
    pub fn fail(&mut self) -> AuthStep {
        if self.verified {
            return AuthStep::Accepted;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= PASSWORD_TRIES {
            AuthStep::Close
        } else {
            AuthStep::Prompt
        }
    }

    /// Wrong attempts so far.
    pub fn failures(&self) -> u8 {
        self.failures
    }
}

impl fmt::Debug for Auth {
    /// Never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("verified", &self.verified)
            .field("failures", &self.failures)
            .finish()
    }
}

/// Compares a password attempt with the password in time that depends on the
/// attempt's length only: every byte of `given` is compared (with the password
/// repeated), and a length mismatch is one more difference.
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != secret.len());
    for (i, &g) in given.iter().enumerate() {
        let s = if secret.is_empty() {
            0
        } else {
            secret[i % secret.len()]
        };
        diff |= std::hint::black_box(g ^ s);
    }
    diff == 0
}

// === One connection ===

/// A management connection's protocol state: the password, then commands, and the
/// lines of a `client-auth` block.
#[derive(Debug)]
pub struct Conn {
    auth: Auth,
    /// A `client-auth` waiting for its `END`.
    block: Option<Command>,
}

/// What the server does with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes (a prompt, an `ERROR:` reply, the password's answer).
    Send(String),
    /// Run the command and send its reply. Never [`Command::Blank`] or
    /// [`Command::Quit`]; a [`Command::ClientAuth`] comes with its block's lines.
    Run(Command),
    /// Nothing to do (an empty line, a comment, a line of a `client-auth` block).
    Nothing,
    /// Close the connection without sending anything more (`quit`, or the last wrong
    /// password: then log [`REJECTED_LOG`]).
    Close,
}

impl Conn {
    /// A new connection to a server with this password (`None`: no password asked).
    pub fn new(password: Option<&str>) -> Self {
        Self {
            auth: Auth::new(password),
            block: None,
        }
    }

    /// What to send first: [`reply::PROMPT`] or [`reply::GREETING`].
    pub fn hello(&self) -> &'static str {
        self.auth.hello()
    }

    /// Whether the client may run commands (it gave the password, or none is asked).
    /// Send it nothing else (notifications included) until then.
    pub fn authenticated(&self) -> bool {
        !self.auth.needed()
    }

    /// Whether lines are going into a `client-auth` block.
    pub fn in_block(&self) -> bool {
        self.block.is_some()
    }

    /// Takes one line from [`Lines::next_line`](crate::proto::Lines::next_line) (a
    /// `String` or a `&str`).
    pub fn feed<S: AsRef<str>>(&mut self, line: Result<S, LineTooLong>) -> Step {
        let line = line.as_ref().map(AsRef::as_ref).map_err(|&e| e);
        if self.auth.needed() {
            let step = match line {
                Ok(l) => self.auth.feed(l),
                Err(LineTooLong) => self.auth.fail(),
            };
            return match step {
                AuthStep::Prompt => Step::Send(reply::PROMPT.into()),
                AuthStep::Accepted => {
                    Step::Send(format!("{}{}", reply::PASSWORD_OK, reply::GREETING))
                }
                AuthStep::Close => Step::Close,
            };
        }
        if let Some(Command::ClientAuth { config, .. }) = &mut self.block {
            match line {
                Ok("END") => return self.block.take().map_or(Step::Nothing, Step::Run),
                Ok(l) if config.len() < MAX_BLOCK_LINES => config.push(l.to_owned()),
                _ => {}
            }
            return Step::Nothing;
        }
        let Ok(line) = line else {
            return Step::Send(reply::LINE_TOO_LONG.into());
        };
        match parse(line) {
            Err(e) => Step::Send(e),
            Ok(Command::Blank) => Step::Nothing,
            Ok(Command::Quit) => Step::Close,
            Ok(c) if c.awaits_block() => {
                self.block = Some(c);
                Step::Nothing
            }
            Ok(c) => Step::Run(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOO_LONG: Result<&str, LineTooLong> = Err(LineTooLong);

    #[test]
    fn three_wrong_passwords_close_the_connection() {
        let mut a = Auth::new(Some("s3cret"));
        assert!(a.needed());
        assert_eq!(a.hello(), "ENTER PASSWORD:");
        assert_eq!(a.feed("secret"), AuthStep::Prompt);
        assert_eq!(a.feed(""), AuthStep::Prompt);
        assert_eq!(a.feed("s3cret "), AuthStep::Close);
        assert_eq!(a.failures(), 3);
        assert!(a.needed());
    }

    #[test]
    fn the_right_password_after_two_wrong_ones_is_accepted() {
        let mut a = Auth::new(Some("s3cret"));
        assert_eq!(a.feed("s3cre"), AuthStep::Prompt);
        assert_eq!(a.feed("s3cret2"), AuthStep::Prompt);
        assert_eq!(a.feed("s3cret"), AuthStep::Accepted);
        assert!(!a.needed());
    }

    #[test]
    fn no_password_means_no_prompt() {
        let a = Auth::new(None);
        assert!(!a.needed());
        assert_eq!(
            a.hello(),
            ">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n"
        );
    }

    #[test]
    fn an_empty_password_wants_an_empty_line() {
        let mut a = Auth::new(Some(""));
        assert_eq!(a.feed("x"), AuthStep::Prompt);
        assert_eq!(a.feed(""), AuthStep::Accepted);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abcabc", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        assert!(same_secret(b"", b""));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Conn::new(Some("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Auth::new(Some("hunter2"))).contains("hunter2"));
    }

    // --- connection ---

    #[test]
    fn a_password_line_is_never_run_and_nothing_but_the_prompt_is_sent() {
        let mut c = Conn::new(Some("pw"));
        assert_eq!(c.hello(), "ENTER PASSWORD:");
        assert!(!c.authenticated());
        // Commands and bad lines are password attempts: only prompts come back.
        assert_eq!(
            c.feed(Ok("signal SIGTERM")),
            Step::Send("ENTER PASSWORD:".into())
        );
        assert_eq!(c.feed(TOO_LONG), Step::Send("ENTER PASSWORD:".into()));
        assert_eq!(c.feed(Ok("quit")), Step::Close);
        assert!(!c.authenticated());
    }

    #[test]
    fn the_right_password_gets_success_and_the_greeting() {
        let mut c = Conn::new(Some("pw"));
        assert_eq!(c.feed(Ok("nope")), Step::Send("ENTER PASSWORD:".into()));
        assert_eq!(
            c.feed(Ok("pw")),
            Step::Send(
                "SUCCESS: password is correct\r\n\
                 >INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n"
                    .into()
            )
        );
        assert!(c.authenticated());
        // "pw" is now a command like any other.
        assert_eq!(
            c.feed(Ok("pw")),
            Step::Send("ERROR: unknown command, enter 'help' for more options\r\n".into())
        );
        assert_eq!(c.feed(Ok("pid")), Step::Run(Command::Pid));
    }

    #[test]
    fn commands_run_errors_are_sent_quit_closes() {
        let mut c = Conn::new(None);
        assert!(c.authenticated());
        assert_eq!(c.feed(Ok("status 2")), Step::Run(Command::Status(Some(2))));
        assert_eq!(c.feed(Ok("")), Step::Nothing);
        assert_eq!(
            c.feed(Ok("verb 99")),
            Step::Send("ERROR: verb level is out of range\r\n".into())
        );
        assert_eq!(
            c.feed(TOO_LONG),
            Step::Send("ERROR: command line is too long (4096 bytes max)\r\n".into())
        );
        assert_eq!(c.feed(Ok("exit")), Step::Close);
    }

    #[test]
    fn client_auth_collects_lines_until_end() {
        let mut c = Conn::new(None);
        assert_eq!(c.feed(Ok("client-auth 4 0")), Step::Nothing);
        assert!(c.in_block());
        // Inside the block nothing is a command, not even quit.
        assert_eq!(c.feed(Ok("push \"route 10.0.0.0\"")), Step::Nothing);
        assert_eq!(c.feed(Ok("quit")), Step::Nothing);
        assert_eq!(c.feed(TOO_LONG), Step::Nothing);
        assert_eq!(c.feed(Ok(" END")), Step::Nothing);
        assert_eq!(
            c.feed(Ok("END")),
            Step::Run(Command::ClientAuth {
                cid: 4,
                kid: 0,
                config: vec![
                    "push \"route 10.0.0.0\"".into(),
                    "quit".into(),
                    " END".into()
                ]
            })
        );
        assert!(!c.in_block());
        assert_eq!(c.feed(Ok("quit")), Step::Close);
    }

    #[test]
    fn an_empty_client_auth_block_and_a_bad_one() {
        let mut c = Conn::new(None);
        assert_eq!(c.feed(Ok("client-auth 4 0")), Step::Nothing);
        assert_eq!(
            c.feed(Ok("END")),
            Step::Run(Command::ClientAuth {
                cid: 4,
                kid: 0,
                config: vec![]
            })
        );
        // A client-auth that does not parse opens no block.
        assert_eq!(
            c.feed(Ok("client-auth x 0")),
            Step::Send("ERROR: cannot parse CID\r\n".into())
        );
        assert!(!c.in_block());
    }

    #[test]
    fn a_client_auth_block_keeps_a_bounded_number_of_lines() {
        let mut c = Conn::new(None);
        c.feed(Ok("client-auth 1 0"));
        for _ in 0..MAX_BLOCK_LINES + 50 {
            assert_eq!(c.feed(Ok("line")), Step::Nothing);
        }
        match c.feed(Ok("END")) {
            Step::Run(Command::ClientAuth { config, .. }) => {
                assert_eq!(config.len(), MAX_BLOCK_LINES)
            }
            s => panic!("{s:?}"),
        }
    }
}
