//! Reading the provider's HTML forms in tests: `<input>` attributes, hidden fields.

pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// The attributes of every `<input>` of a page.
pub fn inputs(html: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<input") {
        rest = &rest[i + "<input".len()..];
        let end = rest.find('>').unwrap();
        let mut tag = &rest[..end];
        let mut attrs = Vec::new();
        loop {
            tag = tag.trim_start();
            if tag.is_empty() {
                break;
            }
            let name_end = tag
                .find(|c: char| c == '=' || c.is_whitespace())
                .unwrap_or(tag.len());
            let name = tag[..name_end].to_string();
            tag = &tag[name_end..];
            if let Some(after) = tag.strip_prefix("=\"") {
                let close = after.find('"').unwrap();
                attrs.push((name, unescape(&after[..close])));
                tag = &after[close + 1..];
            } else {
                attrs.push((name, String::new()));
            }
        }
        out.push(attrs);
        rest = &rest[end..];
    }
    out
}

pub fn attr<'a>(input: &'a [(String, String)], name: &str) -> Option<&'a str> {
    input
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    inputs(html)
        .iter()
        .filter(|i| attr(i, "type") == Some("hidden"))
        .map(|i| {
            (
                attr(i, "name").unwrap().to_string(),
                attr(i, "value").unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn hidden(html: &str, name: &str) -> Option<String> {
    hidden_fields(html)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}
