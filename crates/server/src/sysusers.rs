//! The system's users for `socksmethod: username` without a `passwordfile`, as Dante
//! checks them and as pam_unix does.
//!
//! [`check`] looks the user up with `getspnam_r(3)` (so nsswitch decides where the shadow
//! entry comes from) and hashes the password with libxcrypt's `crypt_rn(3)`, the
//! thread-safe form that takes its 32 KiB work area from us (on the heap, never on a
//! small blocking-pool stack). Whatever libxcrypt supports is supported: yescrypt
//! (`$y$`, Debian 12's default), sha512-crypt (`$6$`), sha256-crypt (`$5$`), bcrypt
//! (`$2b$`), md5-crypt (`$1$`) and the rest. The result is compared with the stored hash
//! in constant time. Hashing is slow on purpose: call [`check`] off the async threads.
//!
//! A user without a shadow entry is looked up with `getpwnam_r(3)`: a `pw_passwd` that
//! holds a hash is checked like a shadow one (as pam_unix does); `x` (the hash is in the
//! shadow file) means no such user for us, or [`Verdict::Unavailable`] when this process
//! cannot read shadow entries at all ([`can_read_shadow`]), so that a missing privilege
//! is not reported as a wrong user name.
//!
//! Never accepted:
//! - an empty hash field (no password at all), a locked account (`!…`, `!!`) or one
//!   without a password login (`*…`): [`Verdict::Locked`]; so is a hash that crypt
//!   cannot compute (`crypt_rn` returns NULL; a result starting with `*`, libxcrypt's
//!   failure token, is treated the same);
//! - with the right password, an account past its expiry date (`sp_expire` set and today
//!   on or after it, days since 1970-01-01; 0 counts, as for pam_unix) or one whose
//!   password must be changed first (last change 0, or older than `sp_max` days: pam_unix
//!   asks for a new password there, which a SOCKS client cannot give):
//!   [`Verdict::Expired`];
//! - a user name or password with a NUL byte (no C string can carry it):
//!   [`Verdict::UnknownUser`] and [`Verdict::WrongPassword`].
//!
//! An unknown user or a locked account costs one hash as well (with a fixed yescrypt
//! setting), so that how long a refusal takes does not tell which user names exist.
//! Nothing here logs; passwords, hashes and lookup buffers are wiped when dropped, and
//! no [`Verdict`] carries them.
//!
//! A process that has dropped privileges (`user.unprivileged`) cannot read shadow
//! entries unless it kept group `shadow`; [`can_read_shadow`] is there for a start-up
//! warning.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_long, c_void, CStr};
use std::ptr;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::unistd::{getegid, geteuid, getgroups, Group};

use crate::passwd::{constant_time_eq, Verdict};

/// Checks `password` for the system user `user` (the shadow entry, then crypt(3)).
pub fn check(user: &[u8], password: &[u8]) -> Verdict {
    let Some(name) = Wiped::c_string(user).filter(|_| !user.is_empty()) else {
        return Verdict::UnknownUser;
    };
    let Some(phrase) = Wiped::c_string(password) else {
        return Verdict::WrongPassword;
    };
    let entry = match lookup(&name) {
        Ok(Some(e)) => e,
        Ok(None) => {
            dummy_hash(&phrase);
            return Verdict::UnknownUser;
        }
        Err(Unavailable) => return Verdict::Unavailable,
    };
    if !is_hash(entry.hash.text()) {
        dummy_hash(&phrase);
        return Verdict::Locked;
    }
    match hash_matches(&phrase, &entry.hash) {
        None => Verdict::Locked,
        Some(false) => Verdict::WrongPassword,
        Some(true) => match entry.aging {
            Some(a) if !a.allows(today()) => Verdict::Expired,
            _ => Verdict::Accepted,
        },
    }
}

/// Whether this process can read shadow entries (root, or member of group shadow): for a start-up warning.
pub fn can_read_shadow() -> bool {
    if geteuid().is_root() {
        return true;
    }
    let Ok(Some(shadow)) = Group::from_name("shadow") else {
        return false;
    };
    getegid() == shadow.gid || getgroups().is_ok_and(|g| g.contains(&shadow.gid))
}

/// A user's stored hash and, from a shadow entry, its aging fields.
struct Entry {
    hash: Wiped,
    aging: Option<Aging>,
}

