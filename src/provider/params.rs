//! Form-encoded request parameters (RFC 6749 §3.1, §3.2): a parameter sent twice is an
//! error, one sent without a value counts as absent.

use super::error::OAuthError;

/// More parameters than any OAuth request has: such a request is refused.
pub(crate) const MAX_PARAMS: usize = 100;

/// The parameters of one request (query or form body). `Debug` shows names only (values
/// include passwords, secrets and codes).
#[derive(Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
    too_many: bool,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Params {
    pub(crate) fn parse(input: &[u8]) -> Params {
        let mut pairs = Vec::new();
        let mut too_many = false;
        for (k, v) in url::form_urlencoded::parse(input) {
            if v.is_empty() {
                continue;
            }
            if pairs.len() == MAX_PARAMS {
                too_many = true;
                break;
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Params { pairs, too_many }
    }

    /// The value of `name`; `invalid_request` if it was sent more than once (or the
    /// request has more than [`MAX_PARAMS`] parameters).
    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        if self.too_many {
            return Err(OAuthError::invalid_request(format!(
                "More than {MAX_PARAMS} parameters."
            )));
        }
        let mut found = None;
        for (k, v) in &self.pairs {
            if k == name {
                if found.is_some() {
                    return Err(OAuthError::invalid_request(format!(
                        "The {name} parameter was sent more than once."
                    )));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// Every value of a parameter that may be repeated (RFC 8707 `resource`), in order;
    /// `invalid_request` if the request has more than [`MAX_PARAMS`] parameters.
    pub(crate) fn get_all(&self, name: &str) -> Result<Vec<&str>, OAuthError> {
        if self.too_many {
            return Err(OAuthError::invalid_request(format!(
                "More than {MAX_PARAMS} parameters."
            )));
        }
        Ok(self
            .pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect())
    }

    /// The value of a required parameter.
    pub(crate) fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?
            .ok_or_else(|| OAuthError::invalid_request(format!("The {name} parameter is missing.")))
    }

    /// Every parameter, for templates that carry them over (hidden form fields).
    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_empty() {
        let p = Params::parse(b"a=1&b=&c=x%20y&a=2");
        assert!(p.get("a").is_err());
        assert_eq!(p.get("b").unwrap(), None, "empty counts as absent");
        assert_eq!(p.get("c").unwrap(), Some("x y"));
        assert!(p.require("d").is_err());
        assert_eq!(p.get_all("a").unwrap(), ["1", "2"]);
        assert!(p.get_all("d").unwrap().is_empty());
        let many: String = (0..=MAX_PARAMS).map(|i| format!("k{i}=v&")).collect();
        assert!(Params::parse(many.as_bytes()).get("k0").is_err());
        assert!(!format!("{:?}", Params::parse(b"password=hunter2")).contains("hunter2"));
    }
}
