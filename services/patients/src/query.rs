//! What List and Search accept: filterable fields, sort orders and search probes.

use hcrm_kit::ApiError;
use hcrm_kit::db::{Sql, Value};
use hcrm_kit::filter::{Field, FieldKind, Literal, Op};
use hcrm_proto::patients::{
    CustomerClass, Education, IncomeBand, IntentGrade, MaritalStatus, OrganizationKind, Sex, ValueTier,
};

/// Parses an enum literal: its full name (`SEX_MALE`), its short name (`MALE`, `male`) or number.
macro_rules! enum_parser {
    ($fn:ident, $ty:ty, $prefix:literal) => {
        fn $fn(text: &str) -> Option<i64> {
            if let Ok(n) = text.parse::<i32>() {
                return <$ty>::try_from(n).ok().map(|v| v as i64);
            }
            let upper = text.to_uppercase();
            <$ty>::from_str_name(&upper)
                .or_else(|| <$ty>::from_str_name(&format!("{}{}", $prefix, upper)))
                .map(|v| v as i64)
        }
    };
}

enum_parser!(parse_sex, Sex, "SEX_");
enum_parser!(parse_education, Education, "EDUCATION_");
enum_parser!(parse_marital, MaritalStatus, "MARITAL_STATUS_");
enum_parser!(parse_income, IncomeBand, "INCOME_BAND_");
enum_parser!(parse_grade, IntentGrade, "INTENT_GRADE_");
enum_parser!(parse_tier, ValueTier, "VALUE_TIER_");
enum_parser!(parse_org_kind, OrganizationKind, "ORGANIZATION_KIND_");
enum_parser!(parse_class, CustomerClass, "CUSTOMER_CLASS_");

/// `customer_class` is derived from the last visit, so it compiles to a time comparison.
fn customer_class_sql(op: Op, value: &Literal, sql: &mut Sql) -> Result<(), String> {
    if !matches!(op, Op::Eq | Op::Ne) {
        return Err("customer_class only takes = or !=".into());
    }
    let class = parse_class(value.as_str()).ok_or("customer_class is POTENTIAL or ACTIVE")?;
    let cutoff = hcrm_kit::time::now_micros() - crate::domain::patient::ACTIVE_WINDOW_MICROS;
    let active = class == CustomerClass::Active as i64;
    if active == (op == Op::Eq) {
        sql.push("(last_visit_at IS NOT NULL AND last_visit_at >= ")
            .bind(Value::Int(cutoff))
            .push(")");
    } else {
        sql.push("(last_visit_at IS NULL OR last_visit_at < ")
            .bind(Value::Int(cutoff))
            .push(")");
    }
    Ok(())
}

