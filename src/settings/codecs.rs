//! How each kind of value is read from TOML and from the environment, and shown by
//! `get`.

use std::marker::PhantomData;
use std::time::Duration;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Secret, REDACTED};

/// How one setting's value is read from TOML and from the environment, and
/// shown by `get`.
pub(super) trait Codec {
    type Value;

    fn parse(value: toml::Value) -> Result<Self::Value, String>;

    /// Like `parse`, for codecs that care about the document order of a table.
    fn parse_ordered(value: Ordered) -> Result<Self::Value, String> {
        Self::parse(value.value)
    }

    fn emit(value: &Self::Value) -> Option<toml::Value>;

    /// A TOML value if `raw` parses as one, else the raw text as a string.
    fn from_env(raw: &str) -> Ordered {
        Ordered::parse(raw).unwrap_or_else(|| toml::Value::String(raw.to_owned()).into())
    }
}

/// A TOML value and, if it is a table, its keys in document order: without
/// toml's `preserve_order` feature, `toml::Value` tables are sorted by key,
/// while the order of `SCOPES` is the order of the consent page.
pub(super) struct Ordered {
    pub(super) value: toml::Value,
    pub(super) keys: Vec<String>,
}

impl From<toml::Value> for Ordered {
    fn from(value: toml::Value) -> Self {
        Self {
            value,
            keys: Vec::new(),
        }
    }
}

impl Ordered {
    /// `raw` as one TOML value, if it is one.
    pub(super) fn parse(raw: &str) -> Option<Self> {
        toml::de::DeValue::parse(raw.trim())
            .ok()
            .and_then(|value| Self::from_de(value).ok())
    }

    pub(super) fn from_de(
        value: toml::Spanned<toml::de::DeValue<'_>>,
    ) -> Result<Self, toml::de::Error> {
        let keys = match value.get_ref().as_table() {
            Some(table) => {
                let mut keys: Vec<_> = table.keys().collect();
                keys.sort_by_key(|key| key.span().start);
                keys.into_iter()
                    .map(|key| key.get_ref().to_string())
                    .collect()
            }
            None => Vec::new(),
        };
        let value = toml::Value::deserialize(toml::de::ValueDeserializer::from(value))?;
        Ok(Self { value, keys })
    }
}

/// A quoted TOML string, else the raw text.
pub(super) fn text_from_env(raw: &str) -> toml::Value {
    match raw.trim().parse::<toml::Value>() {
        Ok(value @ toml::Value::String(_)) => value,
        _ => toml::Value::String(raw.to_owned()),
    }
}

pub(super) fn found(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("string {s:?}"),
        other => format!("{} {other}", other.type_str()),
    }
}

pub(super) fn expect_string(value: toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s),
        other => Err(format!("expected a string, found {}", found(&other))),
    }
}

pub(super) fn expect_strings(value: toml::Value) -> Result<Vec<String>, String> {
    match value {
        toml::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                toml::Value::String(s) => Ok(s),
                other => Err(format!(
                    "expected an array of strings, but item {} is {}",
                    i + 1,
                    found(&other)
                )),
            })
            .collect(),
        other => Err(format!(
            "expected an array of strings, found {}",
            found(&other)
        )),
    }
}

pub(super) fn strings_value<'a>(items: impl IntoIterator<Item = &'a str>) -> toml::Value {
    toml::Value::Array(
        items
            .into_iter()
            .map(|s| toml::Value::String(s.to_owned()))
            .collect(),
    )
}

pub(super) fn list_from_env(raw: &str) -> toml::Value {
    if let Ok(value @ toml::Value::Array(_)) = raw.trim().parse::<toml::Value>() {
        return value;
    }
    let items: Vec<&str> = if raw.contains(',') {
        raw.split(',').map(str::trim).collect()
    } else {
        raw.split_whitespace().collect()
    };
    strings_value(items.into_iter().filter(|s| !s.is_empty()))
}

pub(super) fn redact(secret: &Secret) -> toml::Value {
    toml::Value::String(if secret.is_empty() { "" } else { REDACTED }.to_owned())
}

/// Any serde type, via `toml::Value`'s deserializer.
pub(super) struct Plain<T>(PhantomData<T>);

impl<T: Serialize + DeserializeOwned> Codec for Plain<T> {
    type Value = T;

    fn parse(value: toml::Value) -> Result<T, String> {
        T::deserialize(value).map_err(|e| e.to_string().trim().to_owned())
    }

    fn emit(value: &T) -> Option<toml::Value> {
        toml::Value::try_from(value).ok()
    }
}

/// A boolean; the environment may also say `True`/`False`.
pub(super) struct Flag;

impl Codec for Flag {
    type Value = bool;

    fn parse(value: toml::Value) -> Result<bool, String> {
        match value {
            toml::Value::Boolean(b) => Ok(b),
            other => Err(format!(
                "expected a boolean (true or false), found {}",
                found(&other)
            )),
        }
    }

