//! Loading: TOML files and strings, `OAUTH2_PROVIDER_*` environment variables, one
//! setting at a time by name.

use std::collections::HashSet;
use std::path::Path;

use super::{SettingIssue, SettingsError, ENV_PREFIX};

use super::codecs::*;
use super::schema::*;
use super::validate::into_result;

/// The setting called `name` (snake_case or UPPER-CASE).
pub(super) fn find_def(name: &str) -> Option<&'static SettingDef> {
    SETTING_DEFS
        .iter()
        .find(|def| def.snake == name || def.upper == name)
}

/// Levenshtein distance, for "did you mean" hints.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The issue for an unknown key `shown` (as the user wrote it) whose bare name
/// is `name`. `as_env` formats the suggestion as an environment variable.
pub(super) fn unknown_setting(shown: &str, name: &str, as_env: bool) -> SettingIssue {
    let upper = name.to_ascii_uppercase();
    if let Some((_, instead)) = CLASS_PATH_SETTINGS.iter().find(|(n, _)| *n == upper) {
        return SettingIssue::new(
            shown,
            format!(
                "names a Python class or callable in Django OAuth Toolkit and is not a \
                 tower-oauth-toolkit setting ({instead}; see the settings module docs)"
            ),
        );
    }
    let limit = 3.max(upper.len() / 5);
    let length = upper.chars().count();
    let closest = SETTING_DEFS
        .iter()
        // The distance is at least the difference in length: a name too long or too
        // short to be within the limit is not compared (a long key cost ~70 full
        // comparisons).
        .filter(|def| length.abs_diff(def.upper.len()) <= limit)
        .map(|def| (edit_distance(&upper, def.upper), def))
        .min_by_key(|(distance, _)| *distance)
        .filter(|(distance, _)| *distance <= limit);
    let hint = match closest {
        Some((_, def)) if as_env => format!("; did you mean {ENV_PREFIX}{}?", def.upper),
        Some((_, def)) if name.bytes().any(|b| b.is_ascii_lowercase()) => {
            format!("; did you mean {}?", def.snake)
        }
        Some((_, def)) => format!("; did you mean {}?", def.upper),
        None => String::new(),
    };
    SettingIssue::new(shown, format!("is not a known setting{hint}"))
}

fn read_toml(path: &Path) -> Result<String, SettingsError> {
    std::fs::read_to_string(path).map_err(|error| SettingsError::Io {
        path: path.to_owned(),
        error,
    })
}

pub(super) fn line_of(input: &str, offset: usize) -> usize {
    input[..offset.min(input.len())].matches('\n').count() + 1
}

