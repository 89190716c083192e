//! Curricula: objectives of Tables 1–4 as phases of task sets, with a deterministic shuffle within each phase.

use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{InstructError, Result};
use crate::row::{BuildOutput, InstructRow, Stats, Task};
use crate::{SALT_CURRICULUM, rng_for};

/// A parsed objective: phases in training order, each a set of tasks mixed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Objective {
    /// Phases; phase `i` (0-based here) becomes `phase = i + 1` in the rows.
    pub phases: Vec<Vec<Task>>,
}

fn component(name: &str) -> Option<&'static [Task]> {
    let n = name.trim().to_ascii_lowercase().replace(['_', ' '], "-");
    Some(match n.as_str() {
        "mt" | "mtinstruct" => &[Task::Mt],
        "align" | "aligninstruct" => &[Task::Align],
        "hint" | "hintinstruct" => &[Task::Hint],
        "revise" | "reviseinstruct" => &[Task::Revise],
        "mono-full" | "monofull" => &[Task::MonoFull],
        "mono-half" | "monohalf" => &[Task::MonoHalf],
        "denoise" => &[Task::DenoiseWord, Task::DenoiseSpan],
        "denoise-word" => &[Task::DenoiseWord],
        "denoise-span" => &[Task::DenoiseSpan],
        "external" | "alpaca" | "replay" => &[Task::External],
        _ => return None,
    })
}

impl Objective {
    /// Every task the objective uses, in first-use order: the task tables a curriculum stage depends on.
    pub fn tasks(&self) -> Vec<Task> {
        let mut out: Vec<Task> = Vec::new();
        for t in self.phases.iter().flatten() {
            if !out.contains(t) {
                out.push(*t);
            }
        }
        out
    }
}

impl FromStr for Objective {
    type Err = InstructError;

    /// Parses `MT`, `MT+Align`, `Align->MT` (or `Align→MT`), `MT+Align->MT`, and any `+`-combination of `MT`,
    /// `Align`, `Hint`, `Revise`, `Mono-full`, `Mono-half`, `Denoise` (= `Denoise-word` + `Denoise-span`),
    /// `External` per phase; names are case-insensitive and may carry the `Instruct` suffix.
    fn from_str(s: &str) -> Result<Self> {
        let err = |m: String| InstructError::Objective {
            objective: s.to_string(),
            message: m,
        };
        let normalized = s.replace('→', "->");
        let mut phases = Vec::new();
        for (pi, phase) in normalized.split("->").enumerate() {
            let mut tasks: Vec<Task> = Vec::new();
            for comp in phase.split('+') {
                if comp.trim().is_empty() {
                    return Err(err(format!("phase {}: empty component", pi + 1)));
                }
                let ts = component(comp).ok_or_else(|| {
                    err(format!(
                        "phase {}: unknown component `{}` (expected MT, Align, Hint, Revise, Mono-full, Mono-half, \
                         Denoise, Denoise-word, Denoise-span, External)",
                        pi + 1,
                        comp.trim()
                    ))
                })?;
                for t in ts {
                    if !tasks.contains(t) {
                        tasks.push(*t);
                    }
                }
            }
            phases.push(tasks);
        }
        Ok(Objective { phases })
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|p| p.iter().map(|t| t.as_str()).collect::<Vec<_>>().join("+"))
            .collect();
        write!(f, "{}", phases.join("->"))
    }
}

fn default_true() -> bool {
    true
}

/// Parameters of `instruct.curriculum`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CurriculumParams {
    /// The objective, e.g. `MT+Align->MT` (default `MT`).
    pub objective: String,
    /// Shuffle within each phase (default true).
    #[serde(default = "default_true")]
    pub shuffle: bool,
    /// Seed (default 0); each phase uses its own stream.
    pub seed: u64,
    /// Accept a component with no rows in the input (default false: an error, as it is almost always a wiring
    /// mistake).
    pub allow_empty: bool,
}

impl Default for CurriculumParams {
    fn default() -> Self {
        CurriculumParams {
            objective: "MT".into(),
            shuffle: true,
            seed: 0,
            allow_empty: false,
        }
    }
}

/// The rows of one curriculum phase, as indices into the input rows, in training order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseOrder {
    /// The phase number (1-based), written into the rows' `phase` column.
    pub phase: u32,
    /// Indices of the input rows the phase takes, in the order the trainer reads them.
    pub rows: Vec<u32>,
}

/// Plans the training set of an objective over the tasks of its input rows (`tasks[i]` is the task of input row
/// `i`): phase by phase, the indices of the rows of the phase's tasks in input order, shuffled within the phase.
///
/// Only the row indices are planned, so a caller holding the rows in columns (a table) gathers them without ever
/// holding a row as a struct: the training set of the paper's 24 languages is tens of millions of rows. The
/// shuffle permutes the index list exactly as it would permute the rows themselves (Fisher–Yates draws depend on
/// the length alone), so [`build_curriculum`] and a table gather give the same order.
pub fn curriculum_order(tasks: &[Task], params: &CurriculumParams) -> Result<Vec<PhaseOrder>> {
    let objective: Objective = params.objective.parse()?;
    if u32::try_from(tasks.len()).is_err() {
        return Err(InstructError::Objective {
            objective: params.objective.clone(),
            message: format!(
                "{} input rows: a curriculum takes at most {} (split the objective's tables)",
                tasks.len(),
                u32::MAX
            ),
        });
    }
    let mut phases = Vec::with_capacity(objective.phases.len());
    for (pi, phase_tasks) in objective.phases.iter().enumerate() {
        let phase = pi as u32 + 1;
        let mut rows: Vec<u32> = (0u32..)
            .zip(tasks)
            .filter(|(_, t)| phase_tasks.contains(t))
            .map(|(i, _)| i)
            .collect();
        if !params.allow_empty {
            for t in phase_tasks {
                if !rows.iter().any(|&i| tasks[i as usize] == *t) {
                    return Err(InstructError::Objective {
                        objective: params.objective.clone(),
                        message: format!("phase {phase}: no `{}` rows in the input", t.as_str()),
                    });
                }
            }
        }
        if params.shuffle {
            rows.shuffle(&mut rng_for(params.seed, SALT_CURRICULUM, u64::from(phase)));
        }
        phases.push(PhaseOrder { phase, rows });
    }
    Ok(phases)
}

/// Builds the training set of an objective from task rows (of any tasks, in any concatenation order): phase by
/// phase, the rows of the phase's tasks in input order, `phase` set (1-based), shuffled within the phase. Phases
/// come out in order, so a trainer reading the file sequentially follows the curriculum. The order is
/// [`curriculum_order`]'s.
pub fn build_curriculum(rows: &[InstructRow], params: &CurriculumParams) -> Result<BuildOutput> {
    let tasks: Vec<Task> = rows.iter().map(|r| r.task).collect();
    let mut out = Vec::with_capacity(rows.len());
    for PhaseOrder { phase, rows: order } in curriculum_order(&tasks, params)? {
        out.extend(order.iter().map(|&i| InstructRow {
            phase,
            ..rows[i as usize].clone()
        }));
    }
    let mut stats = Stats::default();
    stats.count_rows(&out);
    Ok(BuildOutput { rows: out, stats })
}
