//! Offline training and evaluation, driven by `examples/train_sentiment.rs` and by the tests. It
//! lives in the crate so that it goes through the very tokenizer and lexicon the service uses.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::classifier::{self, DENSE, FeatureMap, Model};
use super::language::Language;
use super::tokenize;
use super::{Analyzer, Label};

/// Gold label of a data row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gold {
    Pos,
    Neg,
    Neu,
}

impl Gold {
    pub fn code(&self) -> &'static str {
        match self {
            Gold::Pos => "pos",
            Gold::Neg => "neg",
            Gold::Neu => "neu",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Example {
    pub gold: Gold,
    pub text: String,
}

/// Rows of a data file: `label<TAB>text`, label `pos` / `neg` / `neu`, `#` comment lines.
/// Unknown labels are skipped.
pub fn parse_tsv(text: &str) -> Vec<Example> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (label, text) = l.split_once('\t')?;
            let gold = match label.trim() {
                "pos" => Gold::Pos,
                "neg" => Gold::Neg,
                "neu" => Gold::Neu,
                _ => return None,
            };
            let text = text.trim();
            (!text.is_empty()).then(|| Example {
                gold,
                text: text.to_owned(),
            })
        })
        .collect()
}

pub fn read_tsv(path: &Path) -> anyhow::Result<Vec<Example>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse_tsv(&text))
}

/// Accuracy of an analyzer on labelled rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Eval {
    /// pos/neg rows, judged by the sign of the score (a forced choice, as SnowNLP makes).
    pub binary_n: usize,
    pub binary_correct: usize,
    /// All rows, judged by the three-way label (a polar row labelled Neutral is a miss).
    pub label_n: usize,
    pub label_correct: usize,
}

impl Eval {
    pub fn binary_accuracy(&self) -> f64 {
        self.binary_correct as f64 / self.binary_n.max(1) as f64
    }
    pub fn label_accuracy(&self) -> f64 {
        self.label_correct as f64 / self.label_n.max(1) as f64
    }
}

pub fn evaluate(analyzer: &Analyzer, rows: &[Example]) -> Eval {
    let mut e = Eval::default();
    for row in rows {
        let a = analyzer.analyze(&row.text);
        let expected = match row.gold {
            Gold::Pos => Label::Positive,
            Gold::Neg => Label::Negative,
            Gold::Neu => Label::Neutral,
        };
        e.label_n += 1;
        e.label_correct += usize::from(a.label == expected);
        if row.gold != Gold::Neu {
            e.binary_n += 1;
            let positive = a.score > 0.0;
            e.binary_correct += usize::from(positive == (row.gold == Gold::Pos));
        }
    }
    e
}

/// Hyper-parameters of the logistic regression.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Features seen in fewer documents are dropped: they are mostly noise and they bloat the file.
    pub min_df: u32,
    pub epochs: usize,
    pub learning_rate: f32,
    pub l2: f32,
    /// Weights smaller than this are not written.
    pub prune: f32,
    /// Scale each feature by its Naive Bayes log-count ratio.
    pub nb_scaling: bool,
    pub nb_alpha: f32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            min_df: 2,
            epochs: 3,
            learning_rate: 0.3,
            l2: 1e-5,
            prune: 0.1,
            nb_scaling: true,
            nb_alpha: 1.0,
        }
    }
}

struct Doc {
    feats: Vec<u32>,
    scale: f32,
    dense: [f32; DENSE],
    y: f32,
}

/// An analyzer whose classifier has no weights: training needs the tokenizer and lexicon only.
pub fn untrained() -> Analyzer {
    Analyzer::with_model(Model::default())
}

