//! Form-encoded request parameters (RFC 6749 §3.1, §3.2): a parameter sent twice is an
//! error, one sent without a value counts as absent.

use super::error::OAuthError;

/// The parameters of one request (query or form body).
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub(crate) fn parse(input: &[u8]) -> Params {
        Params {
            pairs: url::form_urlencoded::parse(input)
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The value of `name`; `invalid_request` if it was sent more than once.
    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
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
    }
}