/// The lookup failed for another reason than "no such user".
struct Unavailable;

/// The account fields of a shadow entry, in days (since 1970-01-01 for dates); -1 is
/// an empty field.
#[derive(Debug, Clone, Copy)]
struct Aging {
    last_change: c_long,
    max_days: c_long,
    expire: c_long,
}

impl Aging {
    /// Whether the account may log in on day `today`, as pam_unix's account check
    /// decides: not expired, and no new password required.
    fn allows(&self, today: c_long) -> bool {
        if self.expire >= 0 && today >= self.expire {
            return false;
        }
        match self.last_change {
            0 => false,
            // Aging off (empty field), or a change date in the future.
            c if c < 0 || today < c => true,
            c => self.max_days < 0 || today - c <= self.max_days,
        }
    }
}

/// The shadow entry, else a passwd entry whose password field is not in the shadow file.
fn lookup(name: &Wiped) -> Result<Option<Entry>, Unavailable> {
    if let Some(e) = shadow_entry(name)? {
        return Ok(Some(e));
    }
    let Some(field) = passwd_field(name)? else {
        return Ok(None);
    };
    if is_shadowed(field.text(), name.text()) {
        return if can_read_shadow() {
            Ok(None)
        } else {
            Err(Unavailable)
        };
    }
    Ok(Some(Entry {
        hash: field,
        aging: None,
    }))
}

/// pam_unix's test: the password field says "see the shadow file".
fn is_shadowed(field: &[u8], name: &[u8]) -> bool {
    field == b"x" || field.strip_prefix(b"##") == Some(name)
}

/// Whether a stored field can be a hash at all: not empty, not locked (`!`), not
/// "no password login" (`*`).
fn is_hash(field: &[u8]) -> bool {
    !matches!(field.first(), None | Some(b'!' | b'*'))
}

