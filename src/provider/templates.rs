//! The HTML pages of the provider: `login.html`, `authorize.html` (the consent page),
//! `logout.html` (OIDC RP-initiated logout), `error.html`, and the device pages
//! `device.html`, `device_confirm.html`, `device_done.html`, all extending `base.html`.
//!
//! The built-in templates are compiled into the crate. A directory given to
//! [`ProviderBuilder::template_dir`](super::ProviderBuilder::template_dir) is read once,
//! when the provider is built: every `*.html` file in it replaces the built-in template of
//! the same name (or adds a new one that the others may `{% include %}` or
//! `{% extends %}`). A template that does not parse, or that fails to render with sample
//! data, makes `build()` fail with the file name and the reason, so a broken override is
//! found at start-up rather than by the first user.
//!
//! Templates are [minijinja](https://docs.rs/minijinja) (Jinja2 syntax, close to Django's
//! template language) with HTML auto-escaping on for `.html` names.
//!
//! # Variables
//!
//! | template | variables |
//! |---|---|
//! | `login.html` | `action` (form target), `csrf_token`, `next`, `username` (to prefill), `error` (a message or none), `logged_in_as` (set after a login with nowhere to return to) |
//! | `authorize.html` | `action`, `csrf_token`, `application` (`name`, `client_id`), `user` (`username`), `scopes` (list of `name`, `description`), `fields` (list of `name`, `value`: the authorization request, to post back as hidden inputs) |
//! | `logout.html` | `signed_out` (false: the confirmation form; true: the "you are signed out" page), `action`, `csrf_token`, `application` (`name`, `client_id`; or none), `user` (`username`; or none), `fields` (list of `name`, `value`: the logout request, to post back as hidden inputs) |
//! | `error.html` | `status` (HTTP status code), `title`, `description`, `error` (an OAuth error code or none) |
//! | `device.html` | `action`, `csrf_token`, `user` (`username`), `user_code` (to prefill), `error` (a message or none) |
//! | `device_confirm.html` | `action`, `csrf_token`, `user` (`username`), `application` (`name`, `client_id`), `scopes` (list of `name`, `description`), `user_code` |
//! | `scope_list.html` | `scopes` (list of `name`, `description`): included by `authorize.html` and `device_confirm.html` |
//! | `device_done.html` | `approved` (true or false), `application` (`name`, `client_id`), `user` (`username`) |
//!
//! A login form must post `username`, `password`, `csrfmiddlewaretoken` and `next`; a
//! consent form must post every entry of `fields`, `csrfmiddlewaretoken`, and a button
//! named `allow` to approve (anything else denies). A logout confirmation form likewise
//! posts `fields`, `csrfmiddlewaretoken` and `allow` to sign out (`deny` stays signed in).
//! The device form posts `user_code` and `csrfmiddlewaretoken`; the device confirmation
//! posts them again with `action` = `accept` or `deny`.

use std::fmt;
use std::path::Path;

use minijinja::Environment;
use serde::Serialize;
use serde_json::json;

/// The built-in templates, by name.
const BUILT_IN: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("scope_list.html", include_str!("templates/scope_list.html")),
    ("login.html", include_str!("templates/login.html")),
    ("authorize.html", include_str!("templates/authorize.html")),
    ("error.html", include_str!("templates/error.html")),
    ("logout.html", include_str!("templates/logout.html")),
    ("device.html", include_str!("templates/device.html")),
    (
        "device_confirm.html",
        include_str!("templates/device_confirm.html"),
    ),
    (
        "device_done.html",
        include_str!("templates/device_done.html"),
    ),
];

/// The provider's compiled templates. Built once, when the provider is built.
pub(crate) struct Templates {
    env: Environment<'static>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.env.templates().map(|(name, _)| name).collect();
        names.sort_unstable();
        f.debug_struct("Templates").field("names", &names).finish()
    }
}

