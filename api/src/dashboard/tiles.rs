//! The map's street tiles (`[dashboard.tiles]`): a URL template, its attribution and its tile grid. None by
//! default — a city chooses whom its viewers' browsers contact — and then the map is a plain background.
//! The page's Content-Security-Policy admits exactly the template's origin for images, so a mistyped or
//! hostile template cannot make the page load anything else.
use serde::{Deserialize, Serialize};
use std::fmt;

/// The dashboard's settings (`[dashboard]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Street tiles under the map; absent: the plain background, and browsers contact only bydata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiles: Option<TileSource>,
}

/// Where the map's tiles come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TileSource {
    /// `http(s)://…` with `{z}`, `{x}`, `{y}` (XYZ), or a WMTS GetTile URL with the same placeholders in
    /// `TileMatrix`, `TileCol`, `TileRow`; `{zz}` is the zoom with two digits (Dataforsyningen's `L07`).
    pub url: TileUrl,
    /// Shown on the map, as the tiles' licence asks (e.g. "© OpenStreetMap contributors").
    pub attribution: String,
    /// The tiles' grid: `web-mercator` (XYZ and WMTS GoogleMapsCompatible, default) or `dk-view1`
    /// (Dataforsyningen's WMTS: ETRS89 / UTM 32N, tile matrix set `View1`).
    #[serde(default)]
    pub grid: TileGrid,
    /// The deepest zoom level the source serves (default 19; `dk-view1` has 13).
    #[serde(default = "default_max_zoom")]
    pub max_zoom: u8,
}

fn default_max_zoom() -> u8 {
    19
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TileGrid {
    #[default]
    WebMercator,
    DkView1,
}

impl TileGrid {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::WebMercator => "web-mercator",
            Self::DkView1 => "dk-view1",
        }
    }
}

/// A tile URL template, checked when the config is read: http or https, a plain host (no user or password),
/// the `{x}`, `{y}` and `{z}` or `{zz}` placeholders, nothing that could break out of an HTML attribute or a
/// CSP header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TileUrl {
    template: String,
    origin_len: usize,
}

/// Why a tile URL template was refused, in the words of the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileUrlError(&'static str);

impl fmt::Display for TileUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dashboard.tiles.url {}", self.0)
    }
}

impl std::error::Error for TileUrlError {}

impl TileUrl {
    /// `scheme://host[:port]`: what the page's Content-Security-Policy admits for images.
    pub fn origin(&self) -> &str {
        &self.template[..self.origin_len]
    }

    pub fn template(&self) -> &str {
        &self.template
    }
}

impl TryFrom<String> for TileUrl {
    type Error = TileUrlError;

    fn try_from(template: String) -> Result<Self, TileUrlError> {
        let rest = template
            .strip_prefix("https://")
            .or_else(|| template.strip_prefix("http://"))
            .ok_or(TileUrlError(
                "must start with https:// (or http://), e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            ))?;
        let host_len = rest.find(['/', '?']).unwrap_or(rest.len());
        let host = &rest[..host_len];
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(TileUrlError(
                "must name a plain host (letters, digits, '.', '-', an optional :port; no user or password)",
            ));
        }
        if template.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | ';' | '\\')
        }) {
            return Err(TileUrlError(
                "may not contain spaces, quotes, '<', '>', ';' or '\\' (percent-encode them)",
            ));
        }
        if !(template.contains("{x}")
            && template.contains("{y}")
            && (template.contains("{z}") || template.contains("{zz}")))
        {
            return Err(TileUrlError(
                "must contain the placeholders {x}, {y} and {z} (or {zz}, the zoom with two digits)",
            ));
        }
        let origin_len = template.len() - rest.len() + host_len;
        Ok(Self {
            template,
            origin_len,
        })
    }
}

impl From<TileUrl> for String {
    fn from(u: TileUrl) -> String {
        u.template
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked_and_their_origin_is_what_the_csp_admits() {
        for (url, origin) in [
            (
                "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                "https://tile.openstreetmap.org",
            ),
            (
                "http://127.0.0.1:9000/{z}/{x}/{y}.png",
                "http://127.0.0.1:9000",
            ),
            (
                "https://api.dataforsyningen.dk/topo_skaermkort_wmts_DAF?service=WMTS&request=GetTile\
                 &version=1.0.0&layer=topo_skaermkort&style=default&format=image/jpeg&TileMatrixSet=View1\
                 &TileMatrix=L{zz}&TileRow={y}&TileCol={x}&token=T",
                "https://api.dataforsyningen.dk",
            ),
        ] {
            let u = TileUrl::try_from(url.to_owned()).unwrap();
            assert_eq!(u.origin(), origin);
            assert_eq!(u.template(), url);
        }
        for bad in [
            "tile.openstreetmap.org/{z}/{x}/{y}.png",
            "ftp://a/{z}/{x}/{y}",
            "https://user:pw@a/{z}/{x}/{y}",
            "https:///{z}/{x}/{y}",
            "https://a/{z}/{x}.png",
            "https://a/{z}/{x}/{y}.png; script-src *",
            "https://a/{z}/{x}/{y}\".png",
            "https://a b/{z}/{x}/{y}",
        ] {
            assert!(TileUrl::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_section_reads_from_toml_and_refuses_unknown_keys() {
        let c: DashboardConfig = toml::from_str(
            "[tiles]\nurl = \"https://tile.openstreetmap.org/{z}/{x}/{y}.png\"\n\
             attribution = \"© OpenStreetMap contributors\"\n",
        )
        .unwrap();
        let t = c.tiles.unwrap();
        assert_eq!((t.grid, t.max_zoom), (TileGrid::WebMercator, 19));
        assert!(
            toml::from_str::<DashboardConfig>("[tiles]\nurl = \"x\"\nattribution = \"a\"\n")
                .is_err()
        );
        assert!(toml::from_str::<DashboardConfig>("colour = 1\n").is_err());
        assert_eq!(DashboardConfig::default().tiles, None);
    }

    proptest::proptest! {
        /// Any text: refused or accepted, never a panic; what is accepted cannot break out of the policy
        /// header or the page's attribute.
        #[test]
        fn any_template_is_refused_or_safe(text in "(https?://)?[a-z0-9.:@\\[\\]/?&=;'\" <>{}xyz-]{0,60}") {
            if let Ok(u) = TileUrl::try_from(text.clone()) {
                proptest::prop_assert!(text.starts_with(u.origin()));
                proptest::prop_assert!(!u.template().contains([' ', ';', '"', '\'', '<', '>']));
                let host = u.origin().split_once("://").map(|(_, h)| h).unwrap_or("/");
                proptest::prop_assert!(!host.is_empty() && !host.contains(['@', '/', '?']));
            }
        }
    }
}
