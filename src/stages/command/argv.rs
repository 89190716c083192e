//! The `run` argv: placeholders `{in.NAME}`, `{out.NAME}`, `{root}`, and tool paths.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alinea_engine::StageError;

use super::OutputDecl;

/// Where each placeholder points in one run.
pub(crate) struct Paths<'a> {
    pub(crate) inputs: &'a BTreeMap<String, PathBuf>,
    pub(crate) outputs: &'a BTreeMap<String, PathBuf>,
    pub(crate) root: &'a Path,
    pub(crate) tools: &'a [String],
}

/// One `{…}` placeholder of an argument: `in.NAME`, `out.NAME`, `root`; anything else in braces is left as written
/// (a JSON argument keeps its braces).
enum Placeholder<'a> {
    In(&'a str),
    Out(&'a str),
    Root,
}

/// Splits `arg` into literal text and placeholders, in order.
fn parse(arg: &str) -> Vec<Result<&str, Placeholder<'_>>> {
    let mut parts = Vec::new();
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| c + open) else {
            break;
        };
        let inner = &rest[open + 1..close];
        let ph = if let Some(n) = inner.strip_prefix("in.") {
            Some(Placeholder::In(n))
        } else if let Some(n) = inner.strip_prefix("out.") {
            Some(Placeholder::Out(n))
        } else if inner == "root" {
            Some(Placeholder::Root)
        } else {
            None
        };
        match ph {
            Some(ph) => {
                parts.push(Ok(&rest[..open]));
                parts.push(Err(ph));
            }
            None => parts.push(Ok(&rest[..=close])),
        }
        rest = &rest[close + 1..];
    }
    parts.push(Ok(rest));
    parts
}

/// Checks, before anything runs, that every `{out.NAME}` names a declared output (inputs are checked when the
/// stage runs, where the filled slots are known).
pub(crate) fn check_placeholders(
    run: &[String],
    outputs: &BTreeMap<String, OutputDecl>,
) -> Result<(), String> {
    for (i, arg) in run.iter().enumerate() {
        for part in parse(arg) {
            if let Err(Placeholder::Out(name)) = part
                && !outputs.contains_key(name)
            {
                return Err(format!(
                    "run[{i}] = `{arg}`: `{{out.{name}}}` names no declared output; outputs are: {}",
                    outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// The argv with placeholders replaced by paths and tool names by their absolute paths.
pub(crate) fn expand(run: &[String], paths: &Paths) -> Result<Vec<String>, StageError> {
    run.iter()
        .enumerate()
        .map(|(i, arg)| {
            if paths.tools.iter().any(|t| t == arg) {
                return Ok(paths.root.join(arg).display().to_string());
            }
            let mut out = String::new();
            for part in parse(arg) {
                match part {
                    Ok(text) => out.push_str(text),
                    Err(Placeholder::Root) => out.push_str(&paths.root.display().to_string()),
                    Err(Placeholder::In(name)) => {
                        let path = paths.inputs.get(name).ok_or_else(|| StageError::Param {
                            field: format!("run[{i}]"),
                            message: format!(
                                "`{{in.{name}}}` names no input; inputs are: {}",
                                names(paths.inputs)
                            ),
                        })?;
                        out.push_str(&path.display().to_string());
                    }
                    Err(Placeholder::Out(name)) => {
                        let path = paths.outputs.get(name).ok_or_else(|| StageError::Param {
                            field: format!("run[{i}]"),
                            message: format!(
                                "`{{out.{name}}}` names no output; outputs are: {}",
                                names(paths.outputs)
                            ),
                        })?;
                        out.push_str(&path.display().to_string());
                    }
                }
            }
            Ok(out)
        })
        .collect()
}

fn names(map: &BTreeMap<String, PathBuf>) -> String {
    if map.is_empty() {
        return "(none)".into();
    }
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand_inside_arguments_and_other_braces_stay() {
        let inputs = BTreeMap::from([("train".to_string(), PathBuf::from("/s/in/train.jsonl"))]);
        let outputs = BTreeMap::from([("loss".to_string(), PathBuf::from("/s/out/loss.csv"))]);
        let tools = vec!["scripts/t.py".to_string()];
        let paths = Paths {
            inputs: &inputs,
            outputs: &outputs,
            root: Path::new("/r"),
            tools: &tools,
        };
        let run: Vec<String> = ["python", "scripts/t.py", "--data={in.train}", "{out.loss}", "{\"a\": 1}", "{root}/x"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            expand(&run, &paths).unwrap(),
            ["python", "/r/scripts/t.py", "--data=/s/in/train.jsonl", "/s/out/loss.csv", "{\"a\": 1}", "/r/x"]
        );
        let bad = vec!["{in.nope}".to_string()];
        let err = expand(&bad, &paths).unwrap_err().to_string();
        assert!(err.contains("`{in.nope}` names no input; inputs are: train"), "{err}");
    }

    #[test]
    fn an_undeclared_output_placeholder_is_refused_before_running() {
        let outputs = BTreeMap::from([("loss".to_string(), OutputDecl { file: true, ..Default::default() })]);
        let run = vec!["x".to_string(), "{out.los}".to_string()];
        let err = check_placeholders(&run, &outputs).unwrap_err();
        assert!(err.contains("run[1] = `{out.los}`: `{out.los}` names no declared output; outputs are: loss"), "{err}");
    }
}