fn shadow_entry(name: &Wiped) -> Result<Option<Entry>, Unavailable> {
    with_buffer(|buf| {
        // SAFETY: spwd is a C struct of pointers and integers, for which all-zero is a
        // valid value; getspnam_r overwrites it.
        let mut sp: libc::spwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::spwd = ptr::null_mut();
        // SAFETY: name is NUL-terminated; sp, found and buf (buf.len() bytes) are valid
        // for writes for the whole call.
        let rc = unsafe {
            libc::getspnam_r(
                name.as_c_ptr(),
                &mut sp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc != 0 {
            return Err(rc);
        }
        if found.is_null() {
            return Ok(None);
        }
        // SAFETY: on success sp_pwdp is null or a C string inside buf, which is alive.
        let hash = unsafe { c_bytes(sp.sp_pwdp) };
        Ok(Some(Entry {
            hash,
            aging: Some(Aging {
                last_change: sp.sp_lstchg,
                max_days: sp.sp_max,
                expire: sp.sp_expire,
            }),
        }))
    })
}

fn passwd_field(name: &Wiped) -> Result<Option<Wiped>, Unavailable> {
    with_buffer(|buf| {
        // SAFETY: passwd is a C struct of pointers and integers, for which all-zero is a
        // valid value; getpwnam_r overwrites it.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = ptr::null_mut();
        // SAFETY: name is NUL-terminated; pw, found and buf (buf.len() bytes) are valid
        // for writes for the whole call.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_c_ptr(),
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc != 0 {
            return Err(rc);
        }
        if found.is_null() {
            return Ok(None);
        }
        // SAFETY: on success pw_passwd is null or a C string inside buf, which is alive.
        Ok(Some(unsafe { c_bytes(pw.pw_passwd) }))
    })
}

/// Runs a `get*nam_r` call with a buffer that doubles on ERANGE. `call` returns the
/// call's error number, or what it found copied out of the buffer.
fn with_buffer<T>(
    mut call: impl FnMut(&mut [u8]) -> Result<Option<T>, c_int>,
) -> Result<Option<T>, Unavailable> {
    const FIRST: usize = 1024;
    const LIMIT: usize = 1 << 20;
    let mut buf = Wiped(vec![0; FIRST]);
    loop {
        match call(&mut buf.0) {
            Ok(found) => return Ok(found),
            Err(libc::ERANGE) if buf.0.len() < LIMIT => buf = Wiped(vec![0; buf.0.len() * 2]),
            // Some NSS modules say "no such user" this way.
            Err(libc::ENOENT) => return Ok(None),
            Err(_) => return Err(Unavailable),
        }
    }
}

/// Copies a C string (null: empty) into a wiped buffer.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string valid for the call.
unsafe fn c_bytes(p: *const c_char) -> Wiped {
    if p.is_null() {
        return Wiped::empty();
    }
    // SAFETY: the caller's contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    // A CStr has no interior NUL.
    Wiped::c_string(bytes).unwrap_or_else(Wiped::empty)
}

#[link(name = "crypt")]
extern "C" {
    /// libxcrypt: hashes `phrase` with `setting` (a hash or a salt string) in `data`;
    /// returns a string inside `data`, or NULL on failure.
    fn crypt_rn(
        phrase: *const c_char,
        setting: *const c_char,
        data: *mut c_void,
        size: c_int,
    ) -> *mut c_char;
}

/// `sizeof (struct crypt_data)`, fixed by libxcrypt's ABI; crypt_rn refuses a smaller area.
const CRYPT_DATA_SIZE: usize = 32768;

/// A yescrypt setting with Debian's default cost, hashed against for unknown users.
const DUMMY_SETTING: &[u8] = b"$y$j9T$NoZ7YWQ9qEhnXYsHmIArX1";

/// Whether `phrase` hashes to `stored`; `None` when crypt cannot use `stored`.
fn hash_matches(phrase: &Wiped, stored: &Wiped) -> Option<bool> {
    let mut data = Wiped(vec![0; CRYPT_DATA_SIZE]);
    // SAFETY: phrase and stored are NUL-terminated; data is a zeroed, writable area of
    // the size passed (alignment 1: struct crypt_data holds only chars).
    let out = unsafe {
        crypt_rn(
            phrase.as_c_ptr(),
            stored.as_c_ptr(),
            data.0.as_mut_ptr().cast(),
            CRYPT_DATA_SIZE as c_int,
        )
    };
    if out.is_null() {
        return None;
    }
    // SAFETY: on success crypt_rn returns a C string inside data, which is alive.
    let hashed = unsafe { CStr::from_ptr(out) }.to_bytes();
    if hashed.first() == Some(&b'*') {
        return None;
    }
    Some(constant_time_eq(hashed, stored.text()))
}

/// Spends the time a real check would.
fn dummy_hash(phrase: &Wiped) {
    if let Some(setting) = Wiped::c_string(DUMMY_SETTING) {
        let _ = hash_matches(phrase, &setting);
    }
}

/// Days since 1970-01-01 (UTC), the unit of shadow dates.
fn today() -> c_long {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    c_long::try_from(secs / 86400).unwrap_or(c_long::MAX)
}

/// Bytes that are zeroed when dropped: passwords, hashes, lookup buffers.
struct Wiped(Vec<u8>);

impl Wiped {
    fn empty() -> Self {
        Self(vec![0])
    }

    /// A NUL-terminated copy of `bytes`, or `None` if they hold a NUL.
    fn c_string(bytes: &[u8]) -> Option<Self> {
        if bytes.contains(&0) {
            return None;
        }
        let mut v = Vec::with_capacity(bytes.len() + 1);
        v.extend_from_slice(bytes);
        v.push(0);
        Some(Self(v))
    }

    /// The string without its NUL (for a buffer made by `c_string`).
    fn text(&self) -> &[u8] {
        self.0.strip_suffix(&[0]).unwrap_or(&self.0)
    }

    fn as_c_ptr(&self) -> *const c_char {
        self.0.as_ptr().cast()
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the compiler from dropping the writes as dead stores.
        std::hint::black_box(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, PoisonError};

    use super::*;

    // === crypt and the pure decisions (no root needed) ===

    #[test]
    fn crypt_rn_computes_known_hashes() {
        // sha512-crypt: the test vector of Drepper's specification.
        let vector = b"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
        let stored = Wiped::c_string(vector).unwrap();
        let right = Wiped::c_string(b"Hello world!").unwrap();
        let wrong = Wiped::c_string(b"Hello world?").unwrap();
        assert_eq!(hash_matches(&right, &stored), Some(true));
        assert_eq!(hash_matches(&wrong, &stored), Some(false));
        // yescrypt, computed with the same setting as the dummy.
        let y = Wiped::c_string(
            b"$y$j9T$NoZ7YWQ9qEhnXYsHmIArX1$sGf/Yp6yZ6fDommJ9Qob6/qIbO1cmLMFTYigY9ZPya2",
        )
        .unwrap();
        let phrase = Wiped::c_string(b"ferrosocks: no such user").unwrap();
        assert_eq!(hash_matches(&phrase, &y), Some(true));
        assert_eq!(hash_matches(&right, &y), Some(false));
        // bcrypt, made by the bcrypt crate.
        let b = bcrypt::hash("s3cret", 4).unwrap();
        let b = Wiped::c_string(b.as_bytes()).unwrap();
        assert_eq!(
            hash_matches(&Wiped::c_string(b"s3cret").unwrap(), &b),
            Some(true)
        );
        assert_eq!(hash_matches(&right, &b), Some(false));
    }

    #[test]
    fn crypt_failures_are_none() {
        let phrase = Wiped::c_string(b"pw").unwrap();
        // (An empty salt is fine for libxcrypt: "$6$" hashes to "$6$$…".)
        let bad: [&[u8]; 7] = [
            b"$9$unknown-scheme",
            b"",
            b"!",
            b"*0",
            b"a",
            b"$y$",
            b"$2b$99$abcdefghijklmnopqrstuv",
        ];
        for setting in bad {
            let s = Wiped::c_string(setting).unwrap();
            assert_eq!(
                hash_matches(&phrase, &s),
                None,
                "{}",
                String::from_utf8_lossy(setting)
            );
        }
    }

    #[test]
    fn fields_that_are_not_hashes() {
        for f in [&b""[..], b"!", b"!!", b"!$6$abc$def", b"*", b"*LK*"] {
            assert!(!is_hash(f), "{}", String::from_utf8_lossy(f));
        }
        assert!(is_hash(b"$y$j9T$abc$def"));
        assert!(is_shadowed(b"x", b"alice"));
        assert!(is_shadowed(b"##alice", b"alice"));
        assert!(!is_shadowed(b"##bob", b"alice"));
        assert!(!is_shadowed(b"$6$abc$def", b"alice"));
    }

    #[test]
    fn aging_follows_pam_unix() {
        let today = 20_000;
        let a = |last_change, max_days, expire| Aging {
            last_change,
            max_days,
            expire,
        };
        assert!(a(19_990, 99_999, -1).allows(today));
        assert!(a(-1, 30, -1).allows(today), "aging off");
        assert!(a(20_010, 5, -1).allows(today), "change date in the future");
        assert!(a(19_990, 10, -1).allows(today), "exactly max days old");
        assert!(!a(19_989, 10, -1).allows(today), "older than max days");
        assert!(a(19_989, -1, -1).allows(today), "no max");
        assert!(!a(0, -1, -1).allows(today), "must change at next login");
        assert!(a(19_990, -1, 20_001).allows(today), "expires tomorrow");
        assert!(!a(19_990, -1, 20_000).allows(today), "expires today");
        assert!(!a(19_990, -1, 1).allows(today));
        assert!(!a(19_990, -1, 0).allows(today), "0 counts, as for pam_unix");
    }

    #[test]
    fn nul_bytes_and_empty_names_are_refused_without_a_lookup() {
        assert_eq!(check(b"", b"pw"), Verdict::UnknownUser);
        assert_eq!(check(b"root\0", b"pw"), Verdict::UnknownUser);
        assert_eq!(check(b"root", b"pw\0"), Verdict::WrongPassword);
    }

    #[test]
    fn wiped_c_strings() {
        let w = Wiped::c_string(b"abc").unwrap();
        assert_eq!(w.0, b"abc\0");
        assert_eq!(w.text(), b"abc");
        assert!(Wiped::c_string(b"a\0b").is_none());
        assert_eq!(Wiped::empty().text(), b"");
    }

    // === real users (root, as CI runs ./test.sh) ===

    #[test]
    fn default_chpasswd_is_yescrypt() {
        right_and_wrong(None, "$y$");
    }

    #[test]
    fn sha512_crypt() {
        right_and_wrong(Some("SHA512"), "$6$");
    }

    #[test]
    fn sha256_crypt() {
        right_and_wrong(Some("SHA256"), "$5$");
    }

    #[test]
    fn md5_crypt() {
        right_and_wrong(Some("MD5"), "$1$");
    }

    #[test]
    fn bcrypt_set_as_a_hash() {
        let u = TestUser::new();
        let hash = bcrypt::hash("bcrypt pw", 4).unwrap();
        assert!(hash.starts_with("$2b$"));
        u.set_hash(&hash);
        assert_eq!(check(u.name(), b"bcrypt pw"), Verdict::Accepted);
        assert_eq!(check(u.name(), b"bcrypt px"), Verdict::WrongPassword);
    }

    #[test]
    fn unknown_user() {
        require_root();
        let name = format!("fsk-test-{}-none", std::process::id());
        assert_eq!(check(name.as_bytes(), b"pw"), Verdict::UnknownUser);
    }

    #[test]
    fn locked_user_is_refused_even_with_the_right_password() {
        let u = TestUser::new();
        u.set_password("locked pw", None);
        u.admin("usermod", &["-L"]);
        assert!(u.shadow_hash().starts_with("!$y$"));
        assert_eq!(check(u.name(), b"locked pw"), Verdict::Locked);
        assert_eq!(check(u.name(), b"other"), Verdict::Locked);
        u.admin("usermod", &["-U"]);
        assert_eq!(check(u.name(), b"locked pw"), Verdict::Accepted);
    }

    #[test]
    fn users_without_a_usable_hash_are_refused() {
        let u = TestUser::new();
        // useradd leaves "!": no password yet.
        assert_eq!(u.shadow_hash(), "!");
        assert_eq!(check(u.name(), b""), Verdict::Locked);
        assert_eq!(check(u.name(), b"!"), Verdict::Locked);
        for field in ["", "*", "!!", "$9$unknown$scheme"] {
            u.admin("usermod", &["-p", field]);
            assert_eq!(u.shadow_hash(), field);
            assert_eq!(check(u.name(), b""), Verdict::Locked, "{field:?}");
            assert_eq!(check(u.name(), field.as_bytes()), Verdict::Locked);
        }
    }

    #[test]
    fn expired_user_is_refused_with_the_right_password() {
        let u = TestUser::new();
        u.set_password("expiring pw", Some("SHA512"));
        u.admin("chage", &["-E", "0"]);
        assert_eq!(check(u.name(), b"expiring pw"), Verdict::Expired);
        assert_eq!(check(u.name(), b"wrong"), Verdict::WrongPassword);
        u.admin("usermod", &["-e", "1970-01-02"]);
        assert_eq!(check(u.name(), b"expiring pw"), Verdict::Expired);
        u.admin("chage", &["-E", "2200-01-01"]);
        assert_eq!(check(u.name(), b"expiring pw"), Verdict::Accepted);
        u.admin("chage", &["-E", "-1"]);
        assert_eq!(check(u.name(), b"expiring pw"), Verdict::Accepted);
        // A password that must be changed first cannot be used either.
        u.admin("chage", &["-d", "0"]);
        assert_eq!(check(u.name(), b"expiring pw"), Verdict::Expired);
    }

    #[test]
    fn nul_in_the_password_of_a_real_user() {
        let u = TestUser::new();
        u.set_password("nul pw", Some("SHA512"));
        assert_eq!(check(u.name(), b"nul pw\0"), Verdict::WrongPassword);
        assert_eq!(check(u.name(), b"nul pw\0tail"), Verdict::WrongPassword);
        assert_eq!(check(u.name(), b"nul pw"), Verdict::Accepted);
    }

    #[test]
    fn checks_in_parallel_threads() {
        let a = TestUser::new();
        let b = TestUser::new();
        a.set_password("pw a", None);
        b.set_password("pw b", Some("SHA512"));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..3 {
                        assert_eq!(check(a.name(), b"pw a"), Verdict::Accepted);
                        assert_eq!(check(b.name(), b"pw b"), Verdict::Accepted);
                        assert_eq!(check(a.name(), b"pw b"), Verdict::WrongPassword);
                    }
                });
            }
        });
    }

    #[test]
    fn root_can_read_shadow() {
        require_root();
        assert!(can_read_shadow());
    }

    /// Set for the child half of `without_shadow_access_the_verdict_is_unavailable`.
    const CHILD_USER: &str = "FERROSOCKS_SYSUSERS_CHILD_USER";

    #[test]
    fn without_shadow_access_the_verdict_is_unavailable() {
        let u = TestUser::new();
        u.set_password("child pw", None);
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sysusers::tests::child_half_without_shadow_access",
                "--nocapture",
            ])
            .env(CHILD_USER, String::from_utf8_lossy(u.name()).as_ref())
            .uid(nobody.uid.as_raw())
            .gid(nobody.gid.as_raw())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "the child as nobody:\n{text}");
        assert!(text.contains("1 passed"), "the child did not run:\n{text}");
    }

    /// Runs only when the test above starts it as user nobody.
    #[test]
    fn child_half_without_shadow_access() {
        let Ok(user) = std::env::var(CHILD_USER) else {
            return;
        };
        assert!(!geteuid().is_root());
        assert!(!can_read_shadow());
        assert_eq!(check(user.as_bytes(), b"child pw"), Verdict::Unavailable);
        assert_eq!(check(user.as_bytes(), b"wrong"), Verdict::Unavailable);
    }

    fn right_and_wrong(method: Option<&str>, prefix: &str) {
        let u = TestUser::new();
        u.set_password("right pw", method);
        assert!(
            u.shadow_hash().starts_with(prefix),
            "{method:?} should store a {prefix} hash"
        );
        assert_eq!(check(u.name(), b"right pw"), Verdict::Accepted);
        assert_eq!(check(u.name(), b"right pW"), Verdict::WrongPassword);
        assert_eq!(check(u.name(), b"right p"), Verdict::WrongPassword);
        assert_eq!(check(u.name(), b"right pw "), Verdict::WrongPassword);
        assert_eq!(check(u.name(), b""), Verdict::WrongPassword);
    }

    fn require_root() {
        assert!(
            geteuid().is_root(),
            "the sysusers tests create system users with useradd and need root: \
             run them as root (./test.sh runs as root in CI)"
        );
    }

    /// The user tools lock /etc/passwd and /etc/shadow; one at a time in this process.
    static ADMIN: Mutex<()> = Mutex::new(());
    static NEXT: AtomicUsize = AtomicUsize::new(0);

    /// A system user made with useradd, removed with userdel when dropped.
    struct TestUser {
        name: String,
    }

    impl TestUser {
        fn new() -> Self {
            require_root();
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            // The guard exists before useradd runs: whatever useradd did is undone.
            let u = Self {
                name: format!("fsk-test-{}-{n}", std::process::id()),
            };
            run(
                Command::new("useradd")
                    .args(["-M", "-N", "-s", "/usr/sbin/nologin"])
                    .arg(&u.name),
                None,
            );
            u
        }

        fn name(&self) -> &[u8] {
            self.name.as_bytes()
        }

        /// chpasswd with its default (PAM: yescrypt on Debian 12) or `-c METHOD`.
        fn set_password(&self, password: &str, method: Option<&str>) {
            let mut cmd = Command::new("chpasswd");
            if let Some(m) = method {
                cmd.args(["-c", m]);
            }
            run(&mut cmd, Some(&format!("{}:{password}\n", self.name)));
        }

        fn set_hash(&self, hash: &str) {
            run(
                Command::new("chpasswd").arg("-e"),
                Some(&format!("{}:{hash}\n", self.name)),
            );
        }

        /// Runs `program ARGS… NAME`.
        fn admin(&self, program: &str, args: &[&str]) {
            run(Command::new(program).args(args).arg(&self.name), None);
        }

        /// The password field of the shadow entry, as getent shows it.
        fn shadow_hash(&self) -> String {
            let out = Command::new("getent")
                .args(["shadow", &self.name])
                .output()
                .unwrap();
            assert!(out.status.success(), "getent shadow {}", self.name);
            let line = String::from_utf8(out.stdout).unwrap();
            line.split(':').nth(1).unwrap().to_owned()
        }
    }

    impl Drop for TestUser {
        fn drop(&mut self) {
            let _lock = ADMIN.lock().unwrap_or_else(PoisonError::into_inner);
            match Command::new("userdel").arg(&self.name).output() {
                Ok(o) if o.status.success() => {}
                Ok(o) => eprintln!(
                    "userdel {}: {}",
                    self.name,
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => eprintln!("userdel {}: {e}", self.name),
            }
        }
    }

    /// Runs a user tool (one at a time), with `input` on stdin; panics if it fails.
    fn run(cmd: &mut Command, input: Option<&str>) {
        let _lock = ADMIN.lock().unwrap_or_else(PoisonError::into_inner);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        if let Some(text) = input {
            stdin.write_all(text.as_bytes()).unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
