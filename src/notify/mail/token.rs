//! The thread token of `config.emails.ack_secret_file`: an HMAC-SHA256 of
//! a check's identity and its outage start, put in the Message-ID of every
//! mail of that outage's thread. `picomon mail-in` acts on a reply only
//! when its `In-Reply-To` carries the right token, so a forged reply from
//! someone who never saw the thread cannot acknowledge it.
//!
//! HMAC (RFC 2104) is written out here over the SHA-256 that rustls
//! already links (ring): a dozen lines instead of another crate.

use std::path::Path;

use crate::clock::UnixMicros;

/// SHA-256's block size in bytes (the HMAC key is padded to it).
const BLOCK: usize = 64;

/// The token's length in hex digits: 128 bits of the HMAC.
pub const TOKEN_HEX: usize = 32;

/// The marker before the token in a Message-ID's last dot-separated part.
pub const TOKEN_MARK: char = 'k';

/// A secret shorter than this is refused: a token is only as hard to
/// guess as its key.
const MIN_SECRET: usize = 16;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// HMAC-SHA256 of `message` under `key` (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&sha256(&[key]));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = sha256(&[&pad(0x36), message]);
    sha256(&[&pad(0x5c), &inner])
}

/// The key of the thread tokens. Its `Debug` does not show it, so a
/// logged or dumped composer never carries the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ThreadKey(Vec<u8>);

impl std::fmt::Debug for ThreadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThreadKey(..)")
    }
}

impl ThreadKey {
    /// The key in `text`: its first line, surrounding blanks removed.
    pub fn from_text(text: &str) -> Result<ThreadKey, String> {
        let line = text.lines().next().unwrap_or("").trim();
        if line.len() < MIN_SECRET {
            return Err(format!(
                "must hold a secret of at least {MIN_SECRET} characters on its first line; \
                 make one with: head -c 32 /dev/urandom | base64 > FILE"
            ));
        }
        Ok(ThreadKey(line.as_bytes().to_vec()))
    }

    /// Reads `config.emails.ack_secret_file` (through [`crate::secret`],
    /// so a copy read as root serves after the privilege drop).
    pub fn read(path: &Path) -> Result<ThreadKey, String> {
        let what = format!("config.emails.ack_secret_file {}", path.display());
        let text = crate::secret::read_to_string(path).map_err(|e| format!("{what}: {e}"))?;
        Self::from_text(&text).map_err(|e| format!("{what} {e}"))
    }

    /// The token of the thread of `check_id`'s outage that started at
    /// `start`: [`TOKEN_HEX`] lowercase hex digits.
    pub fn token(&self, check_id: &str, start: UnixMicros) -> String {
        let mac = hmac_sha256(
            &self.0,
            format!("picomon-thread\n{check_id}\n{start}").as_bytes(),
        );
        mac[..TOKEN_HEX / 2]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `token` is the token of that thread (compared in constant
    /// time: the position of a first wrong digit tells nothing).
    pub fn verify(&self, check_id: &str, start: UnixMicros, token: &str) -> bool {
        let want = self.token(check_id, start);
        want.len() == token.len()
            && want
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 4231 test cases 1, 2 and 6 (a key longer than a block).
    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_token_belongs_to_one_thread_and_one_key() {
        let k = ThreadKey::from_text("0123456789abcdef-secret\nignored").unwrap();
        let t = k.token("http on web1", 5);
        assert_eq!(t.len(), TOKEN_HEX);
        assert!(k.verify("http on web1", 5, &t));
        assert!(!k.verify("http on web1", 6, &t));
        assert!(!k.verify("http on web2", 5, &t));
        assert!(!k.verify("http on web1", 5, &t[1..]));
        let other = ThreadKey::from_text("another secret of enough length").unwrap();
        assert!(!other.verify("http on web1", 5, &t));
        assert!(ThreadKey::from_text("short")
            .unwrap_err()
            .contains("at least 16"));
        assert_eq!(format!("{k:?}"), "ThreadKey(..)");
    }
}
