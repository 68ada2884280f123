//! RFC 8707 resource indicators: which protected resources (APIs) a token is for.
//!
//! A client names them with `resource` (repeatable) at the authorization endpoint and at
//! the token endpoint. Each value must be an absolute URI without a fragment (§2), and one
//! that the [`ResourcePolicy`] lets this client ask for ([`DefaultResourcePolicy`]: any
//! `https` URI, and `http` on a loopback host for development); anything else is
//! `invalid_target`.
//!
//! What is granted is stored with the authorization code and the refresh token (the whole
//! set) and with each access token (its audience, RFC 7662 / RFC 9068 `aud`). A token
//! request may narrow the set of the code or refresh token it redeems — one access token
//! per API from one refresh token — and never widen it. A grant with no resources is not
//! restricted to any: a request may then name any the policy allows. ID tokens are not
//! affected (their audience is the client).

use std::fmt;

use super::error::OAuthError;
use super::params::Params;
use crate::model::Application;

/// Decides which resources a client may ask for (the settings hook of RFC 8707; set with
/// [`ProviderBuilder::resource_policy`](super::ProviderBuilder::resource_policy)). A
/// closure `Fn(&Application, &url::Url) -> bool` is one.
pub trait ResourcePolicy: Send + Sync {
    /// Whether `client` may get tokens for `resource` (already checked to be an absolute
    /// URI without a fragment).
    fn allows(&self, client: &Application, resource: &url::Url) -> bool;
}

impl<F> ResourcePolicy for F
where
    F: Fn(&Application, &url::Url) -> bool + Send + Sync,
{
    fn allows(&self, client: &Application, resource: &url::Url) -> bool {
        self(client, resource)
    }
}

/// The default [`ResourcePolicy`]: any `https` URI with a host, and `http` on a loopback
/// host (`localhost`, `127.0.0.0/8`, `::1`) for development.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultResourcePolicy;

impl ResourcePolicy for DefaultResourcePolicy {
    fn allows(&self, _client: &Application, resource: &url::Url) -> bool {
        match resource.scheme() {
            "https" => resource.host().is_some(),
            "http" => match resource.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            },
            _ => false,
        }
    }
}

/// A set of resource indicators, in the order first named, without repeats. Stored
/// space-separated (a URI has no spaces); empty means "not restricted".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources(Vec<String>);

/// The most `resource` values one request may name.
const MAX_RESOURCES: usize = 20;

impl Resources {
    /// From the stored column.
    pub fn from_stored(column: &str) -> Resources {
        let mut r = Resources::default();
        for v in column.split_ascii_whitespace() {
            r.push(v);
        }
        r
    }

    fn push(&mut self, v: &str) {
        if !self.0.iter().any(|x| x == v) {
            self.0.push(v.to_owned());
        }
    }

    /// Whether none is named.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The resources, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether a request for `self` stays within `granted` (anything does within an
    /// unrestricted grant).
    pub fn within(&self, granted: &Resources) -> bool {
        granted.is_empty() || self.0.iter().all(|r| granted.0.contains(r))
    }

    /// The request's `resource` values, each checked (§2) and allowed for `client` by
    /// `policy`; `invalid_target` otherwise.
    pub(crate) fn requested(
        params: &Params,
        client: &Application,
        policy: &dyn ResourcePolicy,
    ) -> Result<Resources, OAuthError> {
        let values = params.get_all("resource")?;
        if values.len() > MAX_RESOURCES {
            return Err(OAuthError::invalid_target(format!(
                "At most {MAX_RESOURCES} resource parameters."
            )));
        }
        let mut r = Resources::default();
        for v in values {
            let url = check(v)?;
            if !policy.allows(client, &url) {
                return Err(OAuthError::invalid_target(format!(
                    "The resource {v:?} is not one this client may ask for."
                )));
            }
            r.push(v);
        }
        Ok(r)
    }

