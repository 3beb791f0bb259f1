//! Which watched entities (hospitals, departments, doctors, key terms) a text mentions. The watch
//! list can hold thousands of names and aliases, so all of them are searched in one pass.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Multi-pattern matcher over the terms of many entities.
pub struct Matcher {
    /// `None` when no entity has a usable term: an empty automaton would match nothing anyway.
    automaton: Option<AhoCorasick>,
    /// For each pattern: the entities that listed it (two entities may share an alias), as
    /// indexes into `ids`.
    owners: Vec<Vec<usize>>,
    /// Entity ids in the order they were given.
    ids: Vec<i64>,
    /// For each pattern: whether its first / last character is an ASCII letter or digit, in which
    /// case the match must not continue a longer English word on that side.
    word_edges: Vec<(bool, bool)>,
}

impl Matcher {
    /// Terms are trimmed; empty ones are ignored. ASCII case is folded at match time.
    pub fn new(entities: &[(i64, Vec<String>)]) -> Matcher {
        let mut patterns: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut index = std::collections::HashMap::new();
        let ids: Vec<i64> = entities.iter().map(|(id, _)| *id).collect();
        for (rank, (_, terms)) in entities.iter().enumerate() {
            for term in terms {
                let term = term.trim();
                if term.is_empty() {
                    continue;
                }
                let key = term.to_ascii_lowercase();
                let slot = *index.entry(key.clone()).or_insert_with(|| {
                    patterns.push(key);
                    owners.push(Vec::new());
                    owners.len() - 1
                });
                if !owners[slot].contains(&rank) {
                    owners[slot].push(rank);
                }
            }
        }
        let word_edges = patterns
            .iter()
            .map(|p| {
                let first = p.chars().next().is_some_and(is_word_char);
                let last = p.chars().next_back().is_some_and(is_word_char);
                (first, last)
            })
            .collect();
        let automaton = if patterns.is_empty() {
            None
        } else {
            // Standard semantics so that overlapping matches are all reported: "ENT" and
            // "ENT clinic" of two entities must both count.
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .expect("aho-corasick accepts any set of non-empty patterns"),
            )
        };
        Matcher {
            automaton,
            owners,
            ids,
            word_edges,
        }
    }

    /// Distinct entity ids, ordered by where each is first mentioned.
    pub fn find(&self, text: &str) -> Vec<i64> {
        // (start, declaration rank): mentions at the same place (协和 / 协和医院) keep the order in
        // which the entities were given.
        let mut hits: Vec<(usize, usize)> = Vec::new();
        self.for_each_match(text, |start, pattern| {
            for &rank in &self.owners[pattern] {
                hits.push((start, rank));
            }
        });
        hits.sort_unstable();
        let mut out: Vec<i64> = Vec::new();
        for (_, rank) in hits {
            let id = self.ids[rank];
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// Ids of the entities that listed `pattern`.
    pub(crate) fn owners(&self, pattern: usize) -> impl Iterator<Item = i64> + '_ {
        self.owners[pattern].iter().map(|&rank| self.ids[rank])
    }

    /// Calls `f(start_byte, pattern_index)` for every accepted match, overlapping ones included.
    pub(crate) fn for_each_match(&self, text: &str, mut f: impl FnMut(usize, usize)) {
        let Some(ac) = &self.automaton else { return };
        let bytes = text.as_bytes();
        for m in ac.find_overlapping_iter(text) {
            let p = m.pattern().as_usize();
            let (first, last) = self.word_edges[p];
            if first && m.start() > 0 && is_word_byte(bytes[m.start() - 1]) {
                continue;
            }
            if last && m.end() < bytes.len() && is_word_byte(bytes[m.end()]) {
                continue;
            }
            f(m.start(), p);
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// Only ASCII bytes are word bytes: UTF-8 continuation and lead bytes of CJK characters are
/// >= 0x80, so a Chinese neighbour never blocks an English term ("ENT科" matches "ENT").
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
