//! Reading Prometheus's text format back: the samples a `/metrics` page holds, and quantiles
//! from a histogram's buckets. Sans-IO (text in, values out).
//!
//! Used by whoever scrapes our binaries without a Prometheus server: the live page
//! (`consumer status --serve`), `scripts/check_env` (through it) and the tests.
//!
//! ```text
//! # TYPE pgcdc_consumer_records_total counter
//! pgcdc_consumer_records_total{outcome="applied"} 1893      -> Sample { name, labels: [(outcome, applied)], value: 1893 }
//! pgcdc_consumer_end_to_end_latency_seconds_bucket{le="0.01"} 12
//! ```

/// One line of a `/metrics` page: a name, its labels and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if the sample has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of a page; comment lines and lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (
                &line[..open],
                parse_labels(&line[open + 1..close])?,
                &line[close + 1..],
            )
        }
        None => {
            let space = line.find(' ')?;
            (&line[..space], Vec::new(), &line[space..])
        }
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `a="x",b="y\"z"` -> `[(a, x), (b, y"z)]`.
fn parse_labels(text: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(',' | ' ')) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(labels);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((key.trim().to_string(), value));
    }
}

/// The sum of every sample named `name` whose labels include all of `matching`.
pub fn sum(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && matching.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
        .fold(0.0, |total, value| total + value)
}

/// Whether the page has any sample named `name`.
pub fn has(samples: &[Sample], name: &str) -> bool {
    samples.iter().any(|s| s.name == name)
}

/// The cumulative buckets `(le, count)` of histogram `name` (its `_bucket` samples, summed
/// over every other label), in order of `le`.
pub fn buckets(samples: &[Sample], name: &str) -> Vec<(f64, f64)> {
    let bucket_name = format!("{name}_bucket");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for sample in samples.iter().filter(|s| s.name == bucket_name) {
        let Some(le) = sample.label("le").and_then(|le| match le {
            "+Inf" => Some(f64::INFINITY),
            le => le.parse::<f64>().ok(),
        }) else {
            continue;
        };
        match buckets.iter_mut().find(|(b, _)| *b == le) {
            Some((_, count)) => *count += sample.value,
            None => buckets.push((le, sample.value)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The `q` quantile (0..1) of cumulative `buckets`, interpolated linearly inside the bucket it
/// falls in, as Prometheus's `histogram_quantile` does; `None` without observations. A quantile
/// in the `+Inf` bucket is reported as the highest finite bound.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower_bound = 0.0;
    let mut lower_count = 0.0;
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower_bound);
            }
            let in_bucket = count - lower_count;
            if in_bucket <= 0.0 {
                return Some(le);
            }
            return Some(lower_bound + (le - lower_bound) * (rank - lower_count) / in_bucket);
        }
        lower_bound = le;
        lower_count = count;
    }
    Some(lower_bound)
}

/// Two buckets lists subtracted (`now - before`, matched by `le`): the observations between two
/// scrapes, for quantiles over a recent window instead of since start.
pub fn buckets_since(now: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    now.iter()
        .map(|&(le, count)| {
            let earlier = before
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0.0, |(_, c)| *c);
            (le, (count - earlier).max(0.0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# TYPE pgcdc_consumer_records_total counter
pgcdc_consumer_records_total{outcome="applied"} 10
pgcdc_consumer_records_total{outcome="duplicate"} 2
pgcdc_reader_confirmed_lsn 123456
pgcdc_x_seconds_bucket{le="0.01"} 5
pgcdc_x_seconds_bucket{le="0.1"} 9
pgcdc_x_seconds_bucket{le="+Inf"} 10
pgcdc_x_seconds_sum 1.5
pgcdc_odd{topic="a\"b",p="1"} 1e3
"#;

    #[test]
    fn samples_with_and_without_labels() {
        let samples = parse(PAGE);
        assert_eq!(samples.len(), 8);
        assert_eq!(sum(&samples, "pgcdc_consumer_records_total", &[]), 12.0);
        assert_eq!(
            sum(
                &samples,
                "pgcdc_consumer_records_total",
                &[("outcome", "applied")]
            ),
            10.0
        );
        assert_eq!(sum(&samples, "pgcdc_reader_confirmed_lsn", &[]), 123456.0);
        let odd = samples.iter().find(|s| s.name == "pgcdc_odd").unwrap();
        assert_eq!(odd.label("topic"), Some("a\"b"));
        assert_eq!(odd.value, 1000.0);
    }

    #[test]
    fn quantiles_from_buckets() {
        let b = buckets(&parse(PAGE), "pgcdc_x_seconds");
        assert_eq!(b.len(), 3);
        assert_eq!(quantile(&b, 0.5), Some(0.01 * 5.0 / 5.0));
        let p80 = quantile(&b, 0.8).unwrap();
        assert!((p80 - (0.01 + 0.09 * 3.0 / 4.0)).abs() < 1e-9, "{p80}");
        assert_eq!(quantile(&b, 0.99), Some(0.1));
        assert_eq!(quantile(&[], 0.5), None);
        let none_new = buckets_since(&b, &b);
        assert_eq!(quantile(&none_new, 0.5), None);
    }
}
