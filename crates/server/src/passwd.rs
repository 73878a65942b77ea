//! The password file for `socksmethod: username`, in Apache htpasswd format.
//!
//! bcrypt entries (`$2y$`, `$2b$`, `$2a$`: what `htpasswd -B` writes) are checked with
//! the `bcrypt` crate. A line without a recognised hash prefix is taken as a plain
//! `user:password` pair and accepted with a warning that names the line. Other hash
//! schemes htpasswd can write (`$apr1$` MD5, `{SHA}`, crypt) are refused with a warning
//! naming the line, and that user cannot log in: those hashes are weak, and the fix is
//! one `htpasswd -B` away.

use std::collections::HashMap;

/// Users and how to check their passwords.
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    users: HashMap<Vec<u8>, Entry>,
}

#[derive(Clone)]
enum Entry {
    Bcrypt(String),
    Plain(Vec<u8>),
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bcrypt(_) => "Bcrypt(<hash>)",
            Self::Plain(_) => "Plain(<hidden>)",
        })
    }
}

/// The result of checking a user's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right.
    Accepted,
    /// No such user.
    UnknownUser,
    /// The password is wrong.
    WrongPassword,
    /// The account has no usable password: locked (`!`), no password login (`*`), an
    /// empty field, or a hash crypt(3) cannot check (system users).
    Locked,
    /// The password is right but the account has expired or its password must be
    /// changed first (system users).
    Expired,
    /// The user's password could not be read: no permission for shadow entries, or the
    /// lookup failed (system users).
    Unavailable,
}

impl Verdict {
    /// Why a login was refused, for the log; `None` when it was accepted.
    pub fn failure_reason(self) -> Option<&'static str> {
        match self {
            Self::Accepted => None,
            Self::UnknownUser => Some("unknown user"),
            Self::WrongPassword => Some("password mismatch"),
            Self::Locked => Some("account locked or without a password"),
            Self::Expired => Some("account or password expired"),
            Self::Unavailable => Some("cannot read the system's password entry"),
        }
    }
}

impl PasswordFile {
    /// Parses htpasswd text; `name` labels warnings.
    pub fn parse(name: &str, text: &[u8]) -> (Self, Vec<String>) {
        let mut users = HashMap::new();
        let mut warnings = Vec::new();
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            let lineno = i + 1;
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                warnings.push(format!(
                    "{name}:{lineno}: no \":\" between user and password; line ignored"
                ));
                continue;
            };
            let (user, secret) = (&line[..colon], &line[colon + 1..]);
            let user_shown = String::from_utf8_lossy(user);
            let entry = if [&b"$2y$"[..], b"$2b$", b"$2a$"]
                .iter()
                .any(|p| secret.starts_with(p))
            {
                Entry::Bcrypt(String::from_utf8_lossy(secret).into_owned())
            } else if secret.starts_with(b"$apr1$")
                || secret.starts_with(b"{SHA}")
                || secret.starts_with(b"$1$")
                || secret.starts_with(b"$5$")
                || secret.starts_with(b"$6$")
            {
                warnings.push(format!(
                    "{name}:{lineno}: user \"{user_shown}\" has a hash type ferrosocks does not accept (use htpasswd -B for bcrypt); user ignored"
                ));
                continue;
            } else {
                warnings.push(format!(
                    "{name}:{lineno}: user \"{user_shown}\" has a plain-text password; accepted, but store a bcrypt hash (htpasswd -B)"
                ));
                Entry::Plain(secret.to_vec())
            };
            users.insert(user.to_vec(), entry);
        }
        (Self { users }, warnings)
    }

    /// Checks a password. bcrypt is slow on purpose: call this off the async threads.
    pub fn check(&self, user: &[u8], password: &[u8]) -> Verdict {
        match self.users.get(user) {
            None => Verdict::UnknownUser,
            Some(Entry::Bcrypt(hash)) => match bcrypt::verify(password, hash) {
                Ok(true) => Verdict::Accepted,
                _ => Verdict::WrongPassword,
            },
            Some(Entry::Plain(p)) => {
                if constant_time_eq(p, password) {
                    Verdict::Accepted
                } else {
                    Verdict::WrongPassword
                }
            }
        }
    }

    /// Number of users that can log in.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user can log in.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Compares without returning early at the first difference.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_plain_and_refused_entries() {
        let hash = bcrypt::hash("s3cret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        let text = format!("alice:{hash}\nbob:plainpw\ncarol:$apr1$abc$def\n# comment\nbroken\n");
        let (f, warnings) = PasswordFile::parse("users", text.as_bytes());
        assert_eq!(f.check(b"alice", b"s3cret"), Verdict::Accepted);
        assert_eq!(f.check(b"alice", b"wrong"), Verdict::WrongPassword);
        assert_eq!(f.check(b"bob", b"plainpw"), Verdict::Accepted);
        assert_eq!(f.check(b"bob", b"plainpx"), Verdict::WrongPassword);
        assert_eq!(f.check(b"carol", b"x"), Verdict::UnknownUser);
        assert_eq!(f.len(), 2);
        assert_eq!(warnings.len(), 3);
        assert!(warnings[0].starts_with("users:2: user \"bob\" has a plain-text password"));
        assert!(warnings[1].starts_with("users:3: user \"carol\""));
        assert!(warnings[2].starts_with("users:5: no \":\""));
        assert!(!warnings.iter().any(|w| w.contains("plainpw")));
    }
}
