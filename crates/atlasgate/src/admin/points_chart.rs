//! The dashboard's chart of Atlassian quota points spent per site per hour
//! (docs/design.md §17): server-rendered SVG, no script. One group of bars
//! per UTC hour of the last [`HOURS`], one bar per site, interactive points
//! stacked on background ones; the hourly quota as a dashed line.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::state::AppState;
use crate::store;
use crate::store::points::UsageRow;

use super::dashboard::esc;

/// Hours shown.
pub const HOURS: i64 = 24;
const W: f64 = 720.0;
const H: f64 = 180.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 10.0;

/// The `<section id="points">` of the dashboard. A failing query shows as a
/// note: the rest of the dashboard is still worth seeing.
pub async fn section(state: &AppState, html: &mut String, now: i64) {
    html.push_str("<section id=\"points\"><h2>Atlassian points per hour</h2>");
    let from = (now.div_euclid(3600) - (HOURS - 1)) * 3600;
    match store::points::usage_since(state.store.pool(), from).await {
        Ok(rows) if rows.is_empty() => {
            html.push_str("<p class=\"empty\">No points spent in the last 24 hours.</p>")
        }
        Ok(rows) => {
            let quota = state.atlassian.budget().settings().per_hour;
            let quota = state
                .atlassian
                .budget()
                .snapshot()
                .iter()
                .map(|p| p.quota.max(0) as u64)
                .max()
                .unwrap_or(quota);
            html.push_str(&svg(&rows, from, quota));
        }
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: cannot read points usage");
            html.push_str("<p class=\"empty\">Points usage is unavailable.</p>");
        }
    }
    html.push_str("</section>");
}

/// The chart for `rows` (hours from `from` on), scaled to the larger of the
/// busiest hour and `quota`.
pub fn svg(rows: &[UsageRow], from: i64, quota: u64) -> String {
    // site → hour index → [interactive, background]
    let mut by_site: BTreeMap<&str, BTreeMap<i64, [i64; 2]>> = BTreeMap::new();
    for r in rows {
        let h = (r.hour_start - from).div_euclid(3600);
        if !(0..HOURS).contains(&h) {
            continue;
        }
        let cell = by_site
            .entry(r.site.as_str())
            .or_default()
            .entry(h)
            .or_insert([0, 0]);
        cell[usize::from(r.class != "interactive")] += r.points.max(0);
    }
    let peak = by_site
        .values()
        .flat_map(|m| m.values().map(|c| c[0] + c[1]))
        .max()
        .unwrap_or(0)
        .max(quota as i64)
        .max(1) as f64;
    let sites: Vec<&str> = by_site.keys().copied().collect();
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - TOP - BOTTOM;
    let group = plot_w / HOURS as f64;
    let bar = (group * 0.8 / sites.len().max(1) as f64).max(1.0);
    let y = |v: f64| TOP + plot_h - v / peak * plot_h;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg id=\"points-chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" \
         width=\"100%\" role=\"img\" aria-label=\"Atlassian points per site per hour\" \
         style=\"display:block;padding:12px 16px\">"
    );
    // Axis: 0 and the peak, the quota line.
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{b:.1}\" x2=\"{r:.1}\" y2=\"{b:.1}\" stroke=\"#dfe1e6\"/>\
         <text x=\"{tx:.1}\" y=\"{b:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#5e6c84\">0</text>\
         <text x=\"{tx:.1}\" y=\"{t:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#5e6c84\">{peak}</text>",
        b = TOP + plot_h,
        r = W - 8.0,
        tx = LEFT - 4.0,
        t = TOP + 8.0,
        peak = peak as i64,
    );
    if quota > 0 {
        let qy = y(quota as f64);
        let _ = write!(
            out,
            "<line class=\"quota\" x1=\"{LEFT}\" y1=\"{qy:.1}\" x2=\"{r:.1}\" y2=\"{qy:.1}\" \
             stroke=\"#bf2600\" stroke-dasharray=\"4 3\"><title>quota {quota} points/hour</title></line>",
            r = W - 8.0,
        );
    }
    let palette = [
        "#0052cc", "#00875a", "#6554c0", "#ff8b00", "#00a3bf", "#de350b",
    ];
    for (i, site) in sites.iter().enumerate() {
        let colour = palette[i % palette.len()];
        for (h, cell) in &by_site[site] {
            let x = LEFT + *h as f64 * group + group * 0.1 + i as f64 * bar;
            let hour = chrono::DateTime::<chrono::Utc>::from_timestamp(from + h * 3600, 0)
                .map(|t| t.format("%Y-%m-%d %H:00").to_string())
                .unwrap_or_default();
            // Background at the bottom, interactive above, lighter.
            let (fg, bg) = (cell[0] as f64, cell[1] as f64);
            let _ = write!(
                out,
                "<rect class=\"bar\" data-site=\"{s}\" data-hour=\"{hs}\" data-points=\"{total}\" \
                 x=\"{x:.1}\" y=\"{yb:.1}\" width=\"{bar:.1}\" height=\"{hb:.1}\" fill=\"{colour}\">\
                 <title>{s} {hour}: {bgi} background</title></rect>\
                 <rect x=\"{x:.1}\" y=\"{yi:.1}\" width=\"{bar:.1}\" height=\"{hi:.1}\" fill=\"{colour}\" \
                 fill-opacity=\"0.45\"><title>{s} {hour}: {fgi} interactive</title></rect>",
                s = esc(site),
                hs = from + h * 3600,
                total = cell[0] + cell[1],
                yb = y(bg),
                hb = (bg / peak * plot_h).max(0.0),
                yi = y(bg + fg),
                hi = (fg / peak * plot_h).max(0.0),
                bgi = cell[1],
                fgi = cell[0],
            );
        }
    }
    // Hour labels every 6 hours.
    for h in (0..HOURS).step_by(6) {
        let label = chrono::DateTime::<chrono::Utc>::from_timestamp(from + h * 3600, 0)
            .map(|t| t.format("%H:00").to_string())
            .unwrap_or_default();
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"10\" fill=\"#5e6c84\">{label}</text>",
            x = LEFT + h as f64 * group,
            y = H - 6.0,
        );
    }
    out.push_str("</svg><p class=\"muted\" style=\"padding:0 16px 12px\">");
    for (i, site) in sites.iter().enumerate() {
        let _ = write!(
            out,
            "<span style=\"color:{}\">■</span> <code>{}</code> ",
            palette[i % palette.len()],
            esc(site)
        );
    }
    out.push_str(" — solid: background (sync), light: interactive; dashed: the hourly quota.</p>");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_site_and_hour_escaped() {
        let from = 1_700_000_000 / 3600 * 3600;
        let row = |site: &str, h: i64, class: &str, points: i64| UsageRow {
            site: site.into(),
            hour_start: from + h * 3600,
            class: class.into(),
            points,
        };
        let svg = svg(
            &[
                row("a<b", 0, "background", 900),
                row("a<b", 0, "interactive", 100),
                row("site-2", 3, "interactive", 40),
                row("old", -5, "interactive", 1),
            ],
            from,
            65_000,
        );
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert!(svg.contains("data-site=\"a&lt;b\""));
        assert!(svg.contains("data-points=\"1000\""));
        assert!(!svg.contains("a<b"));
        assert!(!svg.contains("old"));
        assert!(svg.contains("class=\"quota\""));
    }
}
