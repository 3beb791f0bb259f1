//! Report arithmetic: satisfaction shares with their confidence interval, duration quantiles,
//! and the monthly analysis report as Markdown.

use hcrm_proto::feedback::{Change, Dimension, DurationStats, MonthlyReport};
use std::fmt::Write;

/// The 95% Wilson score interval of `k` successes in `n`, in percent.
pub fn wilson(n: i64, k: i64) -> (f64, f64) {
    if n <= 0 {
        return (0.0, 0.0);
    }
    let (n, p) = (n as f64, k as f64 / n as f64);
    let z = 1.959_963_984_540_054_f64;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    (
        round1((centre - half).max(0.0) * 100.0),
        round1((centre + half).min(1.0) * 100.0),
    )
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Median and 90th percentile (nearest rank) of durations in microseconds, in hours.
pub fn durations(mut micros: Vec<i64>) -> DurationStats {
    if micros.is_empty() {
        return DurationStats::default();
    }
    micros.sort_unstable();
    let rank = |q: f64| {
        let idx = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len()) - 1;
        round1(micros[idx] as f64 / 3_600_000_000.0)
    };
    DurationStats {
        count: micros.len() as i64,
        median_hours: rank(0.5),
        p90_hours: rank(0.9),
    }
}

pub fn change(current: f64, previous: f64) -> Change {
    Change {
        current,
        previous,
        delta: round1(current - previous),
    }
}

pub fn dimension_name(d: Dimension) -> &'static str {
    match d {
        Dimension::Attitude => "服务态度 Attitude",
        Dimension::ProfessionalSkill => "专业技术 Professional skill",
        Dimension::Communication => "沟通 Communication",
        Dimension::Responsiveness => "响应速度 Responsiveness",
        Dimension::ProblemSolving => "解决问题 Problem solving",
        Dimension::Environment => "就医环境 Environment",
        Dimension::CounterService => "窗口服务 Counter service",
        Dimension::Overall => "总体 Overall",
        Dimension::Unspecified => "全部 All",
    }
}

fn signed(x: f64) -> String {
    if x > 0.0 { format!("+{x}") } else { format!("{x}") }
}

fn change_row(out: &mut String, label: &str, c: Option<Change>, unit: &str) {
    let c = c.unwrap_or_default();
    let _ = writeln!(
        out,
        "| {label} | {}{unit} | {}{unit} | {} |",
        c.current,
        c.previous,
        signed(c.delta)
    );
}

