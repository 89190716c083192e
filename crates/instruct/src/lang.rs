//! The language registry, the one language table of alinea: ISO 639-1 code, English name (used verbatim in the
//! instruction templates), Flores-200 code, script, family, and whether BLOOM saw the language (and its script) in
//! pre-training.
//!
//! It covers English, the 24 BLOOMZ+24 languages and the six BLOOMZ+3 languages of RECIPE.md §1. Pipelines can
//! add languages through a stage's `extra_languages` parameter (see [`Language`]). [`paper_language_names`] and the
//! [`LanguageNames`] impl of [`Registry`] give the templates their names from this table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::LanguageNames;

/// One language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Language {
    /// ISO 639-1 code (`be`), the key used in every table.
    pub code: String,
    /// English name as the paper's templates use it (`Belarusian`).
    pub name: String,
    /// Flores-200 code (`bel_Cyrl`).
    pub flores: String,
    /// Script name.
    pub script: String,
    /// Family / subgroup.
    pub family: String,
    /// Whether BLOOM's pre-training covered the language ("seen" in the paper's buckets).
    pub bloom_seen: bool,
    /// Whether BLOOM's pre-training covered the script.
    pub script_seen: bool,
}

const BUILTIN: &[(&str, &str, &str, &str, &str, bool, bool)] = &[
    (
        "en",
        "English",
        "eng_Latn",
        "Latin",
        "Indo-European / Germanic",
        true,
        true,
    ),
    (
        "af",
        "Afrikaans",
        "afr_Latn",
        "Latin",
        "Indo-European / Germanic",
        false,
        true,
    ),
    (
        "am",
        "Amharic",
        "amh_Ethi",
        "Ge'ez",
        "Afro-Asiatic / Semitic",
        false,
        false,
    ),
    (
        "be",
        "Belarusian",
        "bel_Cyrl",
        "Cyrillic",
        "Indo-European / Balto-Slavic",
        false,
        false,
    ),
    (
        "cy",
        "Welsh",
        "cym_Latn",
        "Latin",
        "Indo-European / Celtic",
        false,
        true,
    ),
    (
        "ga",
        "Irish",
        "gle_Latn",
        "Latin",
        "Indo-European / Celtic",
        false,
        true,
    ),
    (
        "gd",
        "Scottish Gaelic",
        "gla_Latn",
        "Latin",
        "Indo-European / Celtic",
        false,
        true,
    ),
    (
        "gl",
        "Galician",
        "glg_Latn",
        "Latin",
        "Indo-European / Italic",
        false,
        true,
    ),
    (
        "ha",
        "Hausa",
        "hau_Latn",
        "Latin",
        "Afro-Asiatic / Chadic",
        false,
        true,
    ),
    (
        "ka",
        "Georgian",
        "kat_Geor",
        "Georgian",
        "Kartvelian",
        false,
        false,
    ),
    (
        "kk", "Kazakh", "kaz_Cyrl", "Cyrillic", "Turkic", false, false,
    ),
    (
        "km",
        "Khmer",
        "khm_Khmr",
        "Khmer",
        "Austroasiatic",
        false,
        false,
    ),
    (
        "ky", "Kyrgyz", "kir_Cyrl", "Cyrillic", "Turkic", false, false,
    ),
    (
        "li",
        "Limburgish",
        "lim_Latn",
        "Latin",
        "Indo-European / Germanic",
        false,
        true,
    ),
    (
        "my",
        "Burmese",
        "mya_Mymr",
        "Myanmar",
        "Sino-Tibetan",
        false,
        false,
    ),
    (
        "nb",
        "Norwegian Bokmål",
        "nob_Latn",
        "Latin",
        "Indo-European / Germanic",
        false,
        true,
    ),
    (
        "nn",
        "Norwegian Nynorsk",
        "nno_Latn",
        "Latin",
        "Indo-European / Germanic",
        false,
        true,
    ),
    (
        "oc",
        "Occitan",
        "oci_Latn",
        "Latin",
        "Indo-European / Italic",
        false,
        true,
    ),
    (
        "si",
        "Sinhala",
        "sin_Sinh",
        "Sinhala",
        "Indo-European / Indo-Aryan",
        false,
        false,
    ),
    (
        "tg",
        "Tajik",
        "tgk_Cyrl",
        "Cyrillic",
        "Indo-European / Iranian",
        false,
        false,
    ),
    ("tk", "Turkmen", "tuk_Latn", "Latin", "Turkic", false, true),
    (
        "tt", "Tatar", "tat_Cyrl", "Cyrillic", "Turkic", false, false,
    ),
    ("ug", "Uyghur", "uig_Arab", "Arabic", "Turkic", false, true),
    (
        "uz",
        "Northern Uzbek",
        "uzn_Latn",
        "Latin",
        "Turkic",
        false,
        true,
    ),
    (
        "yi",
        "Eastern Yiddish",
        "ydd_Hebr",
        "Hebrew",
        "Indo-European / Germanic",
        false,
        false,
    ),
    (
        "de",
        "German",
        "deu_Latn",
        "Latin",
        "Indo-European / Germanic",
        false,
        true,
    ),
    (
        "nl",
        "Dutch",
        "nld_Latn",
        "Latin",
        "Indo-European / Germanic",
        false,
        true,
    ),
    (
        "ru",
        "Russian",
        "rus_Cyrl",
        "Cyrillic",
        "Indo-European / Balto-Slavic",
        false,
        true,
    ),
    (
        "ar",
        "Arabic",
        "arb_Arab",
        "Arabic",
        "Afro-Asiatic / Semitic",
        true,
        true,
    ),
    (
        "fr",
        "French",
        "fra_Latn",
        "Latin",
        "Indo-European / Italic",
        true,
        true,
    ),
    (
        "zh",
        "Chinese",
        "zho_Hans",
        "Han (Simplified)",
        "Sino-Tibetan",
        true,
        true,
    ),
];

