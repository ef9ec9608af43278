//! One-dimensional arrays in PostgreSQL's text format, split into their elements.
//!
//! ```text
//! {alpha,beta}                                  -> ["alpha", "beta"]
//! {"with space","quo\"te",NULL,"comma,here",""} -> ["with space", "quo\"te", null, "comma,here", ""]
//! {}                                            -> []
//! [0:1]={7,8}                                   -> ["7", "8"]  (explicit bounds are dropped)
//! ```
//!
//! An unquoted `NULL` (any case) is SQL NULL; a quoted `"NULL"` is the text. Backslash escapes
//! the next character, inside or outside quotes. Multi-dimensional arrays are refused: Debezium
//! flattens nothing either, and our element converters expect scalars.

/// Splits `text` into elements (`None` for NULL), or says why it cannot.
pub(crate) fn parse_array(text: &str) -> Result<Vec<Option<String>>, String> {
    let body = match text.find("={") {
        Some(at) if text.starts_with('[') => &text[at + 1..],
        _ => text,
    };
    let inner = body
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .ok_or_else(|| "an array must be enclosed in { }".to_string())?;
    let mut elements = Vec::new();
    if inner.is_empty() {
        return Ok(elements);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let mut element = String::new();
        let mut quoted = false;
        let mut in_quotes = false;
        while let Some(&c) = chars.peek() {
            match c {
                '\\' => {
                    chars.next();
                    let escaped = chars
                        .next()
                        .ok_or_else(|| "array text ends after a backslash".to_string())?;
                    element.push(escaped);
                }
                '"' => {
                    chars.next();
                    in_quotes = !in_quotes;
                    quoted = true;
                }
                ',' if !in_quotes => break,
                '{' if !in_quotes => {
                    return Err("multi-dimensional arrays are not supported".to_string())
                }
                _ => {
                    chars.next();
                    element.push(c);
                }
            }
        }
        if in_quotes {
            return Err("array text has an unterminated quote".to_string());
        }
        let is_null = !quoted && element.eq_ignore_ascii_case("NULL");
        elements.push(if is_null { None } else { Some(element) });
        if chars.next().is_none() {
            return Ok(elements);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(items: &[Option<&str>]) -> Vec<Option<String>> {
        items.iter().map(|item| item.map(str::to_string)).collect()
    }

    #[test]
    fn simple_and_empty() {
        assert_eq!(
            parse_array("{alpha,beta}").unwrap(),
            owned(&[Some("alpha"), Some("beta")])
        );
        assert_eq!(parse_array("{}").unwrap(), owned(&[]));
        assert_eq!(
            parse_array("{1,NULL,3}").unwrap(),
            owned(&[Some("1"), None, Some("3")])
        );
        assert_eq!(
            parse_array("[0:1]={7,8}").unwrap(),
            owned(&[Some("7"), Some("8")])
        );
    }

    #[test]
    fn quoting_and_escapes() {
        let parsed =
            parse_array(r#"{"with space","quo\"te",NULL,"comma,here","","NULL",a\,b}"#).unwrap();
        assert_eq!(
            parsed,
            owned(&[
                Some("with space"),
                Some("quo\"te"),
                None,
                Some("comma,here"),
                Some(""),
                Some("NULL"),
                Some("a,b")
            ])
        );
    }

    #[test]
    fn refuses_what_it_cannot_represent() {
        assert!(parse_array("{{1,2},{3,4}}").is_err());
        assert!(parse_array("1,2").is_err());
        assert!(parse_array(r#"{"open}"#).is_err());
    }
}