/// The monthly analysis report as Markdown (Chinese headings with English).
pub fn markdown(r: &MonthlyReport, min_group_size: i64) -> String {
    let mut out = String::new();
    let month = &r.month;
    let _ = writeln!(out, "# {month} 患者服务月度分析报告 / Monthly patient-service report\n");
    let _ = writeln!(out, "## 总览 Overview\n");
    let _ = writeln!(out, "| 指标 Figure | 本月 This month | 上月 Last month | 变化 Change |");
    let _ = writeln!(out, "|---|---|---|---|");
    change_row(&mut out, "满意度 Satisfaction", r.satisfaction, "%");
    change_row(&mut out, "答卷 Responses", r.responses, "");
    change_row(&mut out, "投诉 Complaints", r.complaints, "");
    change_row(&mut out, "建议 Suggestions", r.suggestions, "");
    change_row(&mut out, "表扬 Praise", r.praise, "");
    let first = r.time_to_first_response.unwrap_or_default();
    let close = r.time_to_close.unwrap_or_default();
    let _ = writeln!(
        out,
        "\n首次响应 Time to first response: median {} h, p90 {} h ({} cases). \
         办结 Time to close: median {} h, p90 {} h ({} cases). 超时 Missed deadlines: {}.\n",
        first.median_hours,
        first.p90_hours,
        first.count,
        close.median_hours,
        close.p90_hours,
        close.count,
        r.missed_deadlines
    );
    let _ = writeln!(out, "## 各维度满意度 Satisfaction by dimension\n");
    let _ = writeln!(out, "| 维度 Dimension | 答卷 Responses | 满意度 Satisfied | 95% CI |");
    let _ = writeln!(out, "|---|---|---|---|");
    for d in &r.dimensions {
        let dim = dimension_name(Dimension::try_from(d.dimension).unwrap_or_default());
        if d.suppressed {
            let _ = writeln!(out, "| {dim} | {} | — (fewer than {min_group_size}) | — |", d.responses);
        } else {
            let _ = writeln!(
                out,
                "| {dim} | {} | {}% | {}–{}% |",
                d.responses, d.satisfied_percent, d.ci_low, d.ci_high
            );
        }
    }
    let _ = writeln!(out, "\n## 满意度最低的科室 Departments with the lowest satisfaction\n");
    if r.worst_departments.is_empty() {
        let _ = writeln!(out, "No department had {min_group_size} or more responses.");
    } else {
        let _ = writeln!(
            out,
            "| 科室 Department | 答卷 Responses | 满意度 Satisfied | 投诉 Complaints |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for d in &r.worst_departments {
            let _ = writeln!(
                out,
                "| {} | {} | {}% | {} |",
                d.department, d.responses, d.satisfied_percent, d.complaints
            );
        }
    }
    let comments = r.comments.clone().unwrap_or_default();
    let _ = writeln!(out, "\n## 患者意见 Patients' comments\n");
    if comments.total == 0 {
        let _ = writeln!(out, "No free-text answers this month.");
    } else {
        let topics: Vec<String> = comments
            .negative_topics
            .iter()
            .map(|t| format!("{} ({})", t.topic, t.count))
            .collect();
        let _ = writeln!(
            out,
            "{} comments, {} scored: {} negative, {} neutral, {} positive.{}",
            comments.total,
            comments.analyzed,
            comments.negative,
            comments.neutral,
            comments.positive,
            if topics.is_empty() {
                String::new()
            } else {
                format!(" Negative comments are about: {}.", topics.join(", "))
            }
        );
    }
    let _ = writeln!(out, "\n## 主要投诉类别 Top complaint categories\n");
    if r.top_categories.is_empty() {
        let _ = writeln!(out, "No complaints this month.");
    } else {
        let _ = writeln!(out, "| 类别 Category | 本月 This month | 上月 Last month |");
        let _ = writeln!(out, "|---|---|---|");
        for c in &r.top_categories {
            let _ = writeln!(out, "| {} | {} | {} |", c.category, c.count, c.previous);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_known_values() {
        // 82.1% of 1000: the interval is about ±2.4 points.
        let (lo, hi) = wilson(1000, 821);
        assert!((lo - 79.6).abs() < 0.2 && (hi - 84.4).abs() < 0.2, "{lo} {hi}");
        assert_eq!(wilson(0, 0), (0.0, 0.0));
        let (lo, hi) = wilson(10, 10);
        assert!(hi == 100.0 && lo > 65.0 && lo < 75.0, "{lo}");
    }

    #[test]
    fn durations_use_nearest_rank() {
        let h = 3_600_000_000;
        let d = durations((1..=10).map(|i| i * h).collect());
        assert_eq!((d.count, d.median_hours, d.p90_hours), (10, 5.0, 9.0));
        assert_eq!(durations(vec![]).count, 0);
    }

    #[test]
    fn markdown_shows_the_headline_changes() {
        let r = MonthlyReport {
            month: "2026-10".into(),
            satisfaction: Some(change(95.9, 82.1)),
            complaints: Some(change(3.0, 25.0)),
            ..Default::default()
        };
        let md = markdown(&r, 30);
        assert!(md.contains("| 满意度 Satisfaction | 95.9% | 82.1% | +13.8 |"), "{md}");
        assert!(md.contains("| 投诉 Complaints | 3 | 25 | -22 |"), "{md}");
    }
}
