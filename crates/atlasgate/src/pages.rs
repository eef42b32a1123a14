//! The HTML pages a person sees during connect: errors, the site picker and
//! the finish page. Server-rendered, no script, no CDN.

use crate::atlassian::AccessibleSite;

/// Escape text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#172b4d;margin:0}\
main{max-width:560px;margin:64px auto;background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(9,30,66,.25);padding:32px}\
h1{font-size:22px;margin:0 0 12px}p{line-height:1.5}.muted{color:#5e6c84;font-size:14px}\
ul.sites{list-style:none;padding:0;margin:16px 0}ul.sites li{border:1px solid #dfe1e6;border-radius:6px;margin:8px 0}\
ul.sites label{display:flex;align-items:center;gap:12px;padding:12px;cursor:pointer}\
ul.sites img{width:32px;height:32px;border-radius:4px}.name{font-weight:600}.url{color:#5e6c84;font-size:13px}\
.products{font-size:12px;color:#0052cc}button{background:#0052cc;color:#fff;border:0;border-radius:4px;padding:10px 16px;font-size:15px;cursor:pointer}\
a{color:#0052cc}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{title} · atlasgate</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        title = escape(title),
    )
}

/// A page that explains what went wrong and what to do next.
pub fn error_page(title: &str, message: &str) -> String {
    page(
        title,
        &format!(
            "<h1>{}</h1><p>{}</p><p class=\"muted\">You can close this window and start again from the application that sent you here.</p>",
            escape(title),
            escape(message)
        ),
    )
}

pub fn connected_page(site: Option<&AccessibleSite>) -> String {
    let site_line = site
        .map(|s| {
            format!(
                "<p>atlasgate can now reach <strong>{}</strong> (<span class=\"url\">{}</span>).</p>",
                escape(&s.name),
                escape(&s.url)
            )
        })
        .unwrap_or_default();
    page(
        "Connected",
        &format!("<h1>Connected</h1>{site_line}<p>You can close this window.</p>"),
    )
}

/// The site picker: one radio button per site of the grant, no default choice
/// (never silently take the first site).
pub fn site_picker(
    action: &str,
    csrf: &str,
    sites: &[AccessibleSite],
    error: Option<&str>,
) -> String {
    let mut items = String::new();
    for (i, site) in sites.iter().enumerate() {
        let avatar = site
            .avatar_url
            .as_deref()
            .map(|a| format!("<img src=\"{}\" alt=\"\">", escape(a)))
            .unwrap_or_default();
        items.push_str(&format!(
            "<li><label for=\"site-{i}\"><input type=\"radio\" id=\"site-{i}\" name=\"cloud_id\" value=\"{id}\" required>{avatar}\
<span><span class=\"name\">{name}</span><br><span class=\"url\">{url}</span><br><span class=\"products\">{products}</span></span></label></li>",
            id = escape(&site.cloud_id),
            name = escape(&site.name),
            url = escape(&site.url),
            products = escape(&site.products.join(", ")),
        ));
    }
    page(
        "Choose a site",
        &format!(
            "<h1>Choose a site</h1>{error}<p>Your Atlassian account gave access to several sites. Pick the one this connection should use.</p>\
<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<ul class=\"sites\">{items}</ul><button type=\"submit\" id=\"continue\">Continue</button></form>",
            action = escape(action),
            csrf = escape(csrf),
            error = error
                .map(|e| format!("<p role=\"alert\" style=\"color:#de350b\">{}</p>", escape(e)))
                .unwrap_or_default(),
        ),
    )
}
