//! Removing secrets a server echoed back from what an error says.
//!
//! A token endpoint, a proxy or an error page may echo the request: the client secret as sent
//! in a form body (`client_secret=Q3h8Q%7EZt2...`), inside a JSON string (escaped), in an HTML
//! page (`&amp;`), or the `Authorization: Basic` value it received (base64 of `id:secret`), and
//! a server may cut the echo short. A [`Redactor`] knows the secrets of one token request and
//! replaces every form of them with `[redacted]`:
//!
//! - the secret written with any mix of literal characters, percent escapes (`%7E`, `%7e`;
//!   `+` for a space, as `application/x-www-form-urlencoded` writes it), JSON escapes (`\/`,
//!   `\u0041`, `\"`), and HTML character references (`&amp;`, `&#38;`, `&#x26;`): this covers
//!   the raw, form-encoded, RFC 3986 percent-encoded and JSON-escaped forms, whichever
//!   characters an encoder chose to escape;
//! - its form encoding written again in any of those ways (an echo that encoded it twice);
//! - its base64, in the standard and URL-safe alphabets, padded or not, alone or inside a longer
//!   base64 run at any of the three byte alignments (so also inside base64 of `id:secret`);
//! - for HTTP Basic, the whole base64 of `id:secret` in both encodings (RFC 7617 raw, and
//!   RFC 6749 §2.3.1 form-urlencoded then joined);
//! - at the end of a text (where a server or this crate cut it short), a trailing fragment of 4
//!   or more characters that starts any of the above.
//!
//! Secrets shorter than [`MIN_SECRET_LEN`] characters are not redacted: they would match
//! everywhere. Matching is pure and bounded (linear in the text for each secret form), so it
//! runs on every error a token endpoint answers with.
//!
//! ```
//! use tower_bearer::oauth::redact::Redactor;
//!
//! let redactor = Redactor::new()
//!     .secret("Q3h8Q~Zt2 x+y")
//!     .basic_credentials("client-id", "Q3h8Q~Zt2 x+y");
//! let echoed = "got client_secret=Q3h8Q%7EZt2+x%2By; header Basic Y2xpZW50LWlkOlEzaDhRflp0MiB4K3k=";
//! assert_eq!(
//!     redactor.redact(echoed),
//!     "got client_secret=[redacted]; header Basic [redacted]="
//! );
//! // A secret cut short where the text ends.
//! assert_eq!(redactor.redact("echo: Q3h8Q~Z"), "echo: [redacted]");
//! ```

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use crate::error::TokenError;

/// What a redacted secret is replaced with.
///
/// ```
/// use tower_bearer::oauth::redact::{REDACTED, Redactor};
///
/// assert_eq!(Redactor::new().secret("s3cr3t").redact("s3cr3t"), REDACTED);
/// ```
pub const REDACTED: &str = crate::error::REDACTED;

/// Secrets shorter than this many characters are not redacted (they would match everywhere).
///
/// ```
/// use tower_bearer::oauth::redact::{MIN_SECRET_LEN, Redactor};
///
/// assert!(Redactor::new().secret(&"x".repeat(MIN_SECRET_LEN - 1)).is_empty());
/// assert!(!Redactor::new().secret(&"x".repeat(MIN_SECRET_LEN)).is_empty());
/// ```
pub const MIN_SECRET_LEN: usize = 4;

/// A trailing fragment at least this many characters long that starts a secret form is
/// redacted.
const MIN_FRAGMENT: usize = 4;

/// The secrets of one token request, and how to find them in what a server said.
///
/// Holds the secrets' forms in memory that is wiped on drop; `Debug` shows only how many.
///
/// ```
/// use tower_bearer::oauth::redact::Redactor;
///
/// let redactor = Redactor::new().secret("s3cr3t/value");
/// assert_eq!(redactor.redact(r#"{"echo":"s3cr3t\/value"}"#), r#"{"echo":"[redacted]"}"#);
/// assert_eq!(redactor.redact("czNjcjN0L3ZhbHVl"), "[redacted]"); // base64
/// assert!(!format!("{redactor:?}").contains("s3cr3t"));
/// ```
#[derive(Clone, Default)]
pub struct Redactor {
    /// Each form, matched leniently (any mix of literal characters and escapes).
    forms: Vec<Zeroizing<String>>,
}

