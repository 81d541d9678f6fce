//! The value stored under a dedup key, and the limits on its parts.
//!
//! This file is plain Rust: no Redis types, so the state machine and the persistence code share
//! one definition of what an entry is.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::os::raw::c_void;
use std::ptr::{self, NonNull};

/// Longest owner accepted. Owners are random secrets (the bundled client sends 40 hex chars).
pub const MAX_OWNER_BYTES: usize = 64;

/// Longest payload fingerprint accepted (a SHA-512 digest fits in raw form).
pub const MAX_FINGERPRINT_BYTES: usize = 64;

/// Largest token the module hands out or accepts: tokens are RESP integers, which are signed.
pub const MAX_TOKEN: u64 = i64::MAX as u64;


/// Where an entry is in its life. FREE is not a phase: a free id has no key at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A lease held by one owner; it ends at the key's expiry unless extended or completed.
    Claimed,
    /// A completion marker, kept for the retention window so that late duplicates see it.
    Done,
}

impl Phase {
    /// The word used in replies, in `DEDUP.PUT` and in the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Claimed => "CLAIMED",
            Phase::Done => "DONE",
        }
    }

    /// Parses the word written by [`Phase::as_str`], case-insensitively as Redis does for keywords.
    pub fn parse(word: &[u8]) -> Option<Phase> {
        if word.eq_ignore_ascii_case(b"CLAIMED") {
            Some(Phase::Claimed)
        } else if word.eq_ignore_ascii_case(b"DONE") {
            Some(Phase::Done)
        } else {
            None
        }
    }
}

/// One dedup entry, packed into a single heap allocation: a 16-byte header followed by the owner,
/// fingerprint and result bytes. Its expiry is not here: Redis keeps it with the key, so that Redis
/// itself reclaims the memory and persists the absolute expiry time.
///
/// The packing is for memory: a live key costs Redis's own key, dict and value records plus this
/// one block, instead of a struct plus a buffer per field (docs/PROTOCOL.md and BENCHMARKS.md have
/// the figures). The pointer is thin, so Redis stores it directly as the module value.
pub struct Entry {
    block: NonNull<Header>,
}

/// The fixed part of an entry's block. Lengths are bounded by the parser (owner and fingerprint
/// at most 64 bytes) and by [`Entry::new`] (everything at most `u32::MAX`).
#[repr(C)]
struct Header {
    token: u64,
    body_len: u32,
    owner_len: u8,
    fingerprint_len: u8,
    phase: u8,
    flags: u8,
}

const HEADER_BYTES: usize = std::mem::size_of::<Header>();
const HAS_FINGERPRINT: u8 = 1;
const HAS_RESULT: u8 = 2;

fn block_layout(body_len: usize) -> Layout {
    Layout::from_size_align(HEADER_BYTES + body_len, std::mem::align_of::<Header>())
        .expect("entry size fits a layout")
}

impl Entry {
    /// Packs an entry. Panics (caught by the command guard) if the parts exceed the format's
    /// bounds, which the parser never lets through.
    pub fn new(
        phase: Phase,
        token: u64,
        owner: &[u8],
        fingerprint: Option<&[u8]>,
        result: Option<&[u8]>,
    ) -> Entry {
        let fp = fingerprint.unwrap_or_default();
        let res = result.unwrap_or_default();
        assert!(owner.len() <= u8::MAX as usize && fp.len() <= u8::MAX as usize, "owner/fingerprint too long");
        let body_len = owner.len() + fp.len() + res.len();
        let header = Header {
            token,
            body_len: u32::try_from(body_len).expect("entry body fits in 4 GiB"),
            owner_len: owner.len() as u8,
            fingerprint_len: fp.len() as u8,
            phase: match phase {
                Phase::Claimed => 0,
                Phase::Done => 1,
            },
            flags: if fingerprint.is_some() { HAS_FINGERPRINT } else { 0 }
                | if result.is_some() { HAS_RESULT } else { 0 },
        };
        let layout = block_layout(body_len);
        // SAFETY: the layout is non-zero-sized (it includes the header) and properly aligned; the
        // header and each part are written inside the block before anything reads it.
        unsafe {
            let raw = alloc(layout).cast::<Header>();
            let Some(block) = NonNull::new(raw) else { handle_alloc_error(layout) };
            raw.write(header);
            let body = raw.cast::<u8>().add(HEADER_BYTES);
            ptr::copy_nonoverlapping(owner.as_ptr(), body, owner.len());
            ptr::copy_nonoverlapping(fp.as_ptr(), body.add(owner.len()), fp.len());
            ptr::copy_nonoverlapping(res.as_ptr(), body.add(owner.len() + fp.len()), res.len());
            Entry { block }
        }
    }

