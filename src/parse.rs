//! Turns DEDUP.* arguments into typed requests for the state machine.
//!
//! Every argument is checked before anything is read or written, so a bad call changes nothing.
//! Inputs are the arguments after the key, as raw bytes: keys, owners, fingerprints and results are
//! binary-safe.

use crate::entry::{Phase, MAX_FINGERPRINT_BYTES, MAX_OWNER_BYTES, MAX_TOKEN};
use crate::errors::CommandError;
use crate::machine::{
    ClaimRequest, CompleteRequest, ExtendRequest, FenceRequest, PutRequest, ReleaseRequest,
};

/// The configurable bounds that parsing enforces (dedup.max-ttl-ms, dedup.max-result-bytes).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_ttl_ms: i64,
    pub max_result_bytes: usize,
}

/// Parses a Redis-style integer: an optional minus sign and digits, nothing else.
fn integer(arg: &[u8]) -> Option<i64> {
    if arg.first() == Some(&b'+') {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

fn duration(arg: &[u8], name: &'static str, limits: &Limits) -> Result<i64, CommandError> {
    let err = CommandError::InvalidDuration { name, max: limits.max_ttl_ms };
    let ms = integer(arg).ok_or(err.clone())?;
    if (1..=limits.max_ttl_ms).contains(&ms) {
        Ok(ms)
    } else {
        Err(err)
    }
}

fn token(arg: &[u8], name: &'static str) -> Result<u64, CommandError> {
    integer(arg)
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t <= MAX_TOKEN)
        .ok_or(CommandError::InvalidToken { name })
}

fn owner(arg: &[u8]) -> Result<&[u8], CommandError> {
    if (1..=MAX_OWNER_BYTES).contains(&arg.len()) {
        Ok(arg)
    } else {
        Err(CommandError::InvalidOwner)
    }
}

fn fingerprint(arg: &[u8]) -> Result<&[u8], CommandError> {
    if (1..=MAX_FINGERPRINT_BYTES).contains(&arg.len()) {
        Ok(arg)
    } else {
        Err(CommandError::InvalidFingerprint)
    }
}

fn result<'a>(arg: &'a [u8], limits: &Limits) -> Result<&'a [u8], CommandError> {
    if arg.len() <= limits.max_result_bytes {
        Ok(arg)
    } else {
        Err(CommandError::ResultTooLarge { max: limits.max_result_bytes })
    }
}

/// Walks `NAME value` option pairs. Names are case-insensitive; an unknown, repeated or
/// value-less option is a syntax error.
fn options<'a>(
    rest: &[&'a [u8]],
    names: &[&str],
    mut accept: impl FnMut(usize, &'a [u8]) -> Result<(), CommandError>,
) -> Result<(), CommandError> {
    // A bit per option name: commands have at most four options.
    let mut seen = 0u32;
    for pair in rest.chunks(2) {
        let [name, value] = pair else { return Err(CommandError::Syntax) };
        let idx = names
            .iter()
            .position(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            .ok_or(CommandError::Syntax)?;
        if seen & (1 << idx) != 0 {
            return Err(CommandError::Syntax);
        }
        seen |= 1 << idx;
        accept(idx, value)?;
    }
    Ok(())
}

/// `ttl-ms owner [FP fingerprint]`
pub fn claim<'a>(args: &[&'a [u8]], limits: &Limits) -> Result<ClaimRequest<'a>, CommandError> {
    let [ttl, who, rest @ ..] = args else { return Err(CommandError::WrongArity) };
    let mut req = ClaimRequest {
        ttl_ms: duration(ttl, "ttl-ms", limits)?,
        owner: owner(who)?,
        fingerprint: None,
    };
    options(rest, &["FP"], |_, v| {
        req.fingerprint = Some(fingerprint(v)?);
        Ok(())
    })?;
    Ok(req)
}

/// `ttl-ms owner`
pub fn extend<'a>(args: &[&'a [u8]], limits: &Limits) -> Result<ExtendRequest<'a>, CommandError> {
    let [ttl, who] = args else { return Err(CommandError::WrongArity) };
    Ok(ExtendRequest { ttl_ms: duration(ttl, "ttl-ms", limits)?, owner: owner(who)? })
}