impl Redactor {
    /// A redactor that knows no secret (redacts nothing).
    ///
    /// ```
    /// use tower_bearer::oauth::redact::Redactor;
    ///
    /// assert!(Redactor::new().is_empty());
    /// assert_eq!(Redactor::new().redact("anything"), "anything");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Also redacts `secret` (a client secret, a client assertion) in every form: raw, escaped
    /// or encoded, base64. Ignored if shorter than [`MIN_SECRET_LEN`] characters.
    ///
    /// ```
    /// use tower_bearer::oauth::redact::Redactor;
    ///
    /// let redactor = Redactor::new().secret("a b~c");
    /// for echoed in ["a b~c", "a+b%7Ec", "a%20b%7ec", "a\\u0020b~c", "YSBifmM", "YSBifmM="] {
    ///     // (base64 padding, which says nothing, may stay)
    ///     assert!(redactor.redact(echoed).starts_with("[redacted]"), "{echoed}");
    /// }
    /// ```
    pub fn secret(mut self, secret: &str) -> Self {
        if secret.chars().count() < MIN_SECRET_LEN {
            return self;
        }
        let encoded = form_encode(secret);
        self.add_base64(secret.as_bytes());
        if encoded.as_str() != secret {
            self.add_base64(encoded.as_bytes());
            self.push(encoded);
        }
        self.push(Zeroizing::new(secret.to_owned()));
        self.sort();
        self
    }

    /// Also redacts the HTTP Basic credentials of `client_id` and `secret` as a whole: the
    /// base64 of `id:secret`, raw (RFC 7617) and form-urlencoded first (RFC 6749 §2.3.1), and
    /// the secret itself as [`secret`](Self::secret) does.
    ///
    /// ```
    /// use tower_bearer::oauth::redact::Redactor;
    ///
    /// let redactor = Redactor::new().basic_credentials("Aladdin", "open sesame");
    /// assert_eq!(redactor.redact("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), "Basic [redacted]==");
    /// ```
    pub fn basic_credentials(mut self, client_id: &str, secret: &str) -> Self {
        if secret.chars().count() < MIN_SECRET_LEN {
            return self;
        }
        let raw = Zeroizing::new(format!("{client_id}:{secret}"));
        let id = form_encode(client_id);
        let encoded_secret = form_encode(secret);
        let mut encoded =
            Zeroizing::new(String::with_capacity(id.len() + 1 + encoded_secret.len()));
        encoded.push_str(&id);
        encoded.push(':');
        encoded.push_str(&encoded_secret);
        for joined in [&raw, &encoded] {
            for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
                self.push(Zeroizing::new(engine.encode(joined.as_bytes())));
            }
        }
        self.secret(secret)
    }

    /// Whether this redactor knows no secret.
    ///
    /// ```
    /// use tower_bearer::oauth::redact::Redactor;
    ///
    /// assert!(Redactor::new().secret("abc").is_empty()); // too short to redact
    /// assert!(!Redactor::new().secret("abcd").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// `text` with every form of every secret, and a trailing fragment of one, replaced by
    /// [`REDACTED`].
    ///
    /// ```
    /// use tower_bearer::oauth::redact::Redactor;
    ///
    /// let redactor = Redactor::new().secret("Q3h8Q~Zt2");
    /// assert_eq!(redactor.redact("a Q3h8Q~Zt2 b Q3h8"), "a [redacted] b [redacted]");
    /// ```
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Matches start and end on character boundaries, so this is valid UTF-8.
            Cow::Owned(bytes) => Cow::Owned(match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }),
        }
    }

    /// Like [`redact`](Self::redact), on bytes (a response body before it is read as text).
    ///
    /// ```
    /// use tower_bearer::oauth::redact::Redactor;
    ///
    /// let redactor = Redactor::new().secret("Q3h8Q~Zt2");
    /// assert_eq!(&*redactor.redact_bytes(b"x=Q3h8Q%7EZt2&y=1"), b"x=[redacted]&y=1");
    /// ```
    pub fn redact_bytes<'a>(&self, text: &'a [u8]) -> Cow<'a, [u8]> {
        if self.forms.is_empty() || text.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut ranges = Vec::new();
        let mut scratch = Scratch::default();
        for form in &self.forms {
            find(text, form, &mut ranges, &mut scratch);
        }
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        ranges.sort_unstable();
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        let mut iter = ranges.into_iter().peekable();
        while let Some((start, mut end)) = iter.next() {
            while let Some(&(next_start, next_end)) = iter.peek() {
                if next_start > end {
                    break;
                }
                end = end.max(next_end);
                iter.next();
            }
            if start >= at {
                out.extend_from_slice(&text[at..start]);
                out.extend_from_slice(REDACTED.as_bytes());
            }
            at = at.max(end);
        }
        out.extend_from_slice(&text[at..]);
        Cow::Owned(out)
    }

    fn push(&mut self, form: Zeroizing<String>) {
        if form.chars().count() >= MIN_FRAGMENT && !self.forms.contains(&form) {
            self.forms.push(form);
        }
    }

    /// Longest first: where forms overlap, the longest match is found first.
    fn sort(&mut self) {
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    /// The base64 of `bytes` in both alphabets: the whole (a run that is just the secret), and
    /// for each of the three alignments in a longer run, the characters that depend on `bytes`
    /// alone.
    fn add_base64(&mut self, bytes: &[u8]) {
        for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            self.push(Zeroizing::new(engine.encode(bytes)));
            for offset in 0..3 {
                let mut padded = Zeroizing::new(Vec::with_capacity(offset + bytes.len() + 2));
                padded.resize(offset, 0);
                padded.extend_from_slice(bytes);
                padded.extend_from_slice(&[0, 0]);
                let encoded = Zeroizing::new(engine.encode(&padded[..]));
                // Character j holds bits [6j, 6j + 6); the secret's bits are
                // [8 offset, 8 (offset + len)).
                let first = (8 * offset).div_ceil(6);
                let end = (8 * (offset + bytes.len())) / 6;
                if end > first {
                    self.push(Zeroizing::new(encoded[first..end].to_owned()));
                }
            }
        }
    }
}

