//! Collects every wrong field of a request before answering, so the caller sees them all at once.

use crate::error::{ApiError, FieldViolation};

/// A list of field violations being built up while a request is checked.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// How many violations so far: compare before and after a check to see if it added any.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was wrong, else `INVALID_ARGUMENT` with every violation.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }

    /// Checks a free-text field: no control characters, at most `max` characters, and present
    /// when `required`.
    pub fn text(&mut self, field: &str, value: &str, required: bool, max: usize) {
        if value.trim().is_empty() {
            if required {
                self.add(field, "is required");
            } else if !value.is_empty() {
                self.add(field, "must not be only white space");
            }
            return;
        }
        let len = value.chars().count();
        if len > max {
            self.add(field, format!("must be at most {max} characters, got {len}"));
        }
        if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            self.add(field, "must not contain control characters");
        }
    }

    /// Checks a client request id: empty, or 1–64 printable ASCII characters.
    pub fn request_id(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        if value.len() > 64 || !value.chars().all(|c| c.is_ascii_graphic()) {
            self.add(field, "must be 1–64 printable ASCII characters");
        }
    }

    /// Checks a phone number: an optional leading `+`, then 5–20 digits with optional spaces or
    /// dashes between them.
    pub fn phone(&mut self, field: &str, value: &str) {
        if normalize_phone(value).is_none() {
            self.add(
                field,
                "must be a phone number: digits with an optional leading +, 5–20 digits",
            );
        }
    }

    /// Checks an e-mail address loosely: one `@`, a dot in the domain, no spaces.
    pub fn email(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let ok = value.len() <= 254
            && value.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
            })
            && value.matches('@').count() == 1
            && !value.chars().any(char::is_whitespace);
        if !ok {
            self.add(field, "must be an e-mail address");
        }
    }

    /// Checks an enum value received as an `i32`: known and, when `required`, not UNSPECIFIED.
    pub fn enum_value<E: TryFrom<i32>>(&mut self, field: &str, value: i32, required: bool) {
        if E::try_from(value).is_err() {
            self.add(field, format!("unknown enum value {value}"));
        } else if required && value == 0 {
            self.add(field, "is required");
        }
    }
}

/// Normalises a phone number to `+digits` or `digits`; `None` when it is not one.
pub fn normalize_phone(value: &str) -> Option<String> {
    let trimmed = value.trim();
    let (plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", trimmed),
    };
    let mut digits = String::with_capacity(rest.len() + 1);
    digits.push_str(plus);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' => {}
            _ => return None,
        }
    }
    let count = digits.len() - plus.len();
    (5..=20).contains(&count).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalised_or_rejected() {
        assert_eq!(normalize_phone("138 0013-8000").as_deref(), Some("13800138000"));
        assert_eq!(normalize_phone("+86 13800138000").as_deref(), Some("+8613800138000"));
        assert_eq!(normalize_phone("12ab"), None);
        assert_eq!(normalize_phone("123"), None);
    }

    #[test]
    fn violations_collect_all_fields() {
        let mut v = Violations::new();
        v.text("a", "", true, 10);
        v.text("b", "01234567890", false, 10);
        v.email("c", "nobody");
        match v.finish() {
            Err(ApiError::InvalidArgument(list)) => {
                let fields: Vec<_> = list.iter().map(|f| f.field.as_str()).collect();
                assert_eq!(fields, ["a", "b", "c"]);
            }
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }
}