/// The built-in languages, English first.
pub fn builtin() -> Vec<Language> {
    BUILTIN
        .iter()
        .map(
            |&(code, name, flores, script, family, bloom_seen, script_seen)| Language {
                code: code.into(),
                name: name.into(),
                flores: flores.into(),
                script: script.into(),
                family: family.into(),
                bloom_seen,
                script_seen,
            },
        )
        .collect()
}

/// A registry: the built-ins plus languages a pipeline adds.
#[derive(Debug, Clone)]
pub struct Registry {
    languages: Vec<Language>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            languages: builtin(),
        }
    }
}

impl Registry {
    /// The built-ins plus `extra` (an extra language with a built-in code replaces it).
    pub fn with_extra(extra: &[Language]) -> Registry {
        let mut languages = builtin();
        for l in extra {
            languages.retain(|b| b.code != l.code);
            languages.push(l.clone());
        }
        Registry { languages }
    }

    /// Looks a language up by ISO code.
    pub fn get(&self, code: &str) -> Option<&Language> {
        self.languages.iter().find(|l| l.code == code)
    }

    /// Looks a language up, with an error listing the known codes.
    pub fn require(&self, code: &str) -> Result<&Language, String> {
        self.get(code).ok_or_else(|| {
            format!(
                "unknown language code `{code}`; known: {} (add others with `extra_languages`)",
                self.languages
                    .iter()
                    .map(|l| l.code.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// Every language.
    pub fn all(&self) -> &[Language] {
        &self.languages
    }
}

impl LanguageNames for Registry {
    fn english_name(&self, code: &str) -> Option<String> {
        self.get(code).map(|l| l.name.clone())
    }
}

/// The English names of the built-in languages (RECIPE.md §1: Table 6 plus English and the BLOOMZ+3 languages), by
/// ISO code.
pub fn paper_language_names() -> BTreeMap<String, String> {
    BUILTIN
        .iter()
        .map(|&(code, name, ..)| (code.to_string(), name.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_covers_the_31_languages_of_the_recipe() {
        let r = Registry::default();
        assert_eq!(r.all().len(), 31);
        let unseen24 = r
            .all()
            .iter()
            .filter(|l| !l.bloom_seen && !["de", "nl", "ru"].contains(&l.code.as_str()))
            .count();
        assert_eq!(unseen24, 24);
        assert_eq!(r.get("be").unwrap().flores, "bel_Cyrl");
        assert!(r.get("fr").unwrap().bloom_seen && !r.get("ru").unwrap().bloom_seen);
        assert!(r.require("xx").unwrap_err().contains("known: en, af"));
    }

    #[test]
    fn template_names_come_from_the_registry() {
        let names = paper_language_names();
        assert_eq!(names.len(), 31);
        assert_eq!(names["nb"], "Norwegian Bokmål");
        assert_eq!(names["uz"], "Northern Uzbek");
        let r = Registry::default();
        for l in r.all() {
            assert_eq!(
                r.english_name(&l.code).as_deref(),
                Some(names[&l.code].as_str())
            );
        }
        assert_eq!(r.english_name("xx"), None);
    }
}