/// `owner`
pub fn release<'a>(args: &[&'a [u8]]) -> Result<ReleaseRequest<'a>, CommandError> {
    let [who] = args else { return Err(CommandError::WrongArity) };
    Ok(ReleaseRequest { owner: owner(who)? })
}

/// `retention-ms owner [RESULT value]`
pub fn complete<'a>(
    args: &[&'a [u8]],
    limits: &Limits,
) -> Result<CompleteRequest<'a>, CommandError> {
    let [retention, who, rest @ ..] = args else { return Err(CommandError::WrongArity) };
    let mut req = CompleteRequest {
        retention_ms: duration(retention, "retention-ms", limits)?,
        owner: owner(who)?,
        result: None,
    };
    options(rest, &["RESULT"], |_, v| {
        req.result = Some(result(v, limits)?);
        Ok(())
    })?;
    Ok(req)
}

/// `token owner`
pub fn fence<'a>(args: &[&'a [u8]]) -> Result<FenceRequest<'a>, CommandError> {
    let [t, who] = args else { return Err(CommandError::WrongArity) };
    Ok(FenceRequest { token: token(t, "token")?, owner: owner(who)? })
}

/// nothing after the key
pub fn status(args: &[&[u8]]) -> Result<(), CommandError> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(CommandError::WrongArity)
    }
}

