//! CKAN's spellings: package names, tags, licence ids and times.

/// CKAN's `PACKAGE_NAME_MAX_LENGTH`, and its tag length bounds.
const NAME_MAX: usize = 100;
const TAG_MIN: usize = 2;
const TAG_MAX: usize = 100;

/// The CKAN package name for a dataset id: lower-case `a-z 0-9 - _`, 2–100 characters. Our slugs map one to
/// one except `.` → `-`; anything else invalid also becomes `-`. A name over 100 characters is cut and ends
/// in 8 hex digits of the id's SHA-256 so it stays unique; CKAN's reserved names (`new`, `edit`, `search`)
/// and 1-character ids get a `_` appended.
pub fn package_name(dataset_id: &str) -> String {
    use sha2::Digest;
    let mut name: String = dataset_id
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '-',
        })
        .collect();
    if name.len() > NAME_MAX {
        let digest = hex::encode(sha2::Sha256::digest(dataset_id.as_bytes()));
        name.truncate(NAME_MAX - 9);
        name.push('-');
        name.push_str(&digest[..8]);
    }
    while name.len() < 2 || matches!(name.as_str(), "new" | "edit" | "search") {
        name.push('_');
    }
    name
}

/// CKAN's default licence id for an SPDX id we publish under.
pub fn license_id(spdx: &str) -> Option<&'static str> {
    match spdx {
        "CC0-1.0" => Some("cc-zero"),
        "CC-BY-4.0" => Some("cc-by"),
        _ => None,
    }
}

/// A keyword as a CKAN tag (letters, digits, spaces, `-_.`; 2–100 characters), or `None` when nothing is left.
pub(super) fn tag_name(keyword: &str) -> Option<String> {
    let cleaned: String = keyword
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mut tag = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if tag.chars().count() > TAG_MAX {
        tag = tag
            .chars()
            .take(TAG_MAX)
            .collect::<String>()
            .trim_end()
            .to_owned();
    }
    (tag.chars().count() >= TAG_MIN).then_some(tag)
}

/// RFC 3339 → CKAN's naive UTC `YYYY-MM-DDTHH:MM:SS`.
pub(super) fn ckan_time(rfc3339: &str) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some(t.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string())
}

/// A time as CKAN returns it (naive, maybe with fractions or an offset), to the second in UTC.
pub(super) fn parse_ckan_time(s: &str) -> Option<chrono::NaiveDateTime> {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.naive_utc())
        })?;
    chrono::Timelike::with_nanosecond(&t, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        let long = "a".repeat(120);
        for (id, want) in [
            ("energy.hourly", "energy-hourly"),
            ("aarhus_temp-2026", "aarhus_temp-2026"),
            ("Big.ID", "big-id"),
            ("x", "x_"),
            ("new", "new_"),
        ] {
            assert_eq!(package_name(id), want, "{id}");
        }
        let name = package_name(&long);
        assert_eq!(name.len(), NAME_MAX);
        assert_ne!(package_name(&long), package_name(&"a".repeat(121)));
    }

    #[test]
    fn tags() {
        for (keyword, want) in [
            ("energi", Some("energi")),
            ("luft/kvalitet", Some("luft kvalitet")),
            ("  CO₂,  måling ", Some("CO₂ måling")),
            ("x", None),
            ("!!", None),
        ] {
            assert_eq!(tag_name(keyword).as_deref(), want, "{keyword}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(
            ckan_time("2026-03-01T00:00:00+01:00").as_deref(),
            Some("2026-02-28T23:00:00")
        );
        assert_eq!(
            ckan_time("2026-03-01T10:00:00Z").as_deref(),
            Some("2026-03-01T10:00:00")
        );
        assert_eq!(ckan_time("yesterday"), None);
        let want = parse_ckan_time("2026-03-01T10:00:00");
        assert!(want.is_some());
        assert_eq!(parse_ckan_time("2026-03-01T10:00:00.000000"), want);
        assert_eq!(parse_ckan_time("2026-03-01T11:00:00+01:00"), want);
    }
}