    fn emit(value: &bool) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*value))
    }

    fn from_env(raw: &str) -> Ordered {
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" => toml::Value::Boolean(true).into(),
            "false" => toml::Value::Boolean(false).into(),
            _ => toml::Value::String(raw.to_owned()).into(),
        }
    }
}

/// A string, taken literally from the environment.
pub(super) struct Text;

impl Codec for Text {
    type Value = String;

    fn parse(value: toml::Value) -> Result<String, String> {
        expect_string(value)
    }

    fn emit(value: &String) -> Option<toml::Value> {
        Some(toml::Value::String(value.clone()))
    }

    fn from_env(raw: &str) -> Ordered {
        text_from_env(raw).into()
    }
}

/// An optional string; `""` is `None`.
pub(super) struct OptText;

impl Codec for OptText {
    type Value = Option<String>;

    fn parse(value: toml::Value) -> Result<Option<String>, String> {
        expect_string(value).map(|s| Some(s).filter(|s| !s.is_empty()))
    }

    fn emit(value: &Option<String>) -> Option<toml::Value> {
        value.clone().map(toml::Value::String)
    }

    fn from_env(raw: &str) -> Ordered {
        text_from_env(raw).into()
    }
}

/// A list of strings.
pub(super) struct List;

impl Codec for List {
    type Value = Vec<String>;

    fn parse(value: toml::Value) -> Result<Vec<String>, String> {
        expect_strings(value)
    }

    fn emit(value: &Vec<String>) -> Option<toml::Value> {
        Some(strings_value(value.iter().map(String::as_str)))
    }

    fn from_env(raw: &str) -> Ordered {
        list_from_env(raw).into()
    }
}

/// An optional list of strings.
pub(super) struct OptList;

impl Codec for OptList {
    type Value = Option<Vec<String>>;

    fn parse(value: toml::Value) -> Result<Option<Vec<String>>, String> {
        expect_strings(value).map(Some)
    }

    fn emit(value: &Option<Vec<String>>) -> Option<toml::Value> {
        value.as_ref().and_then(List::emit)
    }

    fn from_env(raw: &str) -> Ordered {
        list_from_env(raw).into()
    }
}

/// Longest accepted duration: 100 years, far beyond any sensible lifetime and
/// far from the overflow of `SystemTime + Duration`.
pub(super) const MAX_SECONDS: u64 = 100 * 36525 * 864;

pub(super) fn at_most_100_years(duration: Duration) -> Result<Duration, String> {
    if duration > Duration::from_secs(MAX_SECONDS) {
        Err(format!(
            "{} seconds is more than 100 years ({MAX_SECONDS} seconds)",
            duration.as_secs()
        ))
    } else {
        Ok(duration)
    }
}

pub(super) fn whole_seconds(value: toml::Value) -> Result<Duration, String> {
    match value {
        toml::Value::Integer(n) => u64::try_from(n)
            .map_err(|_| format!("must not be negative, found {n}"))
            .map(Duration::from_secs)
            .and_then(at_most_100_years),
        other => Err(format!(
            "expected a whole number of seconds, found {}",
            found(&other)
        )),
    }
}

pub(super) fn seconds_value(value: &Duration) -> toml::Value {
    if value.subsec_nanos() == 0 {
        i64::try_from(value.as_secs())
            .map(toml::Value::Integer)
            .unwrap_or(toml::Value::Float(value.as_secs_f64()))
    } else {
        toml::Value::Float(value.as_secs_f64())
    }
}

/// A duration in whole seconds.
pub(super) struct Seconds;

impl Codec for Seconds {
    type Value = Duration;

    fn parse(value: toml::Value) -> Result<Duration, String> {
        whole_seconds(value)
    }

    fn emit(value: &Duration) -> Option<toml::Value> {
        Some(seconds_value(value))
    }
}

/// A duration in seconds, fractions allowed.
pub(super) struct FractionalSeconds;

impl Codec for FractionalSeconds {
    type Value = Duration;

    fn parse(value: toml::Value) -> Result<Duration, String> {
        match value {
            toml::Value::Float(f) => Duration::try_from_secs_f64(f)
                .map_err(|_| format!("must be a non-negative number of seconds, found {f}"))
                .and_then(at_most_100_years),
            other => whole_seconds(other).map_err(|e| e.replace("a whole number", "a number")),
        }
    }

    fn emit(value: &Duration) -> Option<toml::Value> {
        Some(seconds_value(value))
    }
}

/// An optional duration in whole seconds; `0` is `None` ("never").
pub(super) struct OptSeconds;

impl Codec for OptSeconds {
    type Value = Option<Duration>;

    fn parse(value: toml::Value) -> Result<Option<Duration>, String> {
        whole_seconds(value).map(|d| Some(d).filter(|d| !d.is_zero()))
    }

