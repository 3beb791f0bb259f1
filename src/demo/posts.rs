//! Online posts about the hospital, written for the demo: everyday reviews and questions put
//! together from interchangeable pieces (so they read differently and do not all fall into one
//! story), a repost storm of one negative story, and an older complaint that was handled. Every
//! author, address and story is invented; the addresses are under `.invalid`, which never
//! resolves.

use super::context::{Demo, HOUR, MINUTE, ts};
use super::hospital::{DEPARTMENTS, Department, HOSPITAL};
use hcrm_proto::opinion::PushedMention;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

/// Departments on the watch list: posts name them or their doctors.
pub const WATCHED: &[&str] = &["cardiology", "emergency", "orthopedics", "pediatrics", "obstetrics"];

pub const STORM_TITLE: &str = "仁心医院急诊科凌晨胸痛老人抢救室外苦等四小时";
const STORM: &str = "【求扩散】仁心医院急诊科，我父亲凌晨胸痛被送过去，在抢救室外面等了四个多小时没人管，护士只说再等等，医生一直没有出现。老人疼得满头大汗，家属急得团团转，问了三次都说在忙。这就是大医院的急诊吗？";
const STORM_REPOSTS: &[&str] = &[
    "转发微博",
    "太过分了",
    "看得心里难受",
    "这也太寒心了",
    "希望医院给个说法",
    "求官方回应",
    "已转，希望老人平安",
    "急诊不急？",
];

pub const OLD_TITLE: &str = "仁心医院体检中心报告拖了两周还没出";
const OLD: &str = "在仁心医院体检中心做的入职体检，说好三天出报告，两周过去了还没出来，打电话一直没人接，公司那边催得很急，真是耽误事。";

const SITES: &[(&str, &str)] = &[
    ("微博", "weibo"),
    ("小红书", "xhs"),
    ("大众点评", "dianping"),
    ("知乎", "zhihu"),
    ("本地论坛", "bbs"),
    ("抖音", "douyin"),
];

const POSITIVE: &[&str] = &[
    "{doc}医生特别耐心，把检查结果一项项讲得清清楚楚",
    "{h}{d}的护士姐姐们太温柔了，半夜按铃马上就来",
    "在{h}做的手术很成功，恢复得比预想的快",
    "{h}的线上预约很方便，到点签到基本不用等",
    "{h}新开的自助取药机真省事，十分钟就拿到药了",
    "给{h}{d}点个赞，住院一周每天都有人来讲康复注意事项",
    "孩子发烧去{h}看急诊，医生护士都很有耐心，孩子一点都不怕",
    "{doc}主任看了一眼片子就找到了问题，医术真的高明",
    "出院后{h}还专门打电话回访，问恢复情况，挺暖心的",
    "{h}的病房干净整洁，饭菜也比想象中好",
    "感谢{h}{d}全体医护，老爸终于康复出院了",
    "{h}的导医阿姨全程帮忙，老人看病方便多了",
];

/// Positive publicity: good deeds, new techniques, honours.
const PUBLICITY: &[&str] = &[
    "{h}{d}的护士下班路上遇到老人晕倒，跪地做心肺复苏直到救护车赶到，好样的",
    "{h}{d}成功开展首例微创介入手术，患者术后第二天就能下床活动",
    "{h}{doc}医生获评年度最美医生，实至名归",
    "{h}的医生在高铁上紧急救治突发疾病的乘客，赢得全车掌声",
];

const NEUTRAL: &[&str] = &[
    "请问{h}{d}周末有专家门诊吗，想挂{doc}医生的号",
    "{h}停车场这几天在施工，去的朋友注意绕行",
    "{h}的体检中心几点开门，抽血需要空腹吗",
    "听说{h}{d}搬到新住院楼了，具体在几楼",
    "在{h}做的检查报告在哪里打印",
    "明天带家人去{h}{d}复查，需要提前准备什么",
    "{h}门诊几点开始挂号，现场号还能挂到吗",
    "{h}{d}和别的医院比怎么样，有去过的说说吗",
];

const NEGATIVE: &[&str] = &[
    "在{h}{d}排队三个小时，叫号系统乱七八糟，体验很差",
    "{h}收费处态度太差了，多问两句就不耐烦",
    "{h}停车太难了，转了四十分钟找不到车位",
    "{h}{d}的检查要预约到下个月，真的等不起",
    "住院费用清单看不懂，问了护士也说不清楚，{h}能不能解释一下",
    "{h}的卫生间又脏又滑，老人差点摔倒",
    "挂了{doc}医生的号，看了不到三分钟就被打发走了，很失望",
    "{h}的自助机老是坏，排了半天又得去窗口重新排",
    "{h}{d}的医生说话冷冰冰的，问什么都嫌烦",
];

const OPENERS: &[&str] = &[
    "",
    "",
    "今天",
    "说一下我的经历：",
    "记录一下：",
    "分享一下，",
    "#看病日记# ",
];
const CLOSERS: &[&str] = &["。", "！", "，大家觉得呢？", "。#杭州看病#", "。仅代表个人感受。", "。"];

const NICK_HEADS: &[&str] = &["小", "阿", "老", "爱吃", "跑步的", "杭漂", "喵喵"];
const NICK_TAILS: &[&str] = &["鱼", "橙子", "木木", "夏天", "奶茶", "豆豆", "星星", "云朵", "饭团"];