/// Fields ListPatients filters on.
pub const PATIENT_FIELDS: &[Field] = &[
    Field {
        name: "code",
        column: "code",
        kind: FieldKind::Text,
    },
    Field {
        name: "display_name",
        column: "display_name",
        kind: FieldKind::Text,
    },
    Field {
        name: "name_pinyin",
        column: "name_pinyin",
        kind: FieldKind::Text,
    },
    Field {
        name: "sex",
        column: "sex",
        kind: FieldKind::Enum(parse_sex),
    },
    Field {
        name: "birth_date",
        column: "birth_date",
        kind: FieldKind::Date,
    },
    Field {
        name: "phone",
        column: "phone",
        kind: FieldKind::Text,
    },
    Field {
        name: "email",
        column: "email",
        kind: FieldKind::Text,
    },
    Field {
        name: "occupation",
        column: "occupation",
        kind: FieldKind::Text,
    },
    Field {
        name: "industry",
        column: "industry",
        kind: FieldKind::Text,
    },
    Field {
        name: "education",
        column: "education",
        kind: FieldKind::Enum(parse_education),
    },
    Field {
        name: "marital_status",
        column: "marital_status",
        kind: FieldKind::Enum(parse_marital),
    },
    Field {
        name: "income_band",
        column: "income_band",
        kind: FieldKind::Enum(parse_income),
    },
    Field {
        name: "address.province",
        column: "province",
        kind: FieldKind::Text,
    },
    Field {
        name: "address.city",
        column: "city",
        kind: FieldKind::Text,
    },
    Field {
        name: "department",
        column: "department",
        kind: FieldKind::Text,
    },
    Field {
        name: "intent_grade",
        column: "intent_grade",
        kind: FieldKind::Enum(parse_grade),
    },
    Field {
        name: "value_tier",
        column: "value_tier",
        kind: FieldKind::Enum(parse_tier),
    },
    Field {
        name: "vip",
        column: "vip",
        kind: FieldKind::Bool,
    },
    Field {
        name: "tags",
        column: "tags",
        kind: FieldKind::Tags,
    },
    Field {
        name: "customer_class",
        column: "last_visit_at",
        kind: FieldKind::Custom(customer_class_sql),
    },
    Field {
        name: "last_visit_time",
        column: "last_visit_at",
        kind: FieldKind::Timestamp,
    },
    Field {
        name: "create_time",
        column: "created_at",
        kind: FieldKind::Timestamp,
    },
    Field {
        name: "update_time",
        column: "updated_at",
        kind: FieldKind::Timestamp,
    },
    Field {
        name: "contact_preferences.do_not_contact",
        column: "do_not_contact",
        kind: FieldKind::Bool,
    },
    Field {
        name: "deceased",
        column: "deceased",
        kind: FieldKind::Bool,
    },
];

/// Fields ListOrganizations filters on.
pub const ORGANIZATION_FIELDS: &[Field] = &[
    Field {
        name: "display_name",
        column: "display_name",
        kind: FieldKind::Text,
    },
    Field {
        name: "kind",
        column: "kind",
        kind: FieldKind::Enum(parse_org_kind),
    },
    Field {
        name: "address.city",
        column: "city",
        kind: FieldKind::Text,
    },
];

/// Fields ListAuditEvents filters on.
pub const AUDIT_FIELDS: &[Field] = &[
    Field {
        name: "actor",
        column: "actor",
        kind: FieldKind::Text,
    },
    Field {
        name: "action",
        column: "action",
        kind: FieldKind::Text,
    },
    Field {
        name: "resource",
        column: "resource",
        kind: FieldKind::Text,
    },
    Field {
        name: "request_id",
        column: "request_id",
        kind: FieldKind::Text,
    },
    Field {
        name: "time",
        column: "at",
        kind: FieldKind::Timestamp,
    },
];

const SORTABLE: &[(&str, &str)] = &[
    ("display_name", "display_name"),
    ("name_pinyin", "name_pinyin"),
    ("code", "code"),
    ("birth_date", "birth_date"),
    ("department", "department"),
    ("intent_grade", "intent_grade"),
    ("value_tier", "value_tier"),
    ("last_visit_time", "last_visit_at"),
    ("create_time", "created_at"),
    ("update_time", "updated_at"),
];

/// Compiles an AIP-132 `order_by` into SQL; the id is always the last key so pages are stable.
pub fn patient_order(order_by: &str) -> Result<String, ApiError> {
    let mut keys = Vec::new();
    if order_by.len() > 200 {
        return Err(ApiError::invalid("order_by", "must be at most 200 characters"));
    }
    for part in order_by.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let field = words.next().unwrap_or_default();
        let direction = match words.next() {
            None | Some("asc") => "ASC",
            Some("desc") => "DESC",
            Some(other) => {
                return Err(ApiError::invalid("order_by", format!("{other:?} is not asc or desc")));
            }
        };
        if words.next().is_some() {
            return Err(ApiError::invalid("order_by", format!("{part:?} has extra words")));
        }
        let column = SORTABLE
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                let names: Vec<_> = SORTABLE.iter().map(|(n, _)| *n).collect();
                ApiError::invalid(
                    "order_by",
                    format!("cannot sort by {field:?}; sortable: {}", names.join(", ")),
                )
            })?;
        keys.push(format!("{column} {direction}"));
    }
    keys.push("id ASC".into());
    Ok(keys.join(", "))
}

