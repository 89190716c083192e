//! The exact instruction templates of RECIPE.md §4. `sep` is what separates lines ("\n" by default; the paper's
//! extracted text cannot tell a newline from a space).

use serde::{Deserialize, Serialize};

/// Default line separator of every template.
pub const DEFAULT_SEPARATOR: &str = "\n";

pub(crate) fn default_separator() -> String {
    DEFAULT_SEPARATOR.to_string()
}

/// MTInstruct input: `Translate from {Y} to {X}.\n{Y}: {y}\n{X}:` (output: [`mt_output`]).
pub fn mt_input(sep: &str, y_name: &str, x_name: &str, y: &str) -> String {
    format!("Translate from {y_name} to {x_name}.{sep}{y_name}: {y}{sep}{x_name}:")
}

/// Output of the generative translation tasks (MT, Hint): ` {x}` (a leading space).
pub fn mt_output(x: &str) -> String {
    format!(" {x}")
}

/// AlignInstruct input: `Given the following parallel sentence between {Y} and {X}, judge whether the assertion is
/// True or False.\n{Y}: {y}\n{X}: {x}\nAssertion: "{y phrase}" can be aligned with "{x phrase}" statistically.`
pub fn align_input(
    sep: &str,
    y_name: &str,
    x_name: &str,
    y: &str,
    x: &str,
    y_phrase: &str,
    x_phrase: &str,
) -> String {
    format!(
        "Given the following parallel sentence between {y_name} and {x_name}, judge whether the assertion is True or \
         False.{sep}{y_name}: {y}{sep}{x_name}: {x}{sep}Assertion: \"{y_phrase}\" can be aligned with \"{x_phrase}\" \
         statistically."
    )
}

/// AlignInstruct output: `True` or `False`.
pub fn align_output(label: bool) -> String {
    if label { "True" } else { "False" }.to_string()
}

/// HintInstruct input: `Use the following alignment hints and translate from {Y} to {X}.\nAlignments between {X} and
/// {Y}:\n- ({x span 1}, {y span 1}),\n- ...\n{Y}: {y}\n{X}:`. `hints` are `(x phrase, y phrase)`; every hint line ends
/// with a comma, as printed in the paper.
pub fn hint_input(
    sep: &str,
    y_name: &str,
    x_name: &str,
    hints: &[(&str, &str)],
    y: &str,
) -> String {
    let mut s =
        format!("Use the following alignment hints and translate from {y_name} to {x_name}.{sep}");
    s.push_str(&format!("Alignments between {x_name} and {y_name}:"));
    for (xp, yp) in hints {
        s.push_str(&format!("{sep}- ({xp}, {yp}),"));
    }
    s.push_str(&format!("{sep}{y_name}: {y}{sep}{x_name}:"));
    s
}

/// ReviseInstruct input: `Given the following translation of {X} from {Y}, output the incorrectly translated word and
/// correct it.\n{Y}: {y}\n{X}: {x corrupted}`.
pub fn revise_input(sep: &str, y_name: &str, x_name: &str, y: &str, x_corrupted: &str) -> String {
    format!(
        "Given the following translation of {x_name} from {y_name}, output the incorrectly translated word and correct \
         it.{sep}{y_name}: {y}{sep}{x_name}: {x_corrupted}"
    )
}

/// ReviseInstruct output: `The incorrectly translated word is "{corrupted}". It should be "{original}".`
pub fn revise_output(corrupted: &str, original: &str) -> String {
    format!("The incorrectly translated word is \"{corrupted}\". It should be \"{original}\".")
}

/// MonoInstruct input: `Given the context, complete the following sentence: {prefix}`; with an empty prefix
/// (`full`) the trailing space is dropped so that input + output always reads `...sentence: {x}`.
pub fn mono_input(prefix: &str) -> String {
    if prefix.is_empty() {
        "Given the context, complete the following sentence:".to_string()
    } else {
        format!("Given the context, complete the following sentence: {prefix}")
    }
}

/// Inference prompt variants of Table 8.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PromptVariant {
    /// The MTInstruct input (used for fine-tuning).
    #[default]
    Default,
    /// `{Y}: {y}\n{X}:`
    #[serde(rename = "prompt-1")]
    Prompt1,
    /// `{y}\n{X}:`
    #[serde(rename = "prompt-2")]
    Prompt2,
    /// `Translate to {X}.\n{Y}: {y}\n{X}:`
    #[serde(rename = "prompt-3")]
    Prompt3,
    /// `Translate from {Y} to {X}.\n{y}\n{X}:`
    #[serde(rename = "prompt-4")]
    Prompt4,
    /// `Translate to {X}.\n{y}\n{X}:`
    #[serde(rename = "prompt-5")]
    Prompt5,
}

impl PromptVariant {
    /// All variants, default first.
    pub const ALL: [PromptVariant; 6] = [
        PromptVariant::Default,
        PromptVariant::Prompt1,
        PromptVariant::Prompt2,
        PromptVariant::Prompt3,
        PromptVariant::Prompt4,
        PromptVariant::Prompt5,
    ];

    /// Renders the prompt translating `y` (in language `y_name`) into `x_name`.
    pub fn render(self, sep: &str, y_name: &str, x_name: &str, y: &str) -> String {
        match self {
            PromptVariant::Default => mt_input(sep, y_name, x_name, y),
            PromptVariant::Prompt1 => format!("{y_name}: {y}{sep}{x_name}:"),
            PromptVariant::Prompt2 => format!("{y}{sep}{x_name}:"),
            PromptVariant::Prompt3 => {
                format!("Translate to {x_name}.{sep}{y_name}: {y}{sep}{x_name}:")
            }
            PromptVariant::Prompt4 => {
                format!("Translate from {y_name} to {x_name}.{sep}{y}{sep}{x_name}:")
            }
            PromptVariant::Prompt5 => format!("Translate to {x_name}.{sep}{y}{sep}{x_name}:"),
        }
    }
}

impl std::str::FromStr for PromptVariant {
    type Err = crate::error::InstructError;

    /// Accepts `default`, `prompt-1` … `prompt-5` (case-insensitive, `PROMPT-3` as in Table 8) or a bare `1` … `5`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let n = t.strip_prefix("prompt-").unwrap_or(&t);
        Ok(match n {
            "default" | "prompt-default" => PromptVariant::Default,
            "1" => PromptVariant::Prompt1,
            "2" => PromptVariant::Prompt2,
            "3" => PromptVariant::Prompt3,
            "4" => PromptVariant::Prompt4,
            "5" => PromptVariant::Prompt5,
            _ => {
                return Err(crate::error::InstructError::Param {
                    field: "variant",
                    message: format!(
                        "unknown prompt `{s}` (expected default or prompt-1 … prompt-5)"
                    ),
                });
            }
        })
    }
}

/// Fills `{name}` placeholders of a user template in one pass (so a sentence containing `{y}` is never expanded
/// again). Unknown placeholders are left as written.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let key = &after[..close];
                if let Some((_, v)) = values.iter().find(|(k, _)| *k == key) {
                    out.push_str(v);
                } else {
                    out.push('{');
                    out.push_str(key);
                    out.push('}');
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}