/// Trains one language's model on pos/neg rows (neutral rows are ignored) and returns it as a
/// section of the model file.
pub fn train_section(base: &Analyzer, language: Language, rows: &[Example], opts: Options) -> String {
    let mut names: FeatureMap<String> = FeatureMap::default();
    let mut df: FeatureMap<u32> = FeatureMap::default();
    let mut df_pos: FeatureMap<u32> = FeatureMap::default();
    let (mut n_pos, mut n_neg) = (0f32, 0f32);
    let mut raw: Vec<(Vec<u64>, [f32; DENSE], f32)> = Vec::with_capacity(rows.len());
    let mut keys = Vec::new();
    for row in rows {
        let y = match row.gold {
            Gold::Pos => 1.0,
            Gold::Neg => 0.0,
            Gold::Neu => continue,
        };
        let lowered = tokenize::lower(&row.text);
        let mut toks = base.tokenizer.tokens(&lowered, language);
        let lex = base.lexicon.score(&toks, None);
        base.lexicon.mark_negated(&mut toks);
        classifier::for_each_feature(&lowered, &toks, |k, name| {
            names.entry(k).or_insert_with(|| name.to_string());
        });
        classifier::features(&lowered, &toks, &mut keys);
        for k in &keys {
            *df.entry(*k).or_default() += 1;
            if y > 0.5 {
                *df_pos.entry(*k).or_default() += 1;
            }
        }
        if y > 0.5 {
            n_pos += 1.0;
        } else {
            n_neg += 1.0;
        }
        raw.push((keys.clone(), lex.features(), y));
    }

    // Index the kept features; a name that cannot be written back unambiguously is dropped.
    let mut index: FeatureMap<u32> = FeatureMap::default();
    let mut kept: Vec<u64> = Vec::new();
    for (k, n) in &df {
        let name = &names[k];
        let writable =
            !name.contains(['\t', '\n', '\r']) && name.matches(' ').count() <= 1 && !name.starts_with(['#', '@']);
        if *n >= opts.min_df && writable && classifier::feature_key(name) == *k {
            index.insert(*k, kept.len() as u32);
            kept.push(*k);
        }
    }
    let docs: Vec<Doc> = raw
        .into_iter()
        .map(|(keys, dense, y)| Doc {
            // The scale counts every feature of the document, kept or not, as serving does.
            scale: if keys.is_empty() {
                0.0
            } else {
                1.0 / (keys.len() as f32).sqrt()
            },
            feats: keys.iter().filter_map(|k| index.get(k).copied()).collect(),
            dense,
            y,
        })
        .collect();

    // Naive Bayes log-count ratios (Wang & Manning's NBSVM): the regression starts from what each
    // feature says on its own and learns how much to trust it, which beats either alone.
    let ratio: Vec<f32> = kept
        .iter()
        .map(|k| {
            if !opts.nb_scaling {
                return 1.0;
            }
            let p = df_pos.get(k).copied().unwrap_or(0) as f32;
            let q = df[k] as f32 - p;
            let a = opts.nb_alpha;
            ((p + a) / (n_pos + 2.0 * a)).ln() - ((q + a) / (n_neg + 2.0 * a)).ln()
        })
        .collect();
    let (bias, dense, mut weights) = fit(&docs, &ratio, opts);
    for (w, r) in weights.iter_mut().zip(&ratio) {
        *w *= r;
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "@{} {:.4} {:.4} {:.4} {:.4}",
        language.code(),
        bias,
        dense[0],
        dense[1],
        dense[2]
    );
    let mut entries: Vec<(&str, f32)> = kept
        .iter()
        .zip(&weights)
        .filter(|(_, w)| w.abs() >= opts.prune)
        .map(|(k, w)| (names[k].as_str(), *w))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (name, w) in entries {
        let _ = writeln!(out, "{name}\t{w:.3}");
    }
    out
}

/// Logistic regression by AdaGrad SGD over shuffled documents.
fn fit(docs: &[Doc], ratio: &[f32], opts: Options) -> (f32, [f32; DENSE], Vec<f32>) {
    let n_feats = ratio.len();
    let mut w = vec![0.0f32; n_feats];
    let mut g2 = vec![1e-6f32; n_feats];
    let mut bias = 0.0f32;
    let mut bias_g2 = 1e-6f32;
    let mut dense = [0.0f32; DENSE];
    let mut dense_g2 = [1e-6f32; DENSE];
    let mut order: Vec<usize> = (0..docs.len()).collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..opts.epochs {
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for &d in &order {
            let doc = &docs[d];
            let scale = doc.scale;
            let mut z = bias;
            for &f in &doc.feats {
                z += w[f as usize] * ratio[f as usize] * scale;
            }
            for (wd, x) in dense.iter().zip(doc.dense) {
                z += wd * x;
            }
            let p = 1.0 / (1.0 + (-z).exp());
            let g = p - doc.y;
            for &f in &doc.feats {
                let f = f as usize;
                let grad = g * ratio[f] * scale + opts.l2 * w[f];
                g2[f] += grad * grad;
                w[f] -= opts.learning_rate * grad / g2[f].sqrt();
            }
            for k in 0..DENSE {
                let grad = g * doc.dense[k];
                dense_g2[k] += grad * grad;
                dense[k] -= opts.learning_rate * grad / dense_g2[k].sqrt();
            }
            bias_g2 += g * g;
            bias -= opts.learning_rate * g / bias_g2.sqrt();
        }
    }
    (bias, dense, w)
}