    fn emit(value: &Option<Duration>) -> Option<toml::Value> {
        value.as_ref().map(seconds_value)
    }
}

/// `SCOPES`: a table of name = description, kept in document order.
pub(super) struct ScopeMap;

impl Codec for ScopeMap {
    type Value = IndexMap<String, String>;

    fn parse(value: toml::Value) -> Result<IndexMap<String, String>, String> {
        Self::parse_ordered(value.into())
    }

    fn parse_ordered(value: Ordered) -> Result<IndexMap<String, String>, String> {
        let toml::Value::Table(mut table) = value.value else {
            return Err(format!(
                "expected a table of scope = \"description\", found {}",
                found(&value.value)
            ));
        };
        let mut entries: Vec<(String, toml::Value)> = value
            .keys
            .iter()
            .filter_map(|key| table.remove_entry(key))
            .collect();
        entries.extend(table);
        entries
            .into_iter()
            .map(|(name, description)| match description {
                toml::Value::String(description) => Ok((name, description)),
                other => Err(format!(
                    "expected a table of scope = \"description\", but {name:?} is {}",
                    found(&other)
                )),
            })
            .collect()
    }

    fn emit(value: &IndexMap<String, String>) -> Option<toml::Value> {
        toml::Value::try_from(value).ok()
    }
}

/// A secret string; `get` shows it redacted.
pub(super) struct SecretText;

impl Codec for SecretText {
    type Value = Secret;

    fn parse(value: toml::Value) -> Result<Secret, String> {
        expect_string(value).map(Secret)
    }

    fn emit(value: &Secret) -> Option<toml::Value> {
        Some(redact(value))
    }

    fn from_env(raw: &str) -> Ordered {
        text_from_env(raw).into()
    }
}

/// An optional secret string; `""` is `None`.
pub(super) struct OptSecret;

impl Codec for OptSecret {
    type Value = Option<Secret>;

    fn parse(value: toml::Value) -> Result<Option<Secret>, String> {
        expect_string(value).map(|s| Some(Secret(s)).filter(|s| !s.is_empty()))
    }

    fn emit(value: &Option<Secret>) -> Option<toml::Value> {
        value.as_ref().map(redact)
    }

    fn from_env(raw: &str) -> Ordered {
        text_from_env(raw).into()
    }
}

/// A list of secrets (PEM keys): a TOML array, or one key as plain text from the
/// environment (PEM text has spaces, so it is never split).
pub(super) struct SecretList;

impl Codec for SecretList {
    type Value = Vec<Secret>;

    fn parse(value: toml::Value) -> Result<Vec<Secret>, String> {
        expect_strings(value).map(|keys| keys.into_iter().map(Secret).collect())
    }

    fn emit(value: &Vec<Secret>) -> Option<toml::Value> {
        Some(toml::Value::Array(value.iter().map(redact).collect()))
    }

    fn from_env(raw: &str) -> Ordered {
        match raw.trim().parse::<toml::Value>() {
            Ok(value @ toml::Value::Array(_)) => value,
            _ if raw.trim().is_empty() => toml::Value::Array(Vec::new()),
            _ => strings_value([raw]),
        }
        .into()
    }
}

/// `(client_id, secret)`: `["id", "secret"]` or `"id:secret"`.
pub(super) struct Credentials;

impl Codec for Credentials {
    type Value = Option<(String, Secret)>;

    fn parse(value: toml::Value) -> Result<Option<(String, Secret)>, String> {
        const EXPECTED: &str = "expected [\"client_id\", \"secret\"] or \"client_id:secret\"";
        let (id, secret) = match value {
            toml::Value::String(s) => match s.split_once(':') {
                Some((id, secret)) => (id.to_owned(), secret.to_owned()),
                None => return Err(format!("{EXPECTED}, found a string without ':'")),
            },
            array @ toml::Value::Array(_) => match <[String; 2]>::try_from(
                expect_strings(array).map_err(|_| format!("{EXPECTED}, found another array"))?,
            ) {
                Ok([id, secret]) => (id, secret),
                Err(items) => {
                    return Err(format!(
                        "{EXPECTED}, found an array of {} items",
                        items.len()
                    ))
                }
            },
            other => return Err(format!("{EXPECTED}, found {}", other.type_str())),
        };
        if id.is_empty() {
            return Err("the client_id is empty".to_owned());
        }
        Ok(Some((id, Secret(secret))))
    }

    fn emit(value: &Option<(String, Secret)>) -> Option<toml::Value> {
        value.as_ref().map(|(id, secret)| {
            toml::Value::Array(vec![toml::Value::String(id.clone()), redact(secret)])
        })
    }

    fn from_env(raw: &str) -> Ordered {
        match raw.trim().parse::<toml::Value>() {
            Ok(value @ toml::Value::Array(_)) => value,
            _ => toml::Value::String(raw.to_owned()),
        }
        .into()
    }
}
