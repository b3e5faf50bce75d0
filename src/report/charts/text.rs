//! Text in charts: estimated widths and line wrapping, so that no label is cut or drawn
//! over its neighbour.

/// Estimated advance of one character at the charts' 11 px sans-serif font (a generous
/// average: digits and lower-case letters are narrower).
pub const CHAR_W: f64 = 6.6;

/// The estimated width of `s` in pixels.
pub fn width(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

/// How many characters fit in `px` pixels.
pub fn fits(px: f64) -> usize {
    (px / CHAR_W).floor().max(1.0) as usize
}

/// Break `s` into lines of at most `max` characters, after `, ` or a space where possible,
/// else after `=`, `-`, `_`, `/` or `.`, else anywhere. Nothing is dropped: the lines
/// joined (with a space after a line ending at `,` or at a space) give `s` back.
pub fn wrap(s: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    let mut rest: Vec<char> = s.chars().collect();
    while rest.len() > max {
        let window = &rest[..=max.min(rest.len() - 1)];
        let at_space = window.iter().rposition(|c| *c == ' ').filter(|i| *i > 0);
        let at_mark = window[..max]
            .iter()
            .rposition(|c| matches!(c, ',' | '=' | '-' | '_' | '/' | '.' | ':'))
            .map(|i| i + 1);
        let (cut, skip) = match (at_space, at_mark) {
            (Some(i), _) => (i, 1),
            (None, Some(i)) => (i, 0),
            (None, None) => (max, 0),
        };
        lines.push(
            rest[..cut]
                .iter()
                .collect::<String>()
                .trim_end()
                .to_string(),
        );
        rest = rest[cut + skip..].to_vec();
    }
    if !rest.is_empty() || lines.is_empty() {
        lines.push(rest.into_iter().collect());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_character() {
        assert_eq!(
            wrap("journey=checkout, step=login", 17),
            ["journey=checkout,", "step=login"]
        );
        assert_eq!(wrap("instance", 20), ["instance"]);
        assert_eq!(wrap("int8-block32", 6), ["int8-", "block3", "2"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        for (s, n) in [("batch=1, mode=quantized, scheme=int8", 9), ("a b  c", 2)] {
            let lines = wrap(s, n);
            assert!(lines.iter().all(|l| l.chars().count() <= n), "{lines:?}");
            let strip = |x: &str| x.chars().filter(|c| !c.is_whitespace()).collect::<String>();
            assert_eq!(strip(&lines.concat()), strip(s));
        }
    }
}