/// One way a search query may match, with its score.
pub struct Probe {
    pub sql: Sql,
    pub score: i32,
    pub matched_on: &'static str,
}

/// Builds the indexed lookups for a search query; `scope_sql` restricts them (e.g. department).
pub fn search_probes(query: &str, identity_hash: Option<String>, department: Option<&str>, limit: usize) -> Vec<Probe> {
    let q: String = query.trim().chars().filter(|c| *c != '%' && *c != '_').collect();
    let mut probes = Vec::new();
    let mut probe = |score: i32, matched_on: &'static str, condition: &str, value: String| {
        let mut sql = Sql::new("SELECT id FROM patients WHERE deleted_at IS NULL AND ");
        // A prefix match binds the whole pattern and has no ESCAPE clause (wildcards were removed
        // from the query), so both SQLite and PostgreSQL can answer it from an index.
        let value = if condition.ends_with("LIKE ") {
            format!("{value}%")
        } else {
            value
        };
        sql.push(condition).bind(Value::Text(value));
        if let Some(dept) = department {
            sql.push(" AND department = ").bind(Value::Text(dept.to_string()));
        }
        sql.push(" LIMIT ").bind(Value::Int(limit as i64));
        probes.push(Probe { sql, score, matched_on });
    };
    if q.is_empty() {
        return probes;
    }
    let digits_only = q
        .chars()
        .all(|c| c.is_ascii_digit() || c == '+' || c == '-' || c == ' ');
    let ascii_letters = q.chars().all(|c| c.is_ascii_alphabetic() || c == ' ');
    probe(100, "code", "code = ", q.to_uppercase());
    if let Some(hash) = identity_hash {
        probe(100, "identity_number", "identity_hash = ", hash);
    }
    if digits_only {
        let digits: String = q.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
        if digits.len() == 4 {
            probe(40, "phone_last4", "phone_last4 = ", digits);
        } else if digits.len() >= 5 {
            probe(90, "phone", "phone = ", digits);
        }
    } else if ascii_letters {
        let compact: String = q.to_lowercase().chars().filter(|c| !c.is_whitespace()).collect();
        probe(55, "pinyin", "name_pinyin = ", compact.clone());
        probe(50, "pinyin", "name_pinyin LIKE ", compact.clone());
        probe(45, "initials", "name_initials = ", compact.clone());
        probe(35, "initials", "name_initials LIKE ", compact);
    }
    if !digits_only {
        probe(80, "name", "display_name = ", q.clone());
        probe(60, "name_prefix", "display_name LIKE ", q);
    }
    probes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_by_is_whitelisted() {
        assert_eq!(patient_order("").unwrap(), "id ASC");
        assert_eq!(
            patient_order("update_time desc, display_name").unwrap(),
            "updated_at DESC, display_name ASC, id ASC"
        );
        assert!(patient_order("identity_hash").is_err());
        assert!(patient_order("display_name sideways").is_err());
        assert!(patient_order("display_name; DROP TABLE patients").is_err());
    }

    #[test]
    fn probes_follow_the_shape_of_the_query() {
        let names = |q: &str| {
            search_probes(q, None, None, 10)
                .into_iter()
                .map(|p| p.matched_on)
                .collect::<Vec<_>>()
        };
        assert!(names("8000").contains(&"phone_last4"));
        assert!(names("13800138000").contains(&"phone"));
        assert!(names("zs").contains(&"initials"));
        assert!(names("张三").contains(&"name"));
        assert!(!names("张三").contains(&"phone"));
    }

    #[test]
    fn enum_literals_take_several_forms() {
        assert_eq!(parse_sex("SEX_MALE"), Some(1));
        assert_eq!(parse_sex("male"), Some(1));
        assert_eq!(parse_sex("2"), Some(2));
        assert_eq!(parse_sex("robot"), None);
    }
}