impl Settings {
    /// Sets one setting from a TOML value. `key` is the snake_case or UPPER-CASE
    /// DOT name.
    ///
    /// ```
    /// use tower_oauth_toolkit::settings::Settings;
    ///
    /// let mut settings = Settings::default();
    /// settings.set("rotate_refresh_token", toml::Value::Boolean(false)).unwrap();
    /// assert!(!settings.rotate_refresh_token);
    /// let err = settings.set("ROTATE_REFRESH_TOKEN", "no".into()).unwrap_err();
    /// assert!(err.to_string().starts_with("ROTATE_REFRESH_TOKEN "));
    /// ```
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] naming the setting if `key` is unknown or the
    /// value does not fit; the setting is then unchanged.
    pub fn set(&mut self, key: &str, value: toml::Value) -> Result<(), SettingsError> {
        self.set_one(key, value.into(), "")
            .map_err(|issue| SettingsError::Invalid(vec![issue]))
    }

    fn set_one(&mut self, key: &str, value: Ordered, origin: &str) -> Result<(), SettingIssue> {
        let def = find_def(key).ok_or_else(|| unknown_setting(key, key, false))?;
        (def.set)(self, value).map_err(|message| {
            SettingIssue::new(
                def.upper,
                format!("{origin}has an invalid value: {message}"),
            )
        })
    }

    /// The current value of a setting as TOML (for diagnostics and tests).
    /// `name` is the UPPER-CASE or snake_case DOT name.
    ///
    /// Returns `None` if the name is unknown or the setting's value is `None`
    /// (check [`SETTING_NAMES`] to tell them apart). Secrets are shown as
    /// `"[redacted]"` (an empty one as `""`); durations as whole seconds.
    ///
    /// ```
    /// use tower_oauth_toolkit::settings::Settings;
    ///
    /// let settings = Settings::default();
    /// assert_eq!(settings.get("ACCESS_TOKEN_EXPIRE_SECONDS"), Some(toml::Value::Integer(36000)));
    /// assert_eq!(settings.get("REFRESH_TOKEN_EXPIRE_SECONDS"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<toml::Value> {
        find_def(name).and_then(|def| (def.get)(self))
    }

    /// Settings from a TOML document: DOT defaults, overridden by its keys. Does
    /// not read the environment or [`validate`](Settings::validate).
    ///
    /// # Errors
    ///
    /// [`SettingsError::Syntax`] for malformed TOML; [`SettingsError::Invalid`]
    /// listing every unknown key and bad value.
    pub fn from_toml_str(input: &str) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        let issues = settings.apply_toml(input, None)?;
        into_result(issues)?;
        Ok(settings)
    }

    /// [`from_toml_str`](Settings::from_toml_str) on the contents of `path`.
    ///
    /// # Errors
    ///
    /// As `from_toml_str`, plus [`SettingsError::Io`] if the file cannot be read.
    pub fn from_toml_file(path: &Path) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        let issues = settings.apply_toml_file(path)?;
        into_result(issues)?;
        Ok(settings)
    }

    fn apply_toml_file(&mut self, path: &Path) -> Result<Vec<SettingIssue>, SettingsError> {
        let input = read_toml(path)?;
        self.apply_toml(&input, Some(path))
    }

    /// Applies every key of a TOML document; returns the per-key issues.
    fn apply_toml(
        &mut self,
        input: &str,
        path: Option<&Path>,
    ) -> Result<Vec<SettingIssue>, SettingsError> {
        let document = toml::de::DeTable::parse(input).map_err(|e| SettingsError::Syntax {
            path: path.map(Path::to_owned),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let mut entries: Vec<_> = document.into_inner().into_iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut issues = Vec::new();
        let mut seen = HashSet::new();
        for (key, value) in entries {
            let line = line_of(input, key.span().start);
            let origin = match path {
                Some(path) => format!("(line {line} of {}) ", path.display()),
                None => format!("(line {line}) "),
            };
            let key = key.into_inner();
            let value = match Ordered::from_de(value) {
                Ok(value) => value,
                Err(e) => {
                    issues.push(SettingIssue::new(
                        key.as_ref(),
                        format!("{origin}has an invalid value: {}", e.message()),
                    ));
                    continue;
                }
            };
            let Some(def) = find_def(&key) else {
                let mut issue = unknown_setting(&key, &key, false);
                issue.message = format!("{origin}{}", issue.message);
                issues.push(issue);
                continue;
            };
            if !seen.insert(def.upper) {
                issues.push(SettingIssue::new(
                    def.upper,
                    format!(
                        "{origin}is given twice (as {} and {})",
                        def.snake, def.upper
                    ),
                ));
                continue;
            }
            if let Err(issue) = self.set_one(&key, value, &origin) {
                issues.push(issue);
            }
        }
        Ok(issues)
    }

    /// Applies `OAUTH2_PROVIDER_<NAME>` overrides from `vars` (other variables
    /// are ignored), e.g. `std::env::vars()`.
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] listing every unknown `OAUTH2_PROVIDER_*` name
    /// and bad value; the valid ones are applied regardless.
    pub fn apply_env<I, K, V>(&mut self, vars: I) -> Result<(), SettingsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        into_result(self.apply_env_vars(vars))
    }

    fn apply_env_vars<I, K, V>(&mut self, vars: I) -> Vec<SettingIssue>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| k.as_ref().starts_with(ENV_PREFIX))
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        vars.sort();
        let mut issues = Vec::new();
        let mut seen = HashSet::new();
        for (var, raw) in vars {
            let name = &var[ENV_PREFIX.len()..];
            let Some(def) = find_def(name) else {
                issues.push(unknown_setting(&var, name, true));
                continue;
            };
            let origin = format!("(from {var}) ");
            if !seen.insert(def.upper) {
                issues.push(SettingIssue::new(
                    def.upper,
                    format!("{origin}is given twice"),
                ));
                continue;
            }
            if let Err(issue) = self.set_one(def.upper, (def.from_env)(&raw), &origin) {
                issues.push(issue);
            }
        }
        issues
    }

    /// Loads the settings a server starts with: DOT defaults, then the TOML file
    /// at `path` (if any), then `OAUTH2_PROVIDER_*` variables from the process
    /// environment, then [`validate`](Settings::validate).
    ///
    /// # Errors
    ///
    /// I/O and syntax errors as they happen; otherwise one
    /// [`SettingsError::Invalid`] listing every problem in the file and the
    /// environment, or, if there are none, every validation problem.
    pub fn load(path: Option<&Path>) -> Result<Self, SettingsError> {
        let input = path.map(read_toml).transpose()?;
        let mut vars = Vec::new();
        let mut env_issues = Vec::new();
        for (key, value) in std::env::vars_os() {
            let Some(key) = key.to_str().filter(|k| k.starts_with(ENV_PREFIX)) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => vars.push((key.to_owned(), value)),
                Err(_) => env_issues.push(SettingIssue::new(key, "is not valid UTF-8")),
            }
        }
        let toml = input.as_deref().map(|input| (input, path));
        Self::load_from(toml, env_issues, vars)
    }

    /// [`load`](Settings::load) once the file is read and the environment listed: the
    /// TOML text (and the path it came from, for messages), the issues already found in
    /// the environment, and its `OAUTH2_PROVIDER_*` variables. Touches neither the file
    /// system nor the process environment, so the fuzz target runs the same code.
    pub(crate) fn load_from(
        toml: Option<(&str, Option<&Path>)>,
        env_issues: Vec<SettingIssue>,
        vars: Vec<(String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        let mut issues = match toml {
            Some((input, path)) => settings.apply_toml(input, path)?,
            None => Vec::new(),
        };
        issues.extend(env_issues);
        issues.extend(settings.apply_env_vars(vars));
        into_result(issues)?;
        settings.validate()?;
        Ok(settings)
    }
}
