//! The one HTML/XML text escaper of alinea, for the report pages and the SVG charts.
//!
//! Hand-written rather than taken from a crate: it is four replacements, and no escaping crate is in the lock file;
//! `'` is left as is because every attribute alinea writes is double-quoted.

/// Escapes `&`, `<`, `>` and `"` for HTML/XML text and double-quoted attributes.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_the_four_special_characters_and_ampersand_first() {
        assert_eq!(
            escape(r#"a<b & "c">d &lt;"#),
            "a&lt;b &amp; &quot;c&quot;&gt;d &amp;lt;"
        );
        assert_eq!(escape("Bokmål · en→xx"), "Bokmål · en→xx");
    }
}