/// An analyzer using the model text just trained (for evaluation before it is written).
pub fn with_model_text(text: &str) -> Analyzer {
    Analyzer::with_model(Model::parse(text).0)
}

/// Overrides how the classifier and lexicon are blended, for choosing the constants in mod.rs.
pub fn set_tuning(analyzer: &mut Analyzer, lexicon_boost: f32, no_cue_damping: f32, neutral_band: f32) {
    analyzer.tuning = super::Tuning {
        lexicon_boost,
        no_cue_damping,
        neutral_band,
    };
}

/// Number of lines of a model file that did not parse; 0 for a healthy file.
pub fn model_parse_errors(text: &str) -> usize {
    Model::parse(text).1
}

/// Number of weights per language in the embedded model.
pub fn embedded_model_size() -> (usize, usize) {
    let (m, _) = Model::parse(super::MODEL);
    (m.zh.weights.len(), m.en.weights.len())
}

/// Which split a row belongs to, decided by its content so that the split is reproducible and
/// independent of row order: sha256 of the text, first 8 bytes, modulo 100, below `percent`.
pub fn is_held_out(text: &str, percent: u64) -> bool {
    let d = Sha256::digest(text.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b) % 100 < percent
}

/// SnowNLP's `pos.txt` / `neg.txt` into de-duplicated train and held-out rows. Texts listed under
/// both labels are dropped: they cannot be scored either way.
pub fn split_snownlp(pos: &str, neg: &str, held_out_percent: u64) -> (Vec<Example>, Vec<Example>) {
    let clean = |s: &str| -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        s.lines()
            .map(|l| l.replace(['\t', '\r'], " ").trim().to_owned())
            .filter(|l| !l.is_empty() && seen.insert(l.clone()))
            .collect()
    };
    let pos = clean(pos);
    let neg = clean(neg);
    let pos_set: std::collections::HashSet<&String> = pos.iter().collect();
    let neg_set: std::collections::HashSet<&String> = neg.iter().collect();
    let mut train = Vec::new();
    let mut held = Vec::new();
    let rows = pos
        .iter()
        .filter(|t| !neg_set.contains(t))
        .map(|t| (Gold::Pos, t))
        .chain(neg.iter().filter(|t| !pos_set.contains(t)).map(|t| (Gold::Neg, t)));
    for (gold, text) in rows {
        let ex = Example {
            gold,
            text: text.clone(),
        };
        if is_held_out(text, held_out_percent) {
            held.push(ex);
        } else {
            train.push(ex);
        }
    }
    (train, held)
}

/// VADER ground-truth files (`id<TAB>mean rating -4..4<TAB>text`) into pos/neg rows; ratings
/// closer to zero than `margin` are too ambivalent for a binary label and are dropped.
pub fn vader_rows(text: &str, margin: f32) -> Vec<Example> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            let _id = parts.next()?;
            let rating: f32 = parts.next()?.trim().parse().ok()?;
            let t = parts.next()?.replace(['\t', '\r'], " ").trim().to_owned();
            if t.is_empty() || rating.abs() < margin {
                return None;
            }
            let gold = if rating > 0.0 { Gold::Pos } else { Gold::Neg };
            Some(Example { gold, text: t })
        })
        .collect()
}

pub fn write_tsv(path: &Path, header: &str, rows: &[Example]) -> anyhow::Result<()> {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    for r in rows {
        let _ = writeln!(out, "{}\t{}", r.gold.code(), r.text);
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Label counts, for the README.
pub fn counts(rows: &[Example]) -> HashMap<&'static str, usize> {
    let mut m = HashMap::new();
    for r in rows {
        *m.entry(r.gold.code()).or_default() += 1;
    }
    m
}
