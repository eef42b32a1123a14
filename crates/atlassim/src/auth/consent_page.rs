//! The consent screen and the auth server's error page: plain HTML and CSS.

use crate::model::World;

const STYLE: &str = r#"
body { font-family: -apple-system, "Segoe UI", Roboto, sans-serif; background: #f4f5f7; color: #172b4d; margin: 0; }
main { max-width: 480px; margin: 48px auto; background: #fff; border-radius: 8px; padding: 32px;
       box-shadow: 0 1px 3px rgba(9,30,66,.25); }
h1 { font-size: 20px; margin: 0 0 8px; }
p.sub { color: #5e6c84; margin: 0 0 24px; }
h2 { font-size: 14px; text-transform: uppercase; color: #5e6c84; margin: 24px 0 8px; }
ul.scopes { padding-left: 20px; margin: 0; }
ul.scopes li { margin: 4px 0; font-family: ui-monospace, monospace; font-size: 13px; }
label.site { display: block; margin: 6px 0; }
select { width: 100%; padding: 6px; font-size: 14px; }
.buttons { display: flex; gap: 12px; margin-top: 28px; justify-content: flex-end; }
button { border: 0; border-radius: 4px; padding: 8px 16px; font-size: 14px; cursor: pointer; }
button.accept { background: #0052cc; color: #fff; }
button.deny { background: #ebecf0; color: #42526e; }
.error { background: #ffebe6; color: #bf2600; padding: 8px 12px; border-radius: 4px; }
.banner { font-size: 12px; color: #6b778c; text-align: center; margin-top: 16px; }
"#;

/// Escape text for HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head>\
         <body><main>{body}</main><p class=\"banner\">atlassim — simulated Atlassian Cloud</p></body></html>",
        escape(title)
    )
}

pub(crate) fn render_error(message: &str) -> String {
    page(
        "Something went wrong",
        &format!(
            "<h1>Something went wrong</h1><p class=\"sub\" id=\"error\">{}</p>",
            escape(message)
        ),
    )
}

pub(crate) fn render_consent(
    world: &World,
    client_id: &str,
    scopes: &[String],
    request_id: &str,
    site_ids: &[String],
    error: Option<&str>,
) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let mut html = format!(
        "<h1>{} is requesting access to your Atlassian account</h1>\
         <p class=\"sub\">Review what the app can do, choose who you are and where it may act.</p>{error}\
         <form method=\"post\" action=\"/authorize/decision\">\
         <input type=\"hidden\" name=\"request_id\" value=\"{}\">\
         <h2>It will be able to</h2><ul class=\"scopes\">",
        escape(client_id),
        escape(request_id)
    );
    for scope in scopes {
        html.push_str(&format!("<li>{}</li>", escape(scope)));
    }
    html.push_str("</ul><h2>Signed in as</h2><select name=\"account_id\" id=\"account_id\">");
    for user in &world.users {
        html.push_str(&format!(
            "<option value=\"{}\">{} ({})</option>",
            escape(&user.account_id),
            escape(&user.name),
            escape(&user.email)
        ));
    }
    html.push_str("</select><h2>Use app on</h2>");
    for id in site_ids {
        let Some(site) = world.site(id) else { continue };
        let products: Vec<&str> = site.products.iter().map(|p| p.as_str()).collect();
        html.push_str(&format!(
            "<label class=\"site\"><input type=\"checkbox\" name=\"site\" value=\"{}\" data-site-name=\"{}\"> {} \
             <small>({})</small></label>",
            escape(&site.cloud_id),
            escape(&site.name),
            escape(&site.url),
            escape(&products.join(", "))
        ));
    }
    html.push_str(
        "<div class=\"buttons\">\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"deny\" id=\"deny\">Deny</button>\
         <button type=\"submit\" name=\"decision\" value=\"accept\" class=\"accept\" id=\"accept\">Accept</button>\
         </div></form>",
    );
    page("Authorize app", &html)
}