impl Templates {
    /// The built-in templates, each replaced by a file of the same name in `dir`.
    pub(crate) fn load(dir: Option<&Path>) -> Result<Templates, String> {
        let mut sources: Vec<(String, String)> = BUILT_IN
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect();
        if let Some(dir) = dir {
            for (name, source) in read_dir(dir)? {
                match sources.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = source,
                    None => sources.push((name, source)),
                }
            }
        }
        let mut env = Environment::new();
        for (name, source) in sources {
            env.add_template_owned(name.clone(), source)
                .map_err(|e| format!("template {name}: {e}"))?;
        }
        let templates = Templates { env };
        templates.smoke_test()?;
        Ok(templates)
    }

    /// Renders the template `name` with `ctx`.
    pub(crate) fn render<C: Serialize>(
        &self,
        name: &str,
        ctx: C,
    ) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }

    /// Renders each page with sample data, so a broken override fails at start-up.
    fn smoke_test(&self) -> Result<(), String> {
        let samples = [
            (
                "login.html",
                json!({"action": "./", "csrf_token": "t", "next": "../authorize/?client_id=x",
                       "username": "u", "error": "e", "logged_in_as": null}),
            ),
            (
                "authorize.html",
                json!({"action": "./", "csrf_token": "t",
                       "application": {"name": "App", "client_id": "x"},
                       "user": {"username": "u"},
                       "scopes": [{"name": "read", "description": "Reading scope"}],
                       "fields": [{"name": "client_id", "value": "x"}]}),
            ),
            (
                "error.html",
                json!({"status": 400, "title": "Error", "description": "d", "error": "invalid_request"}),
            ),
            (
                "logout.html",
                json!({"signed_out": false, "action": "./", "csrf_token": "t",
                       "application": {"name": "App", "client_id": "x"},
                       "user": {"username": "u"},
                       "fields": [{"name": "client_id", "value": "x"}]}),
            ),
            (
                "logout.html",
                json!({"signed_out": true, "action": "./", "csrf_token": "",
                       "application": null, "user": null, "fields": []}),
            ),
            (
                "device.html",
                json!({"action": "./", "csrf_token": "t", "user": {"username": "u"},
                       "user_code": "WDJB-MJHT", "error": "e"}),
            ),
            (
                "device_confirm.html",
                json!({"action": "./", "csrf_token": "t", "user": {"username": "u"},
                       "application": {"name": "App", "client_id": "x"},
                       "scopes": [{"name": "read", "description": "Reading scope"}],
                       "user_code": "WDJB-MJHT"}),
            ),
            (
                "device_done.html",
                json!({"approved": true, "application": {"name": "App", "client_id": "x"},
                       "user": {"username": "u"}}),
            ),
        ];
        for (name, ctx) in samples {
            self.render(name, ctx)
                .map_err(|e| format!("template {name} cannot be rendered: {e}"))?;
        }
        Ok(())
    }
}

/// The `*.html` files of `dir` (not recursive), as (file name, contents).
fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let shown = dir.display();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("template directory {shown}: {e}"))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("template directory {shown}: {e}"))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".html") || !path.is_file() {
            continue;
        }
        let source = std::fs::read_to_string(&path)
            .map_err(|e| format!("template {}: {e}", path.display()))?;
        out.push((name.to_owned(), source));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_render_and_escape() {
        let t = Templates::load(None).unwrap();
        let html = t
            .render(
                "error.html",
                json!({"status": 400, "title": "Bad", "description": "<script>x</script>", "error": null}),
            )
            .unwrap();
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn directory_overrides_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("error.html"),
            "{% extends \"base.html\" %}{% block content %}CUSTOM {{ title }}{% endblock %}",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let html = t
            .render(
                "error.html",
                json!({"title": "X", "description": "", "status": 400}),
            )
            .unwrap();
        assert!(html.contains("CUSTOM X"));

        std::fs::write(dir.path().join("login.html"), "{% if %}").unwrap();
        let err = Templates::load(Some(dir.path())).unwrap_err();
        assert!(err.contains("login.html"), "{err}");

        std::fs::write(
            dir.path().join("login.html"),
            "{% include \"missing.html\" %}",
        )
        .unwrap();
        let err = Templates::load(Some(dir.path())).unwrap_err();
        assert!(err.contains("login.html"), "{err}");

        let err = Templates::load(Some(&dir.path().join("nope"))).unwrap_err();
        assert!(err.contains("template directory"), "{err}");
    }
}
