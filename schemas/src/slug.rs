//! Slugs made from names people type: `"Rådhus kælder CO₂"` → `raadhus-kaelder-co2`. Danish letters are
//! written the way Danes write them without the letter (æ → ae, ø → oe, å → aa), other Latin letters with
//! marks lose the mark (German ä ö ü as ae oe ue), and sub- and superscript digits become digits, so an id
//! made from a name still reads like the name.

/// The ASCII spelling of one lowercase character, when it has one that is not itself.
fn ascii(c: char) -> Option<&'static str> {
    Some(match c {
        'æ' | 'ä' => "ae",
        'ø' | 'ö' | 'œ' => "oe",
        'å' => "aa",
        'ü' => "ue",
        'ß' => "ss",
        'þ' => "th",
        'ð' => "d",
        'à' | 'á' | 'â' | 'ã' | 'ā' => "a",
        'ç' | 'č' | 'ć' => "c",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ě' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ō' => "o",
        'ù' | 'ú' | 'û' | 'ū' | 'ů' => "u",
        'ý' | 'ÿ' => "y",
        'š' | 'ś' => "s",
        'ž' | 'ź' | 'ż' => "z",
        'ł' => "l",
        'ř' => "r",
        'µ' => "u",
        '₀' | '⁰' => "0",
        '₁' | '¹' => "1",
        '₂' | '²' => "2",
        '₃' | '³' => "3",
        '₄' | '⁴' => "4",
        '₅' | '⁵' => "5",
        '₆' | '⁶' => "6",
        '₇' | '⁷' => "7",
        '₈' | '⁸' => "8",
        '₉' | '⁹' => "9",
        _ => return None,
    })
}

/// `name` as a slug of `a-z 0-9 -`: lowercased, transliterated, every other run of characters one `-`, at
/// most `max` bytes, never starting or ending with `-`. Empty when nothing of the name is left.
pub fn slugify(name: &str, max: usize) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        let piece = match ascii(c) {
            Some(s) => s,
            None if c.is_ascii_alphanumeric() => {
                if dash && !out.is_empty() {
                    out.push('-');
                }
                dash = false;
                out.push(c);
                continue;
            }
            None => {
                dash = true;
                continue;
            }
        };
        if dash && !out.is_empty() {
            out.push('-');
        }
        dash = false;
        out.push_str(piece);
    }
    out.truncate(max);
    out.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::slugify;
    use proptest::prelude::*;

    #[test]
    fn names_read_like_themselves() {
        for (name, slug) in [
            ("Rådhus kælder CO₂", "raadhus-kaelder-co2"),
            ("Ærø Øst", "aeroe-oest"),
            ("Room sensor", "room-sensor"),
            ("  --Müller/Straße 5--  ", "mueller-strasse-5"),
            ("Café m²", "cafe-m2"),
            ("日本", ""),
            ("", ""),
        ] {
            assert_eq!(slugify(name, 48), slug, "{name}");
        }
        assert_eq!(slugify("abc def", 4), "abc");
    }

    proptest! {
        #[test]
        fn a_slug_is_always_a_slug(name in ".{0,80}", max in 1usize..64) {
            let s = slugify(&name, max);
            prop_assert!(s.len() <= max);
            prop_assert!(s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
            prop_assert!(!s.starts_with('-') && !s.ends_with('-') && !s.contains("--"));
        }
    }
}
