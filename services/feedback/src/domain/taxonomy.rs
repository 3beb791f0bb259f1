//! The two-level complaint taxonomy. The default follows the categories the seed hospital
//! reports on; a hospital replaces it in configuration (`feedback.categories`).

use hcrm_proto::feedback::{Category as CategoryProto, Taxonomy};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub code: String,
    pub zh: String,
    pub en: String,
    #[serde(default)]
    pub children: Vec<Category>,
}

fn c(code: &str, zh: &str, en: &str, children: &[(&str, &str, &str)]) -> Category {
    Category {
        code: code.into(),
        zh: zh.into(),
        en: en.into(),
        children: children.iter().map(|(code, zh, en)| c(code, zh, en, &[])).collect(),
    }
}

pub fn default_categories() -> Vec<Category> {
    vec![
        c(
            "attitude",
            "服务态度",
            "Attitude",
            &[
                ("rude", "态度生硬", "Rude or dismissive"),
                ("impatient", "解释不耐心", "Impatient explanations"),
            ],
        ),
        c(
            "waiting",
            "等候时间",
            "Waiting time",
            &[
                ("registration", "挂号/缴费排队", "Registration and payment queues"),
                ("consultation", "候诊时间长", "Long wait to see a doctor"),
                ("exam", "检查预约等候", "Waiting for exams"),
            ],
        ),
        c(
            "fees",
            "收费问题",
            "Fees",
            &[
                ("overcharge", "多收费/重复收费", "Overcharged"),
                ("explanation", "费用解释不清", "Charges not explained"),
            ],
        ),
        c(
            "medical_quality",
            "医疗质量",
            "Medical quality",
            &[
                ("diagnosis", "诊断治疗", "Diagnosis and treatment"),
                ("nursing", "护理质量", "Nursing"),
                ("safety", "医疗安全", "Patient safety"),
            ],
        ),
        c("communication", "医患沟通", "Communication", &[]),
        c(
            "environment",
            "就医环境",
            "Environment",
            &[
                ("cleanliness", "卫生", "Cleanliness"),
                ("signage", "标识导向", "Signage"),
                ("parking", "停车", "Parking"),
            ],
        ),
        c("process", "就医流程", "Process", &[]),
        c("other", "其他", "Other", &[]),
    ]
}

/// Checks a configured taxonomy: codes unique and well formed.
pub fn check(categories: &[Category]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    let ok = |code: &str| {
        !code.is_empty()
            && code.len() <= 40
            && code
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
    };
    if categories.is_empty() {
        return Err("needs at least one category".into());
    }
    for top in categories {
        if !ok(&top.code) || !seen.insert(top.code.clone()) {
            return Err(format!(
                "category code {:?} must be unique lower-case letters, digits and `_`",
                top.code
            ));
        }
        let mut children = std::collections::HashSet::new();
        for child in &top.children {
            if !ok(&child.code) || !children.insert(child.code.clone()) {
                return Err(format!(
                    "subcategory code {}.{:?} must be unique lower-case letters, digits and `_`",
                    top.code, child.code
                ));
            }
        }
    }
    Ok(())
}

/// Whether `category` (and `subcategory`, when given) are in the taxonomy; the error says what
/// is valid.
pub fn validate(categories: &[Category], category: &str, subcategory: &str) -> Result<(), (&'static str, String)> {
    let Some(top) = categories.iter().find(|c| c.code == category) else {
        let codes: Vec<&str> = categories.iter().map(|c| c.code.as_str()).collect();
        return Err(("case.category", format!("must be one of: {}", codes.join(", "))));
    };
    if !subcategory.is_empty() && !top.children.iter().any(|c| c.code == subcategory) {
        let codes: Vec<&str> = top.children.iter().map(|c| c.code.as_str()).collect();
        let valid = if codes.is_empty() {
            "none (leave it empty)".to_string()
        } else {
            codes.join(", ")
        };
        return Err(("case.subcategory", format!("under {category} must be one of: {valid}")));
    }
    Ok(())
}

fn to_proto(c: &Category) -> CategoryProto {
    CategoryProto {
        code: c.code.clone(),
        name_zh: c.zh.clone(),
        name_en: c.en.clone(),
        children: c.children.iter().map(to_proto).collect(),
    }
}

pub fn taxonomy(categories: &[Category]) -> Taxonomy {
    Taxonomy {
        categories: categories.iter().map(to_proto).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_taxonomy_is_valid_and_checks_codes() {
        let cats = default_categories();
        check(&cats).unwrap();
        assert!(validate(&cats, "waiting", "exam").is_ok());
        assert!(validate(&cats, "waiting", "").is_ok());
        let (field, msg) = validate(&cats, "nope", "").unwrap_err();
        assert_eq!(field, "case.category");
        assert!(msg.contains("attitude"), "{msg}");
        let (field, msg) = validate(&cats, "communication", "x").unwrap_err();
        assert_eq!(field, "case.subcategory");
        assert!(msg.contains("none"), "{msg}");
        let mut dup = cats.clone();
        dup.push(dup[0].clone());
        assert!(check(&dup).is_err());
    }
}