/// `token owner phase [PXAT unix-ms] [COUNTER n] [FP fingerprint] [RESULT value]`
///
/// The result limit is not applied here: PUT restores what a server already accepted, and an
/// AOF must replay even if dedup.max-result-bytes was lowered since.
pub fn put<'a>(args: &[&'a [u8]]) -> Result<PutRequest<'a>, CommandError> {
    let [t, who, phase, rest @ ..] = args else { return Err(CommandError::WrongArity) };
    let mut req = PutRequest {
        token: token(t, "token")?,
        owner: owner(who)?,
        phase: Phase::parse(phase).ok_or(CommandError::InvalidPhase)?,
        expires_at: None,
        counter_floor: None,
        fingerprint: None,
        result: None,
    };
    options(rest, &["PXAT", "COUNTER", "FP", "RESULT"], |idx, v| {
        match idx {
            0 => {
                let at = integer(v).filter(|ms| *ms > 0);
                req.expires_at = Some(at.ok_or(CommandError::InvalidUnixTime { name: "PXAT" })?);
            }
            1 => req.counter_floor = Some(token(v, "COUNTER")?),
            2 => req.fingerprint = Some(fingerprint(v)?),
            _ => req.result = Some(v),
        }
        Ok(())
    })?;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_ttl_ms: 1_000, max_result_bytes: 4 };

    fn args(s: &[&'static str]) -> Vec<&'static [u8]> {
        s.iter().map(|a| a.as_bytes()).collect()
    }

    #[test]
    fn claim_accepts_valid_forms() {
        let r = claim(&args(&["1000", "me"]), &LIMITS).unwrap();
        assert_eq!((r.ttl_ms, r.owner, r.fingerprint), (1000, &b"me"[..], None));
        let r = claim(&args(&["1", "me", "fp", "abc"]), &LIMITS).unwrap();
        assert_eq!(r.fingerprint, Some(&b"abc"[..]));
        let nul = [b'a', 0, b'b'];
        let r = claim(&[b"5", &nul, b"FP", &nul], &LIMITS).unwrap();
        assert_eq!((r.owner, r.fingerprint), (&nul[..], Some(&nul[..])));
    }

    #[test]
    fn claim_rejects_bad_input() {
        let dur = CommandError::InvalidDuration { name: "ttl-ms", max: 1_000 };
        let long_owner = "o".repeat(65);
        let long_fp = "f".repeat(65);
        let table: Vec<(Vec<&str>, CommandError)> = vec![
            (vec![], CommandError::WrongArity),
            (vec!["10"], CommandError::WrongArity),
            (vec!["0", "me"], dur.clone()),
            (vec!["-5", "me"], dur.clone()),
            (vec!["1001", "me"], dur.clone()),
            (vec!["abc", "me"], dur.clone()),
            (vec!["+5", "me"], dur.clone()),
            (vec!["5 ", "me"], dur.clone()),
            (vec!["99999999999999999999999", "me"], dur.clone()),
            (vec!["10", ""], CommandError::InvalidOwner),
            (vec!["10", &long_owner], CommandError::InvalidOwner),
            (vec!["10", "me", "FP"], CommandError::Syntax),
            (vec!["10", "me", "XX", "1"], CommandError::Syntax),
            (vec!["10", "me", "FP", "a", "FP", "b"], CommandError::Syntax),
            (vec!["10", "me", "FP", ""], CommandError::InvalidFingerprint),
            (vec!["10", "me", "FP", &long_fp], CommandError::InvalidFingerprint),
        ];
        for (a, want) in table {
            let bytes: Vec<&[u8]> = a.iter().map(|s| s.as_bytes()).collect();
            assert_eq!(claim(&bytes, &LIMITS).unwrap_err(), want, "{a:?}");
        }
    }

    #[test]
    fn other_commands_check_arity_and_values() {
        assert_eq!(extend(&args(&["5"]), &LIMITS).unwrap_err(), CommandError::WrongArity);
        assert_eq!(extend(&args(&["5", "me", "x"]), &LIMITS).unwrap_err(), CommandError::WrongArity);
        assert_eq!(extend(&args(&["5", "me"]), &LIMITS).unwrap().ttl_ms, 5);
        assert_eq!(release(&args(&[])).unwrap_err(), CommandError::WrongArity);
        assert_eq!(release(&args(&[""])).unwrap_err(), CommandError::InvalidOwner);
        assert_eq!(status(&args(&["x"])).unwrap_err(), CommandError::WrongArity);

        let r = complete(&args(&["7", "me", "result", "abcd"]), &LIMITS).unwrap();
        assert_eq!(r.result, Some(&b"abcd"[..]));
        assert_eq!(
            complete(&args(&["7", "me", "RESULT", "abcde"]), &LIMITS).unwrap_err(),
            CommandError::ResultTooLarge { max: 4 }
        );
        assert_eq!(
            complete(&args(&["0", "me"]), &LIMITS).unwrap_err(),
            CommandError::InvalidDuration { name: "retention-ms", max: 1_000 }
        );
        assert_eq!(complete(&args(&["7", "me", "RESULT", ""]), &LIMITS).unwrap().result, Some(&b""[..]));

        assert_eq!(fence(&args(&["0", "me"])).unwrap().token, 0);
        assert_eq!(fence(&args(&["9223372036854775807", "me"])).unwrap().token, MAX_TOKEN);
        for bad in ["-1", "9223372036854775808", "x", ""] {
            assert_eq!(
                fence(&args(&[bad, "me"])).unwrap_err(),
                CommandError::InvalidToken { name: "token" },
                "{bad}"
            );
        }
    }

    #[test]
    fn put_parses_all_options() {
        let r = put(&args(&["9", "me", "done", "PXAT", "123", "COUNTER", "50", "FP", "f", "RESULT", "r"]))
            .unwrap();
        assert_eq!(r.token, 9);
        assert_eq!(r.phase, Phase::Done);
        assert_eq!(r.expires_at, Some(123));
        assert_eq!(r.counter_floor, Some(50));
        assert_eq!(r.fingerprint, Some(&b"f"[..]));
        assert_eq!(r.result, Some(&b"r"[..]));
        assert_eq!(put(&args(&["9", "me", "FREE"])).unwrap_err(), CommandError::InvalidPhase);
        assert!(put(&args(&["9", "me", "DONE", "PXAT", "0"])).is_err());
        assert_eq!(put(&args(&["9", "me", "DONE", "PXAT"])).unwrap_err(), CommandError::Syntax);
    }
}