fn nickname(rng: &mut StdRng) -> String {
    format!(
        "{}{}{}",
        NICK_HEADS.choose(rng).copied().unwrap_or("小"),
        NICK_TAILS.choose(rng).copied().unwrap_or("鱼"),
        rng.random_range(10..9999)
    )
}

/// Views or reposts between `low` and `high`, most posts small.
fn reach(rng: &mut StdRng, low: f64, high: f64) -> i64 {
    let u: f64 = rng.random();
    (low * (high / low).powf(u * u)) as i64
}

struct Writer<'a> {
    demo: &'a Demo,
    rng: StdRng,
    next: usize,
}

impl Writer<'_> {
    fn post(&mut self, text: String, title: &str, at: i64, reach: i64) -> PushedMention {
        let (site, slug) = *SITES.choose(&mut self.rng).unwrap_or(&SITES[0]);
        self.next += 1;
        PushedMention {
            url: format!(
                "https://{slug}.demo.invalid/p/{:08x}{:04}",
                self.rng.random::<u32>(),
                self.next
            ),
            site: site.into(),
            author: nickname(&mut self.rng),
            title: title.into(),
            text,
            publish_time: Some(ts(at.min(self.demo.now - MINUTE))),
            reach: reach.max(1),
        }
    }

    fn fill(&mut self, template: &str, dept: &Department) -> String {
        let doctor = dept.doctors.choose(&mut self.rng).copied().unwrap_or("值班");
        let alias = dept.aliases.choose(&mut self.rng).copied().unwrap_or(dept.zh);
        template
            .replace("{h}", HOSPITAL)
            .replace("{d}", alias)
            .replace("{doc}", doctor)
    }

    /// Opener, one or two pieces of the same mood, closer.
    fn everyday(&mut self, pool: &[&str], dept: &Department) -> String {
        let first = pool.choose(&mut self.rng).copied().unwrap_or_default();
        let mut text = format!(
            "{}{}",
            OPENERS.choose(&mut self.rng).copied().unwrap_or_default(),
            self.fill(first, dept)
        );
        if self.rng.random_bool(0.5) {
            let second = pool.choose(&mut self.rng).copied().unwrap_or_default();
            if second != first {
                text.push('，');
                text.push_str(&self.fill(second, dept));
            }
        }
        text.push_str(CLOSERS.choose(&mut self.rng).copied().unwrap_or("。"));
        text
    }
}

/// A daytime moment `days` ago.
fn daytime(demo: &Demo, rng: &mut StdRng, days: i64) -> i64 {
    demo.at_local(demo.days_ago(days), rng.random_range(7 * 60..23 * 60))
}

/// The last 30 days of posts, oldest first (a story starts with its first post), ending with
/// the storm of the last hours.
pub fn generate(demo: &Demo, patients: usize) -> Vec<PushedMention> {
    let mut w = Writer {
        demo,
        rng: demo.rng("posts"),
        next: 0,
    };
    let watched: Vec<&Department> = DEPARTMENTS.iter().filter(|d| WATCHED.contains(&d.code)).collect();
    let mut posts = Vec::new();
    for _ in 0..(patients / 6).clamp(120, 400) {
        let dept = *watched.choose(&mut w.rng).unwrap_or(&&DEPARTMENTS[0]);
        let pool = match w.rng.random_range(0..100) {
            0..=44 => POSITIVE,
            45..=51 => PUBLICITY,
            52..=75 => NEUTRAL,
            _ => NEGATIVE,
        };
        let text = w.everyday(pool, dept);
        let days = w.rng.random_range(0..30);
        let at = daytime(demo, &mut w.rng, days);
        let reach = reach(&mut w.rng, 20.0, 5000.0);
        posts.push(w.post(text, "", at, reach));
    }
    // An older complaint that spread a little and was handled (its incident is resolved).
    let old_at = daytime(demo, &mut w.rng, 5);
    posts.push(w.post(OLD.into(), OLD_TITLE, old_at, 2400));
    for i in 0..5 {
        let text = format!("{}//{}", ["同样遇到过", "转", "体检中心效率太低"][i % 3], OLD);
        let at = old_at + (i as i64 + 1) * 2 * HOUR;
        let reach = reach(&mut w.rng, 50.0, 800.0);
        posts.push(w.post(text, "", at, reach));
    }
    // The storm: one post at night, reposted through the day with a line added each time.
    let start = demo.now - 9 * HOUR;
    posts.push(w.post(STORM.into(), STORM_TITLE, start, 30_000));
    let reposts = (patients / 50).clamp(25, 60);
    for i in 0..reposts {
        let head = STORM_REPOSTS.choose(&mut w.rng).copied().unwrap_or("转发微博");
        let text = format!("{head}//@{}: {STORM}", nickname(&mut w.rng));
        let at = start + (i as i64 + 1) * (8 * HOUR) / (reposts as i64 + 1);
        let reach = reach(&mut w.rng, 300.0, 8000.0);
        posts.push(w.post(text, "", at, reach));
    }
    posts.sort_by_key(|p| p.publish_time.as_ref().map(|t| t.seconds).unwrap_or_default());
    posts
}
