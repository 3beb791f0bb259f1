//! Resource names, etags and stored documents: the conventions every service's store shares.

use crate::ApiError;

/// The etag of a row version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// ABORTED unless `expected` is empty or matches the current version.
pub fn check_etag(resource: &str, expected: &str, version: i64) -> Result<(), ApiError> {
    if !expected.is_empty() && expected != etag(version) {
        return Err(ApiError::Aborted(format!(
            "{resource} was changed since it was read (etag {}); read it again and retry",
            etag(version)
        )));
    }
    Ok(())
}

/// The id part of a resource name `{collection}/{id}`.
pub fn parse_name<'a>(field: &str, name: &'a str, collection: &str) -> Result<&'a str, ApiError> {
    name.strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| !id.is_empty() && id.len() <= 64 && !id.contains('/') && !id.chars().any(char::is_control))
        .ok_or_else(|| {
            if name.is_empty() {
                ApiError::invalid(field, "is required")
            } else {
                ApiError::invalid(field, format!("must look like {collection}/{{id}}"))
            }
        })
}

/// Decodes a stored protobuf document.
pub fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, ApiError> {
    M::decode(bytes).map_err(ApiError::internal)
}

/// One page of `items` (fetched with one extra to know whether more follow) and the token for
/// the next, bound to `query`.
pub fn page<T, P: serde::Serialize>(
    mut items: Vec<T>,
    size: usize,
    position: impl Fn(&T) -> P,
    pages: &crate::paging::PageTokens,
    query: &str,
) -> (Vec<T>, String) {
    let more = items.len() > size;
    items.truncate(size);
    let token = match (more, items.last()) {
        (true, Some(last)) => pages.issue(query, &position(last)),
        _ => String::new(),
    };
    (items, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_etags() {
        assert_eq!(parse_name("name", "cases/abc", "cases").unwrap(), "abc");
        assert!(parse_name("name", "cases/a/b", "cases").is_err());
        assert!(parse_name("name", "cases/a\0b", "cases").is_err());
        assert!(
            parse_name("name", "", "cases")
                .unwrap_err()
                .to_string()
                .contains("is required")
        );
        assert!(check_etag("cases/a", "\"2\"", 2).is_ok());
        assert!(matches!(check_etag("cases/a", "\"1\"", 2), Err(ApiError::Aborted(_))));
        assert!(check_etag("cases/a", "", 2).is_ok());
    }
}
