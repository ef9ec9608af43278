//! Options that pick columns by name: which are written, masked, truncated or described, and
//! which make a table's key (Debezium's column options, with its matching rules).
//!
//! ```text
//! column.include.list / column.exclude.list   public\.orders\.(id|total)     written / left out
//! column.mask.with.N.chars                    public\.users\.email           "****" (strings)
//! column.truncate.to.N.chars                  public\.posts\.body            the first N characters
//! column.propagate.source.type                public\.orders\..*             __debezium.source.column.* schema parameters
//! message.key.columns                         public.orders:customer_id,id;public\.log.*:at
//! ```
//!
//! A selector is a comma-separated list of regular expressions (a `\,` is a comma inside one);
//! each must match a whole `schema.table.column` name, ignoring case, as in Debezium.

use regex::Regex;

/// Regular expressions over `schema.table.column` (or `schema.table` for key rules).
#[derive(Debug, Clone)]
pub struct ColumnSelector {
    text: String,
    patterns: Vec<Regex>,
}

impl PartialEq for ColumnSelector {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for ColumnSelector {}

impl ColumnSelector {
    /// Parses a comma-separated list of regular expressions.
    pub fn parse(text: &str) -> Result<Self, String> {
        let patterns = split_regex_list(text)
            .iter()
            .map(|pattern| {
                Regex::new(&format!("(?i)^(?:{pattern})$"))
                    .map_err(|e| format!("'{pattern}' is not a regular expression: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if patterns.is_empty() {
            return Err("expected one or more regular expressions, comma-separated".into());
        }
        Ok(ColumnSelector {
            text: text.to_string(),
            patterns,
        })
    }

    /// True when one of the expressions matches the whole name.
    pub fn matches(&self, name: &str) -> bool {
        self.patterns.iter().any(|pattern| pattern.is_match(name))
    }

    /// The list as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Debezium's `RegExSplitter`: split at commas, except escaped ones (`\,`), trimming blanks.
fn split_regex_list(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                current.push(',');
                chars.next();
            }
            ',' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|part| part.trim().to_string())
        .filter(|part| !part.is_empty())
        .collect()
}

/// One `message.key.columns` entry: the tables it applies to and their key columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumnsRule {
    pub tables: ColumnSelector,
    pub columns: Vec<String>,
}

impl KeyColumnsRule {
    /// `table-regex:col,col;table-regex:col`, Debezium's `message.key.columns`.
    pub fn parse_list(text: &str) -> Result<Vec<KeyColumnsRule>, String> {
        text.split(';')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let (tables, columns) = entry.split_once(':').ok_or_else(|| {
                    format!("'{entry}': expected <schema.table regex>:<column>,<column>")
                })?;
                let columns: Vec<String> = columns
                    .split(',')
                    .map(|column| column.trim().to_string())
                    .filter(|column| !column.is_empty())
                    .collect();
                if columns.is_empty() {
                    return Err(format!("'{entry}': no key columns after the ':'"));
                }
                Ok(KeyColumnsRule {
                    tables: ColumnSelector::parse(tables.trim())?,
                    columns,
                })
            })
            .collect()
    }
}

/// Every column option; empty (the default) changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnRules {
    /// `column.include.list`: only these columns are written (with `exclude`: an error in
    /// Debezium; the flags refuse both).
    pub include: Option<ColumnSelector>,
    /// `column.exclude.list`: these columns are left out.
    pub exclude: Option<ColumnSelector>,
    /// `column.mask.with.N.chars`: (N, columns).
    pub mask: Vec<(usize, ColumnSelector)>,
    /// `column.truncate.to.N.chars`: (N, columns).
    pub truncate: Vec<(usize, ColumnSelector)>,
    /// `column.propagate.source.type`.
    pub propagate_source_type: Option<ColumnSelector>,
    /// `datatype.propagate.source.type`: over the type name (`varchar`, `int4`), alone or as
    /// `schema.table.typename`.
    pub propagate_datatype: Option<ColumnSelector>,
    /// `message.key.columns`: the first rule whose tables match gives the key.
    pub message_key_columns: Vec<KeyColumnsRule>,
}

impl ColumnRules {
    /// False when the column lists leave `schema.table.column` out of events.
    pub fn is_written(&self, column_id: &str) -> bool {
        if let Some(include) = &self.include {
            return include.matches(column_id);
        }
        !self
            .exclude
            .as_ref()
            .is_some_and(|exclude| exclude.matches(column_id))
    }

