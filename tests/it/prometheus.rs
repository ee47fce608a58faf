//! A strict parser of the Prometheus text exposition format (0.0.4), for
//! checking `/metrics`: every line is a `# HELP`, a `# TYPE` or a sample;
//! names and label names are valid; label values use only the escapes the
//! format allows; each family's `TYPE` comes before its samples, once, and
//! its samples are together; no series appears twice; values are numbers.

use std::collections::{BTreeMap, HashSet};

/// One sample: metric name, labels (sorted), value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Exposition {
    /// Family name → type.
    pub types: BTreeMap<String, String>,
    pub help: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the series `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    valid_name(name) && !name.contains(':') && !name.starts_with("__")
}

/// The family a sample belongs to: summaries and histograms add suffixes.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types
                .get(base)
                .is_some_and(|t| t == "histogram" || t == "summary")
        {
            return base;
        }
    }
    name
}

pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    let mut finished_families: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<(String, Vec<(String, String)>)> = HashSet::new();
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the exposition must end with a newline".into());
    }
    for (i, line) in text.lines().enumerate() {
        let at = |msg: String| format!("line {}: {msg}: {line:?}", i + 1);
        if line.is_empty() {
            continue;
        }
        let family_starts = |name: &str,
                             current: &mut Option<String>,
                             finished: &mut HashSet<String>|
         -> Result<(), String> {
            if current.as_deref() != Some(name) {
                if finished.contains(name) {
                    return Err(format!("family {name} appears in two places"));
                }
                if let Some(previous) = current.take() {
                    finished.insert(previous);
                }
                *current = Some(name.to_string());
            }
            Ok(())
        };
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            if !valid_name(name) {
                return Err(at("bad metric name in HELP".into()));
            }
            family_starts(name, &mut current, &mut finished_families).map_err(at)?;
            if out.help.insert(name.into(), help.into()).is_some() {
                return Err(at("second HELP".into()));
            }
            let mut chars = help.chars();
            while let Some(c) = chars.next() {
                if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                    return Err(at("bad escape in HELP".into()));
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| at("TYPE without a type".into()))?;
            if !valid_name(name) {
                return Err(at("bad metric name in TYPE".into()));
            }
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(at(format!("unknown type {kind}")));
            }
            family_starts(name, &mut current, &mut finished_families).map_err(at)?;
            if out.types.insert(name.into(), kind.into()).is_some() {
                return Err(at("second TYPE".into()));
            }
            if out
                .samples
                .iter()
                .any(|s| family_of(&s.name, &out.types) == name)
            {
                return Err(at("TYPE after the family's samples".into()));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        let family = family_of(&sample.name, &out.types).to_string();
        family_starts(&family, &mut current, &mut finished_families).map_err(at)?;
        if out.types.get(&family).is_some_and(|t| t == "counter") && sample.value < 0.0 {
            return Err(at("a negative counter".into()));
        }
        let key = (
            sample.name.clone(),
            sample
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        if !series.insert(key) {
            return Err(at("the same series twice".into()));
        }
        out.samples.push(sample);
    }
    Ok(out)
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample needs a value")?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        loop {
            // A label name, `=`, a quoted value, then `,` or `}`.
            let start = match chars.peek() {
                Some((_, '}')) => {
                    let (i, _) = chars.next().expect("peeked");
                    rest = &after[i + 1..];
                    break;
                }
                Some((i, _)) => *i,
                None => return Err("unterminated labels".into()),
            };
            let mut eq = None;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    eq = Some(i);
                    break;
                }
            }
            let eq = eq.ok_or("a label without =")?;
            let label = &after[start..eq];
            if !valid_label_name(label) {
                return Err(format!("bad label name {label:?}"));
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("a label value must be quoted".into());
            }
            let mut value = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('"') => break,
                    Some('\\') => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => return Err(format!("bad escape \\{other:?} in a label value")),
                    },
                    Some('\n') | None => return Err("unterminated label value".into()),
                    Some(c) => value.push(c),
                }
            }
            if labels.insert(label.to_string(), value).is_some() {
                return Err(format!("label {label} twice"));
            }
            match chars.next().map(|(_, c)| c) {
                Some(',') => {}
                Some('}') => {
                    let consumed = chars.peek().map_or(after.len(), |(i, _)| *i);
                    rest = &after[consumed..];
                    break;
                }
                other => return Err(format!("expected , or }} after a label, found {other:?}")),
            }
        }
    }
    let rest = rest
        .strip_prefix(' ')
        .ok_or("exactly one space before the value")?;
    let mut parts = rest.split(' ');
    let value = parts.next().ok_or("no value")?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v if v.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => v
            .parse()
            .map_err(|_| format!("value {v:?} is not a number"))?,
        v => return Err(format!("value {v:?} is not a number")),
    };
    if let Some(ts) = parts.next()
        && ts.parse::<i64>().is_err()
    {
        return Err(format!("timestamp {ts:?} is not an integer"));
    }
    if parts.next().is_some() {
        return Err("text after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

#[test]
fn the_parser_refuses_what_the_format_forbids() {
    let good = "# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\"} 3\na_total 1 1700000000\n";
    let parsed = parse(good).expect("valid");
    assert_eq!(parsed.value("a_total", &[("x", "q\"\\\n")]), Some(3.0));
    assert_eq!(parsed.value("a_total", &[]), Some(1.0));
    for bad in [
        "a 1",                                   // no final newline
        "a{x=\"1\"} 1\na{x=\"1\"} 2\n",          // the same series twice
        "a 1\nb 1\na 2\n",                       // a family in two places
        "a{x=1} 1\n",                            // unquoted value
        "a{x=\"\\q\"} 1\n",                      // bad escape
        "1a 1\n",                                // bad name
        "a{__x=\"1\"} 1\n",                      // reserved label name
        "a one\n",                               // not a number
        "a  1\n",                                // two spaces
        "# TYPE a counter\na -1\n",              // negative counter
        "a 1\n# TYPE a gauge\n",                 // TYPE after samples
        "# TYPE a gauge\n# TYPE a gauge\na 1\n", // second TYPE
        "# TYPE a histo\n",                      // unknown type
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}
