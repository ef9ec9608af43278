//! `--route REGEX=REPLACEMENT`: which table a topic's records go to, Kafka Connect's
//! `RegexRouter` semantics.
//!
//! Like the SMT, a route is matched against the whole **topic** name (an implicit `^...$`),
//! and `$1`, `$2` in the replacement are the regex's groups (Java's syntax: `$1x` is group 1
//! then `x`). The result names the table, `schema.table` or `table`. Routes are tried in the
//! order given; the first that matches wins; a topic no route matches keeps the decoder's
//! default table (`source.schema`.`source.table`, or the topic with dots as underscores).
//!
//! ```text
//! --route 'dbserver1\.public\.(.*)=mirror.$1'     dbserver1.public.orders -> mirror.orders
//! --route 'outbox\.event\.(.*)=$1_events'         outbox.event.order      -> order_events
//! ```

use regex::Regex;

use crate::change::TableId;

/// A bad `--route` value.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("--route `{0}` is not REGEX=REPLACEMENT")]
    NoEquals(String),
    #[error("--route `{spec}`: the regex does not compile: {reason}")]
    BadRegex { spec: String, reason: String },
}

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    regex: Regex,
    /// The replacement in the `regex` crate's syntax (`${1}`).
    replacement: String,
}

/// The routes of the command line.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Compiles `REGEX=REPLACEMENT` specs (split at the last `=`).
    pub fn new(specs: &[String]) -> Result<Self, RouteError> {
        let mut routes = Vec::new();
        for spec in specs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let (regex, replacement) = spec
                .rsplit_once('=')
                .ok_or_else(|| RouteError::NoEquals(spec.to_string()))?;
            let regex =
                Regex::new(&format!("^(?:{regex})$")).map_err(|e| RouteError::BadRegex {
                    spec: spec.to_string(),
                    reason: e.to_string(),
                })?;
            routes.push(Route {
                regex,
                replacement: java_replacement(replacement),
            });
        }
        Ok(Self { routes })
    }

    /// The table for a record of `topic` whose decoder said `default`.
    pub fn route(&self, topic: &str, default: &TableId) -> TableId {
        for route in &self.routes {
            if let Some(captures) = route.regex.captures(topic) {
                let mut name = String::new();
                captures.expand(&route.replacement, &mut name);
                return TableId::parse(&name);
            }
        }
        default.clone()
    }
}

/// Java's `$1abc` (group 1, then `abc`) -> the regex crate's `${1}abc`; `\$` is a literal `$`.
fn java_replacement(replacement: &str) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'$') => {
                chars.next();
                out.push_str("$$");
            }
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut group = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    group.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{group}}}"));
            }
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(specs: &[&str]) -> Router {
        Router::new(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn routes_match_the_whole_topic_and_expand_groups() {
        let router = router(&[
            r"dbserver1\.public\.(.*)=mirror.$1",
            r"outbox\.event\.(.*)=$1_events",
        ]);
        let default = TableId::new(Some("public"), "orders");
        assert_eq!(
            router.route("dbserver1.public.orders", &default),
            TableId::new(Some("mirror"), "orders")
        );
        assert_eq!(
            router.route("outbox.event.order", &default),
            TableId::new(None, "order_events")
        );
        // A partial match is no match (RegexRouter uses Matcher.matches()).
        assert_eq!(router.route("x.dbserver1.public.orders", &default), default);
    }

    #[test]
    fn java_style_replacements() {
        assert_eq!(java_replacement("$1abc"), "${1}abc");
        assert_eq!(java_replacement("a$12b"), "a${12}b");
        assert_eq!(java_replacement(r"cost\$"), "cost$$");
        let r = router(&[r"(\w+)\.(\w+)=$2_$1"]);
        assert_eq!(
            r.route("a.b", &TableId::new(None, "x")),
            TableId::new(None, "b_a")
        );
    }

    #[test]
    fn bad_routes_say_what_is_wrong() {
        let error = Router::new(&["no-equals".to_string()]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--route `no-equals` is not REGEX=REPLACEMENT"
        );
        assert!(Router::new(&["(=x".to_string()]).is_err());
    }
}