    /// What a token request gets from a grant of `granted`: the requested set when it
    /// names one (it must stay within), else all that was granted.
    pub(crate) fn narrow(self, granted: &Resources) -> Result<Resources, OAuthError> {
        if self.is_empty() {
            return Ok(granted.clone());
        }
        if !self.within(granted) {
            return Err(OAuthError::invalid_target(
                "The requested resource was not granted: a token request may narrow the resources of the grant, not widen them.",
            ));
        }
        Ok(self)
    }
}

impl fmt::Display for Resources {
    /// Space-separated, as stored.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(r)?;
        }
        Ok(())
    }
}

/// RFC 8707 §2: an absolute URI, without a fragment (and, as a URI, without spaces).
fn check(v: &str) -> Result<url::Url, OAuthError> {
    let bad = |why: &str| OAuthError::invalid_target(format!("The resource {v:?} {why}."));
    if v.contains('#') {
        return Err(bad("has a fragment"));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("is not a URI"));
    }
    let url = url::Url::parse(v).map_err(|_| bad("is not an absolute URI"))?;
    if url.cannot_be_a_base() && url.scheme() != "urn" {
        return Err(bad("is not an absolute URI"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientType, GrantType, NewApplication};

    fn app() -> Application {
        NewApplication::new("c", ClientType::Confidential, GrantType::ClientCredentials).into_row(1)
    }

    fn params(q: &str) -> Params {
        Params::parse(q.as_bytes())
    }

    #[test]
    fn values_are_checked() {
        let ok = Resources::requested(
            &params("resource=https%3A%2F%2Fa.example%2Fv1&resource=http%3A%2F%2F127.0.0.1%3A8000%2Fapi&resource=https%3A%2F%2Fa.example%2Fv1"),
            &app(),
            &DefaultResourcePolicy,
        )
        .unwrap();
        assert_eq!(
            ok.to_string(),
            "https://a.example/v1 http://127.0.0.1:8000/api"
        );
        assert_eq!(Resources::from_stored(&ok.to_string()), ok);
        for bad in [
            "resource=relative%2Fpath",
            "resource=https%3A%2F%2Fa.example%2F%23frag",
            "resource=http%3A%2F%2Fapi.example%2F",
            "resource=ftp%3A%2F%2Fa.example%2F",
            "resource=mailto%3Ax%40y",
        ] {
            let e = Resources::requested(&params(bad), &app(), &DefaultResourcePolicy).unwrap_err();
            assert_eq!(e.code.as_str(), "invalid_target", "{bad}");
        }
        // A policy of the host's own.
        let only_a = |_: &Application, u: &url::Url| u.host_str() == Some("a.example");
        assert!(Resources::requested(
            &params("resource=https%3A%2F%2Fb.example%2F"),
            &app(),
            &only_a
        )
        .is_err());
        assert!(Resources::requested(
            &params("resource=https%3A%2F%2Fa.example%2F"),
            &app(),
            &only_a
        )
        .is_ok());
        let many: String = (0..=MAX_RESOURCES)
            .map(|i| format!("resource=https%3A%2F%2Fa.example%2F{i}&"))
            .collect();
        assert!(Resources::requested(&params(&many), &app(), &DefaultResourcePolicy).is_err());
    }

    #[test]
    fn narrowing() {
        let ab = Resources::from_stored("https://a.example https://b.example");
        let a = Resources::from_stored("https://a.example");
        let c = Resources::from_stored("https://c.example");
        let none = Resources::default();
        assert_eq!(
            none.clone().narrow(&ab).unwrap(),
            ab,
            "nothing asked: all granted"
        );
        assert_eq!(a.clone().narrow(&ab).unwrap(), a);
        assert_eq!(
            c.clone().narrow(&ab).unwrap_err().code.as_str(),
            "invalid_target"
        );
        assert_eq!(c.clone().narrow(&none).unwrap(), c, "an unrestricted grant");
        assert!(ab.clone().narrow(&a).is_err(), "never wider");
    }
}
