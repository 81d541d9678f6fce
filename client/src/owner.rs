//! The secret that identifies one claim on every node.

use std::fmt;

use rand::rngs::OsRng;
use rand::TryRngCore;

use crate::error::Error;

/// How many random bytes an owner has. 160 bits: nobody guesses or collides with it.
const OWNER_BYTES: usize = 20;

/// The owner value sent with every `DEDUP.*` call of one claim: 20 bytes from the operating
/// system's random number generator, hex-encoded (40 ASCII characters).
///
/// The module only lets the owner extend, release, complete or fence a claim, so the owner is a
/// capability: whoever knows it can act as the holder. It is therefore never logged, never shown
/// by `Debug`, and never sent anywhere but to the nodes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Owner(String);

impl Owner {
    /// Draws a fresh owner from the OS RNG.
    pub(crate) fn random() -> Result<Owner, Error> {
        let mut bytes = [0u8; OWNER_BYTES];
        OsRng.try_fill_bytes(&mut bytes).map_err(|e| Error::Entropy(e.to_string()))?;
        Ok(Owner(hex(&bytes)))
    }

    /// The hex text, as sent to the nodes.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Owner(<redacted>)")
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_40_lowercase_hex_digits_and_distinct() {
        let a = Owner::random().unwrap();
        let b = Owner::random().unwrap();
        for owner in [&a, &b] {
            assert_eq!(owner.as_str().len(), 40);
            assert!(owner.as_str().bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        }
        assert_ne!(a, b, "two draws of 160 random bits collided");
    }

    #[test]
    fn hex_encodes_each_byte_as_two_digits() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let owner = Owner::random().unwrap();
        let shown = format!("{owner:?}");
        assert!(!shown.contains(owner.as_str()));
        assert_eq!(shown, "Owner(<redacted>)");
    }
}