    /// The mask length for the column, if it is masked (the first matching rule).
    pub fn mask_length(&self, column_id: &str) -> Option<usize> {
        self.mask
            .iter()
            .find(|(_, columns)| columns.matches(column_id))
            .map(|(length, _)| *length)
    }

    /// The truncation length for the column, if any (the first matching rule).
    pub fn truncate_length(&self, column_id: &str) -> Option<usize> {
        self.truncate
            .iter()
            .find(|(_, columns)| columns.matches(column_id))
            .map(|(length, _)| *length)
    }

    /// True when the column's schema carries its source type.
    pub fn propagates_source_type(&self, column_id: &str, type_name: &str) -> bool {
        self.propagate_source_type
            .as_ref()
            .is_some_and(|columns| columns.matches(column_id))
            || self.propagate_datatype.as_ref().is_some_and(|types| {
                let table = column_id.rsplit_once('.').map_or("", |(table, _)| table);
                types.matches(type_name) || types.matches(&format!("{table}.{type_name}"))
            })
    }

    /// The key columns `message.key.columns` gives `schema.table`, if a rule matches it.
    pub fn key_columns_for(&self, table_id: &str) -> Option<&[String]> {
        self.message_key_columns
            .iter()
            .find(|rule| rule.tables.matches(table_id))
            .map(|rule| rule.columns.as_slice())
    }
}

/// `N:regex,regex` (our flag form of `column.mask.with.N.chars` and `column.truncate.to.N.chars`).
pub fn parse_length_and_columns(text: &str) -> Result<(usize, ColumnSelector), String> {
    let (length, columns) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}': expected <N>:<regex>,<regex>"))?;
    let length = length
        .trim()
        .parse()
        .map_err(|_| format!("'{length}' is not a length (a whole number of characters)"))?;
    Ok((length, ColumnSelector::parse(columns)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_whole_names_ignoring_case() {
        let selector =
            ColumnSelector::parse(r"public\.orders\.(id|total), public\.t\.a\,b").unwrap();
        assert!(selector.matches("public.orders.id"));
        assert!(selector.matches("PUBLIC.Orders.TOTAL"));
        assert!(!selector.matches("public.orders.id2"));
        assert!(!selector.matches("xpublic.orders.id"));
        assert!(selector.matches("public.t.a,b"));
        assert!(ColumnSelector::parse("(")
            .unwrap_err()
            .contains("not a regular expression"));
        assert!(ColumnSelector::parse(" , ").is_err());
    }

    #[test]
    fn include_wins_over_exclude_and_first_rule_wins() {
        let rules = ColumnRules {
            exclude: Some(ColumnSelector::parse(r"public\.t\.secret").unwrap()),
            mask: vec![
                (4, ColumnSelector::parse(r"public\.t\.a").unwrap()),
                (8, ColumnSelector::parse(r"public\.t\..*").unwrap()),
            ],
            ..ColumnRules::default()
        };
        assert!(!rules.is_written("public.t.secret"));
        assert!(rules.is_written("public.t.other"));
        assert_eq!(rules.mask_length("public.t.a"), Some(4));
        assert_eq!(rules.mask_length("public.t.b"), Some(8));
        assert_eq!(rules.truncate_length("public.t.b"), None);
        let include = ColumnRules {
            include: Some(ColumnSelector::parse(r"public\.t\.(id|a)").unwrap()),
            ..ColumnRules::default()
        };
        assert!(include.is_written("public.t.a"));
        assert!(!include.is_written("public.t.b"));
    }

    #[test]
    fn message_key_columns_parse_like_debezium() {
        let rules =
            KeyColumnsRule::parse_list(r"public.orders:customer_id, id;public\.log.*:at").unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].columns, ["customer_id", "id"]);
        let column_rules = ColumnRules {
            message_key_columns: rules,
            ..ColumnRules::default()
        };
        assert_eq!(
            column_rules.key_columns_for("public.log_2024"),
            Some(&["at".to_string()][..])
        );
        assert_eq!(column_rules.key_columns_for("public.other"), None);
        assert!(KeyColumnsRule::parse_list("public.orders").is_err());
        assert!(KeyColumnsRule::parse_list("public.orders:").is_err());
        assert_eq!(parse_length_and_columns(r"4:public\.t\.a").unwrap().0, 4);
        assert!(parse_length_and_columns("x:a").is_err());
    }
}
