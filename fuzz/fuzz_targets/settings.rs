//! The settings loader (`Settings::load` without the file system or the process
//! environment: a TOML document plus `OAUTH2_PROVIDER_*` variables, then validation).
//!
//! Input: the TOML document, then optionally a NUL byte and environment lines
//! `NAME=value`, each `NAME` given the `OAUTH2_PROVIDER_` prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_oauth_toolkit::fuzzing;
use tower_oauth_toolkit::settings::{Settings, ENV_PREFIX, SETTING_NAMES};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (toml, env) = match text.split_once('\0') {
        Some((toml, env)) => (toml, Some(env)),
        None => (&*text, None),
    };
    let vars: Vec<(String, String)> = env
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (format!("{ENV_PREFIX}{k}"), v.to_owned()))
        .collect();

    let loaded = fuzzing::load_settings(Some(toml), &vars);
    // Deterministic.
    let again = fuzzing::load_settings(Some(toml), &vars);
    assert_eq!(loaded.is_ok(), again.is_ok());
    if let (Ok(a), Ok(b)) = (&loaded, &again) {
        assert_eq!(a, b);
    }
    if vars.is_empty() {
        // The same as the public TOML path plus validation.
        let public = Settings::from_toml_str(toml).and_then(|s| s.validate().map(|()| s));
        assert_eq!(loaded.as_ref().ok(), public.as_ref().ok());
    }
    match loaded {
        Ok(settings) => {
            assert!(
                settings.validate().is_ok(),
                "loaded settings that do not validate"
            );
            // What `get` shows, `set` takes back, and nothing changes.
            for name in SETTING_NAMES {
                let Some(value) = settings.get(name) else {
                    continue;
                };
                if value.as_str() == Some("[redacted]") {
                    continue;
                }
                let mut copy = settings.clone();
                if let Err(e) = copy.set(name, value.clone()) {
                    panic!("{name} = {value:?} from get is refused by set: {e}");
                }
                assert!(copy == settings, "{name}: set(get()) changed the settings");
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