impl TokenError {
    /// Redacts every form of the secrets `redactor` knows from every piece of text the error
    /// holds: message, hint, code, support references and its details' strings (a server may
    /// echo a request back). The source, an error of another type, is kept as it is.
    pub(crate) fn redact(self, redactor: &Redactor) -> Self {
        if redactor.is_empty() {
            return self;
        }
        self.scrub_text(&|text| match redactor.redact(text) {
            Cow::Owned(redacted) => Some(redacted),
            Cow::Borrowed(_) => None,
        })
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("forms", &self.forms.len())
            .finish()
    }
}

/// `application/x-www-form-urlencoded`, in memory that is wiped on drop.
fn form_encode(text: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(3 * text.len()));
    for piece in form_urlencoded::byte_serialize(text.as_bytes()) {
        out.push_str(piece);
    }
    out
}

/// Reused buffers of the matcher.
#[derive(Default)]
struct Scratch {
    current: Vec<usize>,
    next: Vec<usize>,
}

/// Adds to `ranges` every place in `text` where `form` is written (leniently), and a trailing
/// fragment of it.
fn find(text: &[u8], form: &str, ranges: &mut Vec<(usize, usize)>, scratch: &mut Scratch) {
    let Some(first) = form.chars().next() else {
        return;
    };
    let mut start = 0;
    while start < text.len() {
        if !may_start(text[start], first) {
            start += 1;
            continue;
        }
        match match_at(text, start, form, scratch) {
            Some(Match::Full(end)) => {
                ranges.push((start, end));
                start = end;
            }
            Some(Match::Fragment) => {
                ranges.push((start, text.len()));
                return;
            }
            None => start += 1,
        }
    }
}

/// Whether a way of writing `c` starts with `byte`.
fn may_start(byte: u8, c: char) -> bool {
    let mut utf8 = [0; 4];
    byte == c.encode_utf8(&mut utf8).as_bytes()[0]
        || matches!(byte, b'%' | b'\\' | b'&')
        || (c == ' ' && byte == b'+')
}

enum Match {
    /// The whole form, ending here (the longest way).
    Full(usize),
    /// The text ends after at least [`MIN_FRAGMENT`] characters of the form.
    Fragment,
}