    /// A fresh claim.
    pub fn claimed(token: u64, owner: &[u8], fingerprint: Option<&[u8]>) -> Entry {
        Entry::new(Phase::Claimed, token, owner, fingerprint, None)
    }

    /// The completion marker that replaces this claim: same token, owner and fingerprint.
    pub fn completed(&self, result: Option<&[u8]>) -> Entry {
        Entry::new(Phase::Done, self.token(), self.owner(), self.fingerprint(), result)
    }

    fn header(&self) -> &Header {
        // SAFETY: `block` always points at an initialised header owned by this entry.
        unsafe { self.block.as_ref() }
    }

    fn body(&self) -> &[u8] {
        // SAFETY: the block holds `body_len` initialised bytes right after the header.
        unsafe {
            std::slice::from_raw_parts(
                self.block.as_ptr().cast::<u8>().add(HEADER_BYTES),
                self.header().body_len as usize,
            )
        }
    }

    pub fn phase(&self) -> Phase {
        if self.header().phase == 0 {
            Phase::Claimed
        } else {
            Phase::Done
        }
    }

    /// Fencing token issued when the claim was created (raised by `DEDUP.FENCE`).
    pub fn token(&self) -> u64 {
        self.header().token
    }

    /// Raises or sets the token in place.
    pub fn set_token(&mut self, token: u64) {
        // SAFETY: `&mut self` gives exclusive access to the block.
        unsafe { self.block.as_mut().token = token };
    }

    /// Secret of the claimant. Never replied, logged or shown in INFO.
    pub fn owner(&self) -> &[u8] {
        &self.body()[..self.header().owner_len as usize]
    }

    /// Optional payload fingerprint given at claim time.
    pub fn fingerprint(&self) -> Option<&[u8]> {
        let h = self.header();
        let start = h.owner_len as usize;
        (h.flags & HAS_FINGERPRINT != 0).then(|| &self.body()[start..start + h.fingerprint_len as usize])
    }

    /// Optional result stored by `DEDUP.COMPLETE`, replayed to late duplicates.
    pub fn result(&self) -> Option<&[u8]> {
        let h = self.header();
        let start = h.owner_len as usize + h.fingerprint_len as usize;
        (h.flags & HAS_RESULT != 0).then(|| &self.body()[start..])
    }

    /// True when this is a live lease of `owner`.
    pub fn is_claimed_by(&self, owner: &[u8]) -> bool {
        self.phase() == Phase::Claimed && self.owner() == owner
    }

    /// True when this is a completion marker written by `owner`.
    pub fn is_done_by(&self, owner: &[u8]) -> bool {
        self.phase() == Phase::Done && self.owner() == owner
    }

    /// "Same key, different payload": only when both sides carry a fingerprint and they differ.
    pub fn fingerprint_conflicts(&self, fingerprint: Option<&[u8]>) -> bool {
        matches!((self.fingerprint(), fingerprint), (Some(stored), Some(given)) if stored != given)
    }

    /// Bytes this entry owns on the heap, for `MEMORY USAGE`.
    pub fn heap_bytes(&self) -> usize {
        HEADER_BYTES + self.header().body_len as usize
    }

    /// Hands the block to Redis as a module value.
    pub fn into_raw(self) -> *mut c_void {
        ManuallyDrop::new(self).block.as_ptr().cast()
    }

    /// Takes a block back from Redis (to free it).
    ///
    /// # Safety
    /// `raw` must come from [`Entry::into_raw`] and must not be used again.
    pub unsafe fn from_raw(raw: *mut c_void) -> Entry {
        Entry { block: NonNull::new(raw.cast()).expect("module values are never null") }
    }

    /// Borrows a block that Redis still owns.
    ///
    /// # Safety
    /// `raw` must come from [`Entry::into_raw`] and stay alive, unchanged by anyone else, for `'a`.
    pub unsafe fn borrow_raw<'a>(raw: *mut c_void) -> EntryRef<'a> {
        EntryRef { entry: ManuallyDrop::new(Entry::from_raw(raw)), _owner: PhantomData }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let layout = block_layout(self.header().body_len as usize);
        // SAFETY: the block was allocated in `new` with exactly this layout and is freed once.
        unsafe { dealloc(self.block.as_ptr().cast(), layout) };
    }
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        Entry::new(self.phase(), self.token(), self.owner(), self.fingerprint(), self.result())
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.phase() == other.phase()
            && self.token() == other.token()
            && self.owner() == other.owner()
            && self.fingerprint() == other.fingerprint()
            && self.result() == other.result()
    }
}

impl Eq for Entry {}

