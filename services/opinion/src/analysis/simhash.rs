//! Near-duplicate fingerprints. Reposts of a hospital story are usually the same text with a few
//! characters changed (a prefix, an emoji, a different punctuation style), so an exact hash alone
//! would split one story into many; SimHash keeps such copies within a few bits of each other.

use sha2::{Digest, Sha256};

/// Characters per shingle: long enough that shingles are specific to a text, short enough that one
/// edited character disturbs only a handful of them.
const SHINGLE: usize = 3;

/// The text reduced to what identifies its content: lowercase, full-width ASCII folded to
/// half-width, and every character that is not a letter or digit (spaces, punctuation, emoji)
/// dropped, since reposts most often differ in exactly those.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = fold_width(c);
        if !c.is_alphanumeric() {
            continue;
        }
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Chinese input methods often produce full-width Latin letters and digits (ＡＢＣ１２３).
fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// The identity of a text for exact de-duplication: sha256 hex of [`normalize`], so copies that
/// differ only in spacing or punctuation share it.
pub fn content_hash(text: &str) -> String {
    hex::encode(Sha256::digest(normalize(text).as_bytes()))
}

/// 64-bit SimHash over shingles of [`normalize`]d characters.
pub fn simhash(text: &str) -> u64 {
    let chars: Vec<char> = normalize(text).chars().collect();
    if chars.is_empty() {
        return 0;
    }
    let mut votes = BitVotes::default();
    if chars.len() < SHINGLE {
        votes.add(shingle_hash(&chars));
    } else {
        for w in chars.windows(SHINGLE) {
            votes.add(shingle_hash(w));
        }
    }
    votes.finish()
}

/// Per-bit tallies of how many shingle hashes have that bit set. Counting 64 bits one by one per
/// shingle dominated the cost, so eight bits are counted at once: each byte of a hash is spread
/// into the eight byte-lanes of a u64 (SPREAD) and lanes are summed, flushed before they overflow.
struct BitVotes {
    lanes: [u64; 8],
    pending: u32,
    ones: [u32; 64],
    total: u32,
}

impl Default for BitVotes {
    fn default() -> Self {
        BitVotes {
            lanes: [0; 8],
            pending: 0,
            ones: [0; 64],
            total: 0,
        }
    }
}

impl BitVotes {
    fn add(&mut self, h: u64) {
        for (k, lane) in self.lanes.iter_mut().enumerate() {
            *lane += SPREAD[((h >> (8 * k)) & 0xff) as usize];
        }
        self.pending += 1;
        self.total += 1;
        if self.pending == 255 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        for (k, lane) in self.lanes.iter_mut().enumerate() {
            for i in 0..8 {
                self.ones[k * 8 + i] += ((*lane >> (8 * i)) & 0xff) as u32;
            }
            *lane = 0;
        }
        self.pending = 0;
    }

    /// A bit is set when more than half of the shingles voted for it.
    fn finish(mut self) -> u64 {
        self.flush();
        let total = self.total;
        self.ones
            .iter()
            .enumerate()
            .fold(0u64, |h, (bit, &n)| if 2 * n > total { h | 1 << bit } else { h })
    }
}

/// SPREAD[b] has byte i equal to bit i of b.
const SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < 8 {
            if (b >> i) & 1 == 1 {
                t[b] |= 1 << (8 * i);
            }
            i += 1;
        }
        b += 1;
    }
    t
};

/// Number of differing bits: the distance between two fingerprints.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// FNV-1a followed by a splitmix64 finaliser: FNV alone leaves the high bits poorly mixed for
/// short inputs, and SimHash needs every bit to be a fair coin.
fn shingle_hash(chars: &[char]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in chars {
        for b in (c as u32).to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    mix64(h)
}

pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