/// Matches `form` at `start`, each of its characters written literally or escaped. Tracks every
/// position a prefix of the form can end at (escapes can be ambiguous: `%` or `%25`).
fn match_at(text: &[u8], start: usize, form: &str, scratch: &mut Scratch) -> Option<Match> {
    let Scratch { current, next } = scratch;
    current.clear();
    current.push(start);
    let mut fragment = false;
    for (matched, c) in form.chars().enumerate() {
        next.clear();
        let ways = Ways::of(c);
        for &at in current.iter() {
            let rest = &text[at..];
            if rest.is_empty() {
                fragment |= matched >= MIN_FRAGMENT;
                continue;
            }
            for (way, ignore_case) in ways.iter() {
                if rest.len() >= way.len() {
                    if same(&rest[..way.len()], way, ignore_case) {
                        next.push(at + way.len());
                    }
                } else if matched >= MIN_FRAGMENT && same(rest, &way[..rest.len()], ignore_case) {
                    // Cut in the middle of an escape.
                    fragment = true;
                }
            }
        }
        if next.is_empty() {
            return fragment.then_some(Match::Fragment);
        }
        next.sort_unstable();
        next.dedup();
        std::mem::swap(current, next);
    }
    current.last().map(|&end| Match::Full(end))
}

fn same(a: &[u8], b: &[u8], ignore_case: bool) -> bool {
    if ignore_case {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// The ways one character may be written: literally, percent-encoded, `+` for a space, JSON
/// escapes, HTML character references. Escapes compare ignoring ASCII case (hex digits).
struct Ways {
    buf: Zeroizing<[[u8; 16]; 9]>,
    lens: [(usize, bool); 9],
    count: usize,
}

impl Ways {
    fn of(c: char) -> Self {
        let mut ways = Self {
            buf: Zeroizing::new([[0; 16]; 9]),
            lens: [(0, false); 9],
            count: 0,
        };
        let mut utf8 = [0; 4];
        let bytes = c.encode_utf8(&mut utf8).as_bytes();
        ways.push(bytes, false);
        let mut percent = [0; 12];
        for (i, b) in bytes.iter().enumerate() {
            percent[3 * i] = b'%';
            percent[3 * i + 1] = HEX[usize::from(b >> 4)];
            percent[3 * i + 2] = HEX[usize::from(b & 15)];
        }
        ways.push(&percent[..3 * bytes.len()], true);
        if c == ' ' {
            ways.push(b"+", false);
        }
        let short: &[u8] = match c {
            '"' => b"\\\"",
            '\\' => b"\\\\",
            '/' => b"\\/",
            '\u{8}' => b"\\b",
            '\u{c}' => b"\\f",
            '\n' => b"\\n",
            '\r' => b"\\r",
            '\t' => b"\\t",
            '&' => b"&amp;",
            '<' => b"&lt;",
            '>' => b"&gt;",
            '\'' => b"&apos;",
            _ => b"",
        };
        if !short.is_empty() {
            ways.push(short, false);
        }
        if c == '"' {
            ways.push(b"&quot;", true);
        }
        let mut units = [0u16; 2];
        let mut json = [0u8; 12];
        let mut len = 0;
        for unit in c.encode_utf16(&mut units).iter() {
            json[len..len + 2].copy_from_slice(b"\\u");
            for (i, shift) in [12, 8, 4, 0].into_iter().enumerate() {
                json[len + 2 + i] = HEX[usize::from((unit >> shift) & 15)];
            }
            len += 6;
        }
        ways.push(&json[..len], true);
        let mut html = [0u8; 16];
        let mut w = Cursor {
            buf: &mut html,
            len: 0,
        };
        let _ = fmt::Write::write_fmt(&mut w, format_args!("&#{};", u32::from(c)));
        let n = w.len;
        ways.push(&html[..n], false);
        let mut w = Cursor {
            buf: &mut html,
            len: 0,
        };
        let _ = fmt::Write::write_fmt(&mut w, format_args!("&#x{:X};", u32::from(c)));
        let n = w.len;
        ways.push(&html[..n], true);
        ways
    }

    fn push(&mut self, way: &[u8], ignore_case: bool) {
        if self.count < self.lens.len() && way.len() <= 16 {
            self.buf[self.count][..way.len()].copy_from_slice(way);
            self.lens[self.count] = (way.len(), ignore_case);
            self.count += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], bool)> {
        (0..self.count).map(|i| {
            let (len, ignore_case) = self.lens[i];
            (&self.buf[i][..len], ignore_case)
        })
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Formats into a fixed buffer (no allocation for a secret's characters).
struct Cursor<'a> {
    buf: &'a mut [u8; 16],
    len: usize,
}

impl fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    const SECRET: &str = "Q3h8Q~Zt2 s/e+c\"r&t<é>";

    fn forms(secret: &str) -> Vec<String> {
        let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let percent = |lower: bool| -> String {
            secret
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else if lower {
                        format!("%{b:02x}")
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        };
        let json = serde_json::to_string(secret).unwrap();
        let json = json[1..json.len() - 1].to_owned();
        let mut out = vec![
            secret.to_owned(),
            form.clone(),
            percent(false),
            percent(true),
            json.clone(),
            json.replace('/', "\\/"),
            form_urlencoded::byte_serialize(form.as_bytes()).collect(),
        ];
        for engine in [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            out.push(engine.encode(secret));
        }
        out
    }

    #[test]
    fn every_form_of_the_secret_is_redacted() {
        let redactor = Redactor::new().secret(SECRET);
        for form in forms(SECRET) {
            let text = format!("before {form} after");
            let redacted = redactor.redact(&text);
            assert!(
                redacted.starts_with("before [redacted]") && redacted.ends_with(" after"),
                "{form}: {redacted}"
            );
        }
    }

    #[test]
    fn html_references_are_redacted() {
        let redactor = Redactor::new().secret("a&b<c>\"d'");
        for text in [
            "a&amp;b&lt;c&gt;&quot;d&#39;",
            "a&#38;b&#x3c;c&#x3E;&#34;d&apos;",
        ] {
            assert_eq!(redactor.redact(text), "[redacted]", "{text}");
        }
    }

    #[test]
    fn base64_inside_a_longer_run_at_every_alignment() {
        let redactor = Redactor::new().secret(SECRET);
        for prefix in ["", "x", "xy", "xyz", "wxyz"] {
            for suffix in ["", "1", "12", "123"] {
                let run = format!("{prefix}{SECRET}{suffix}");
                for engine in [STANDARD, URL_SAFE, STANDARD_NO_PAD] {
                    let encoded = engine.encode(&run);
                    let redacted = redactor.redact(&encoded);
                    assert!(redacted.contains(REDACTED), "{run:?}: {redacted}");
                    // What is left is at most the characters shared with the neighbours.
                    assert!(
                        redacted.len() <= REDACTED.len() + 8 + 2 * 3,
                        "{run:?}: {redacted}"
                    );
                }
            }
        }
    }

    #[test]
    fn basic_credentials_in_both_encodings() {
        let id = "client id:1";
        let secret = "s3cr3t ~+";
        let redactor = Redactor::new().basic_credentials(id, secret);
        let raw = STANDARD.encode(format!("{id}:{secret}"));
        let id_enc: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let secret_enc: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let encoded = STANDARD.encode(format!("{id_enc}:{secret_enc}"));
        for value in [raw, encoded] {
            let text = format!("Authorization: Basic {value}");
            let redacted = redactor.redact(&text);
            assert!(
                redacted.starts_with("Authorization: Basic [redacted]"),
                "{redacted}"
            );
            assert!(redacted.len() <= "Authorization: Basic [redacted]==".len());
        }
    }

    #[test]
    fn a_fragment_at_the_end_is_redacted() {
        let redactor = Redactor::new().secret(SECRET);
        for form in forms(SECRET) {
            let chars: Vec<char> = form.chars().collect();
            for len in MIN_FRAGMENT..chars.len() {
                let cut: String = chars[..len].iter().collect();
                let text = format!("echo {cut}");
                let redacted = redactor.redact(&text);
                assert_eq!(redacted, "echo [redacted]", "{form} cut at {len}");
            }
        }
        // Shorter fragments, and fragments in the middle, are not secrets.
        assert_eq!(redactor.redact("Q3h"), "Q3h");
        assert_eq!(redactor.redact("Q3h8Q and more"), "Q3h8Q and more");
    }

    #[test]
    fn short_secrets_and_plain_text_are_left_alone() {
        let redactor = Redactor::new().secret("abc");
        assert!(redactor.is_empty());
        assert_eq!(redactor.redact("abc abc"), "abc abc");
        let redactor = Redactor::new().secret(SECRET);
        let text = "invalid_client: AADSTS7000215 % \\ & + 100%";
        assert!(matches!(redactor.redact(text), Cow::Borrowed(_)));
    }

    #[test]
    fn debug_shows_no_form() {
        let redactor = Redactor::new().basic_credentials("id", SECRET);
        let debug = format!("{redactor:?}");
        for form in forms(SECRET) {
            assert!(!debug.contains(&form), "{debug}");
        }
    }
}