impl fmt::Debug for Entry {
    /// Shows everything but the owner, which is a secret even in debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("phase", &self.phase())
            .field("token", &self.token())
            .field("owner_len", &self.owner().len())
            .field("fingerprint", &self.fingerprint())
            .field("result_len", &self.result().map(<[u8]>::len))
            .finish()
    }
}

/// An entry that Redis owns, borrowed for the length of one command. Dropping it frees nothing.
pub struct EntryRef<'a> {
    entry: ManuallyDrop<Entry>,
    _owner: PhantomData<&'a mut Entry>,
}

impl std::ops::Deref for EntryRef<'_> {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        &self.entry
    }
}

impl std::ops::DerefMut for EntryRef<'_> {
    fn deref_mut(&mut self) -> &mut Entry {
        &mut self.entry
    }
}

/// When an entry stops existing, as Redis keeps it: an absolute Unix time in milliseconds, or
/// never (someone ran PERSIST on the key; the module itself always sets an expiry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    At(i64),
    Never,
}

impl Expiry {
    /// Redis treats a key as expired only once `now > when`, so an entry is still live at the
    /// exact millisecond of its expiry. Matching that keeps replies consistent with PTTL.
    pub fn is_live(self, now: i64) -> bool {
        match self {
            Expiry::At(when) => now <= when,
            Expiry::Never => true,
        }
    }

    /// Remaining milliseconds as PTTL reports them: -1 for no expiry.
    pub fn pttl(self, now: i64) -> i64 {
        match self {
            Expiry::At(when) => (when - now).max(0),
            Expiry::Never => -1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_conflict_only_when_both_present_and_different() {
        let e = Entry::claimed(1, b"o", Some(b"a"));
        assert!(e.fingerprint_conflicts(Some(b"b")));
        assert!(!e.fingerprint_conflicts(Some(b"a")));
        assert!(!e.fingerprint_conflicts(None));
        let e = Entry::claimed(1, b"o", None);
        assert!(!e.fingerprint_conflicts(Some(b"b")));
    }

    #[test]
    fn packed_parts_round_trip() {
        let cases: [(Phase, u64, &[u8], Option<&[u8]>, Option<&[u8]>); 5] = [
            (Phase::Claimed, 1, b"o", None, None),
            (Phase::Claimed, MAX_TOKEN, &[0u8; 64], Some(&[0xffu8; 64]), None),
            (Phase::Done, 7, b"owner\0x", Some(b"f"), Some(b"")),
            (Phase::Done, 0, b"o", None, Some(b"result\0bytes")),
            (Phase::Done, 9, b"o", Some(b"fp"), Some(&[7u8; 70_000])),
        ];
        for (phase, token, owner, fp, result) in cases {
            let mut e = Entry::new(phase, token, owner, fp, result);
            assert_eq!((e.phase(), e.token(), e.owner(), e.fingerprint(), e.result()), (phase, token, owner, fp, result));
            assert_eq!(e.clone(), e);
            e.set_token(token / 2);
            assert_eq!(e.token(), token / 2);
            assert_eq!(e.owner(), owner, "set_token leaves the body alone");
            let done = e.completed(Some(b"r"));
            assert_eq!((done.phase(), done.result(), done.fingerprint()), (Phase::Done, Some(&b"r"[..]), fp));
            // Through Redis's hands and back.
            let raw = done.into_raw();
            assert_eq!(unsafe { Entry::borrow_raw(raw) }.result(), Some(&b"r"[..]));
            drop(unsafe { Entry::from_raw(raw) });
        }
    }

    #[test]
    fn debug_output_hides_the_owner() {
        let e = Entry::claimed(1, b"s3cret-owner", None);
        assert!(!format!("{e:?}").contains("s3cret"));
    }

    #[test]
    fn a_claim_is_one_small_block() {
        assert_eq!(HEADER_BYTES, 16);
        assert_eq!(Entry::claimed(1, &[b'o'; 40], None).heap_bytes(), 56);
    }

    #[test]
    fn expiry_matches_redis_boundary() {
        let at = Expiry::At(1_000);
        assert!(at.is_live(999));
        assert!(at.is_live(1_000));
        assert!(!at.is_live(1_001));
        assert_eq!(at.pttl(400), 600);
        assert_eq!(at.pttl(1_000), 0);
        assert_eq!(Expiry::Never.pttl(5), -1);
        assert!(Expiry::Never.is_live(i64::MAX));
    }

    #[test]
    fn phase_words_round_trip() {
        for phase in [Phase::Claimed, Phase::Done] {
            assert_eq!(Phase::parse(phase.as_str().as_bytes()), Some(phase));
        }
        assert_eq!(Phase::parse(b"done"), Some(Phase::Done));
        assert_eq!(Phase::parse(b"FREE"), None);
    }
}
