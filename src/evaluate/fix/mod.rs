//! `kubelet-sentinel fix`: from the failing controls to the changes that make them pass,
//! proven before anything is written.
//!
//! 1. **Targets**: the failing controls, and those `unknown` because a setting is unset
//!    (every setting of its recipe has its default), limited to `--controls`.
//! 2. **Recipes** ([`recipes`]): each target's settings and values (from the policy), a
//!    flag to remove, files to `chmod`/`chown`, or why the fix cannot do it.
//! 3. **Preconditions** ([`preconditions`]): a change that can break the node is kept only
//!    when what it needs holds on the node.
//! 4. **Where**: with a usable `--config-dir`, one KubeletConfiguration drop-in carrying
//!    the settings, and the removal of every flag that would still beat it; without one,
//!    the flags set to the passing values; on k3s/RKE2 one `config.yaml.d` file of
//!    `kubelet-arg+` entries. Flag changes are placed at the flag's origin
//!    ([`crate::model::fix::edit_flags`]); one that cannot be placed is not made.
//! 5. **Proof**: the changes are applied in memory to a copy of the snapshot (the drop-in
//!    merged at its walk position, the flags changed, the modes changed) and every control
//!    is evaluated again. A control's change is kept only if the control passes
//!    afterwards and no other control gets worse; otherwise it is dropped, with the
//!    proof's finding, and the rest proven again.
//!
//! Pure: the facts the preconditions need are read by `observe::fix_facts`.

mod build;
mod dropin;
pub mod preconditions;
mod proof;
pub mod recipes;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use self::build::build;
pub use self::build::{describe_change, remove_kubelet_arg};
pub use self::dropin::render_dropin;
use self::preconditions::Precondition;
use self::proof::{prove, without_live};
use self::recipes::{FileCheck, Recipe};
use crate::evaluate::policy::Policy;
use crate::evaluate::{evaluate, summarize, ControlResult, Ctx, Status, Summary};
use crate::model::file::FileKind;
use crate::model::fix::{edit_flags, FileEdit, FlagChange, FlagSources, ModeChange};
use crate::model::flag_origin::{FlagOrigin, OriginHow};
use crate::model::k3s::fix_config_dropin;
use crate::model::kubelet_config::flags::{flag_kind, FlagKind};
use crate::model::kubelet_config::settings::{setting, SettingKind};
use crate::model::kubelet_config::{ConfigInput, Lookup, Source};
use crate::model::snapshot::{FileRole, Kubelet, KubeletFlavour, Snapshot};

/// The drop-in's default file name (`--dropin-name`): after kubeadm's and the cloud
/// images' own drop-ins (`10-`…`50-`), before a user's `99-`.
pub const DEFAULT_DROPIN_NAME: &str = "90-kubelet-sentinel.conf";

/// Mode of every file the fix creates (`install -m 0600`).
pub const NEW_FILE_MODE: u32 = 0o600;

/// What the user asked of the fix.
#[derive(Debug, Clone)]
pub struct FixOptions {
    /// The drop-in's file name under `--config-dir` (`--dropin-name`); on k3s/RKE2 the
    /// `config.yaml.d` file gets the same stem with `.yaml`.
    pub dropin_name: String,
    /// Only these controls (`--controls`); `None`: every control.
    pub controls: Option<Vec<String>>,
}

impl Default for FixOptions {
    fn default() -> Self {
        FixOptions {
            dropin_name: DEFAULT_DROPIN_NAME.to_string(),
            controls: None,
        }
    }
}

/// What the node showed beyond the snapshot, for the preconditions and the edits
/// (`observe::fix_facts`).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// `(path under /proc/sys, value or why unreadable)` for each of
    /// [`crate::model::fix::KERNEL_TUNABLES`].
    pub sysctls: Vec<(String, Result<String, String>)>,
    /// The host's name (`/proc/sys/kernel/hostname`, else `/etc/hostname`).
    pub hostname: Option<Result<String, String>>,
    /// Where the kubelet's flags come from.
    pub flag_sources: FlagSources,
    /// The current text of each file the fix would create ([`target_paths`]):
    /// `Ok(None)` when absent, `Err` when it exists but cannot be read.
    pub existing: BTreeMap<String, Result<Option<String>, String>>,
}

/// The kubelet the plan is for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KubeletInfo {
    /// Its process id.
    pub pid: i32,
    /// `--config`, when set.
    pub config_file: Option<String>,
    /// `--config-dir`, when set.
    pub config_dir: Option<String>,
    /// What set the node up, as far as its files tell: `kubeadm`, `eks-al2`,
    /// `eks-al2023`, `gke`, `aks`, `microk8s`, `k3s`, `rke2` or `unknown`.
    pub distribution: String,
}

/// The KubeletConfiguration drop-in the fix writes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DropinPlan {
    /// Its host path under `--config-dir`.
    pub path: String,
    /// Its settings (the document without `apiVersion`/`kind`).
    pub settings: Value,
    /// Its complete text.
    pub text: String,
}

/// A flag change, where it comes from, and what it is for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedFlag {
    /// The change.
    pub change: FlagChange,
    /// Where the flag comes from on the node (the first occurrence), when known.
    pub origin: Option<FlagOrigin>,
    /// The controls it is for.
    pub controls: Vec<String>,
}

/// A control the plan makes pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ControlFix {
    /// The control's id.
    pub id: String,
    /// Its status now.
    pub before: Status,
    /// Its status after the fix, as the proof found it (always `pass`).
    pub after: Status,
    /// What changes it: `dropin`, `flag`, `chmod`, `chown`, `k3s-config`.
    pub by: Vec<&'static str>,
    /// The kubelet must restart for it (configuration and flag changes).
    pub restart: bool,
}

/// A failing or unknown control the fix does not make pass, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cannot {
    /// The control's id.
    pub id: String,
    /// Its status now.
    pub status: Status,
    /// Why the fix does not make it pass (no recipe, a precondition, the proof's finding).
    pub why: String,
}

/// The whole plan: `fix.json` and `--format json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plan {
    /// The node's name.
    pub node: String,
    /// The kubelet, when one was found.
    pub kubelet: Option<KubeletInfo>,
    /// The drop-in, when one is written.
    pub dropin: Option<DropinPlan>,
    /// The flag changes (placed in `files`).
    pub flag_changes: Vec<PlannedFlag>,
    /// Every file created or changed (text not serialised).
    pub files: Vec<FileEdit>,
    /// `chmod`/`chown` changes.
    pub modes: Vec<ModeChange>,
    /// The controls the plan makes pass.
    pub controls: Vec<ControlFix>,
    /// The failing/unknown controls it does not.
    pub cannot: Vec<Cannot>,
    /// The preconditions checked, held or not.
    pub preconditions: Vec<Precondition>,
    /// Status counts now.
    pub before: Summary,
    /// Status counts after the fix: the proof's status for the controls it fixes, the
    /// current status for every other.
    pub after: Summary,
    /// The commands that make the kubelet use the changes (`systemctl daemon-reload`,
    /// the restart), in order.
    pub then: Vec<String>,
    /// Why there is no usable kubelet (exit status 3), when there is none.
    #[serde(skip)]
    pub no_kubelet: Option<String>,
}

impl Plan {
    /// The exit status of `fix` (docs/fix.md): 3 no usable kubelet, 1 some
    /// failing/unknown control is not fixed, 0 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.no_kubelet.is_some() {
            3
        } else if !self.cannot.is_empty() {
            1
        } else {
            0
        }
    }

    /// Whether the plan changes anything.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.modes.is_empty()
    }
}

/// The host paths of the files the fix would create (the drop-in, or the k3s
/// `config.yaml.d` file), whose current text [`Facts::existing`] must hold.
pub fn target_paths(snapshot: &Snapshot, opts: &FixOptions) -> Vec<String> {
    let Some(k) = snapshot.kubelet.as_ref() else {
        return Vec::new();
    };
    match route(k, opts) {
        Route::K3s(p) => {
            // The k3s/rke2 units that hold a `--kubelet-arg`, in case one must go.
            let mut out = vec![p];
            for o in k.k3s.iter().flat_map(|x| &x.origins) {
                if o.how == OriginHow::K3sCommandLine && !out.contains(&o.file) {
                    out.push(o.file.clone());
                }
            }
            out
        }
        Route::Dropin(p) => vec![p],
        Route::Flags => Vec::new(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Route {
    /// k3s/RKE2: the `config.yaml.d` file at this path.
    K3s(String),
    /// A drop-in at this path.
    Dropin(String),
    /// Flags only.
    Flags,
}

fn route(k: &Kubelet, opts: &FixOptions) -> Route {
    if let Some(k3s) = &k.k3s {
        let stem = opts
            .dropin_name
            .strip_suffix(".conf")
            .unwrap_or(&opts.dropin_name);
        return Route::K3s(format!("{}.d/{stem}.yaml", k3s.config_file));
    }
    match (&k.config.config_dir, &k.config.dropin_note) {
        (Some(dir), None) => Route::Dropin(format!(
            "{}/{}",
            dir.trim_end_matches('/'),
            opts.dropin_name
        )),
        _ => Route::Flags,
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Settings(Vec<(&'static str, Value)>),
    RemoveFlag(&'static str),
    Modes(Vec<ModeChange>),
}

#[derive(Debug, Clone)]
struct Candidate {
    id: String,
    before: Status,
    kind: Kind,
}

/// What the candidates come to, before the proof.
#[derive(Debug, Clone, Default)]
struct Built {
    dropin: Option<DropinPlan>,
    /// Controls per drop-in leaf path.
    dropin_controls: Vec<String>,
    k3s_args: Vec<(String, Vec<String>)>,
    flag_changes: Vec<(FlagChange, Vec<String>)>,
    edits: Vec<FileEdit>,
    modes: Vec<ModeChange>,
    by: BTreeMap<String, BTreeSet<&'static str>>,
    /// Controls whose change cannot be made, and why.
    unplaced: Vec<(String, String)>,
    /// k3s/RKE2: kubelet flags whose `--kubelet-arg` is removed from the command line.
    k3s_cli_removed: Vec<String>,
}

/// Plan the fix for `snapshot` judged as `results` (the same evaluation `check` shows).
pub fn plan(
    snapshot: &Snapshot,
    results: &[ControlResult],
    policy: &Policy,
    facts: &Facts,
    opts: &FixOptions,
) -> Plan {
    let before = summarize(results);
    // The selected controls that fail or are unknown.
    let open: Vec<&ControlResult> = results
        .iter()
        .filter(|r| {
            opts.controls
                .as_ref()
                .is_none_or(|c| c.iter().any(|i| i == r.id))
        })
        .filter(|r| matches!(r.status, Status::Fail | Status::Unknown))
        .collect();
    let mut out = Plan {
        node: snapshot.node.clone(),
        kubelet: snapshot.kubelet.as_ref().map(|k| KubeletInfo {
            pid: k.pid,
            config_file: k.config.config_file.clone(),
            config_dir: k.config.config_dir.clone(),
            distribution: distribution(k, &facts.flag_sources),
        }),
        dropin: None,
        flag_changes: Vec::new(),
        files: Vec::new(),
        modes: Vec::new(),
        controls: Vec::new(),
        cannot: Vec::new(),
        preconditions: Vec::new(),
        before,
        after: before,
        then: Vec::new(),
        no_kubelet: snapshot.no_kubelet_reason(),
    };
    let Some(kubelet) = snapshot.kubelet.as_ref() else {
        out.cannot = open
            .iter()
            .map(|r| Cannot {
                id: r.id.to_string(),
                status: r.status,
                why: format!(
                    "no usable kubelet: {}",
                    out.no_kubelet.clone().unwrap_or_default()
                ),
            })
            .collect();
        return out;
    };
    let ctx = Ctx { snapshot, policy };
    let route = route(kubelet, opts);

    // What the files and flags alone say (the proof's baseline: a restart gathers the
    // live evidence again).
    let baseline = evaluate(&without_live(snapshot), policy);
    let status_of =
        |rs: &[ControlResult], id: &str| rs.iter().find(|r| r.id == id).map(|r| r.status);

    let external = external_fixes(snapshot, policy, results);

    // 1–3: targets, recipes, preconditions.
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut cannot: BTreeMap<String, Cannot> = BTreeMap::new();
    let open_ids: Vec<String> = open.iter().map(|r| r.id.to_string()).collect();
    for r in &open {
        let theirs: Vec<&Result<ModeChange, String>> = external
            .iter()
            .filter(|(id, _)| id == r.id)
            .map(|(_, f)| f)
            .collect();
        let kind = if theirs.is_empty() {
            None
        } else if let Some(Err(why)) = theirs.iter().find(|f| f.is_err()) {
            Some(Err(why.clone()))
        } else {
            Some(Ok(Kind::Modes(
                theirs
                    .iter()
                    .filter_map(|f| f.as_ref().ok().cloned())
                    .collect(),
            )))
        };
        match kind.unwrap_or_else(|| {
            candidate_for(
                r,
                &ctx,
                kubelet,
                &route,
                facts,
                status_of(&baseline, r.id) == Some(Status::Pass),
                &open_ids,
                &mut out.preconditions,
            )
        }) {
            Ok(kind) => candidates.push(Candidate {
                id: r.id.to_string(),
                before: r.status,
                kind,
            }),
            Err(why) => {
                cannot.insert(
                    r.id.to_string(),
                    Cannot {
                        id: r.id.to_string(),
                        status: r.status,
                        why,
                    },
                );
            }
        }
    }

    // 4–5: build, place, prove; drop what fails and prove the rest again.
    let built = prove_until_stable(
        snapshot,
        kubelet,
        &route,
        facts,
        opts,
        policy,
        &baseline,
        &mut candidates,
        &mut cannot,
    );

    // The plan as proven.
    let origin_of = |flag: &str| {
        facts
            .flag_sources
            .origins
            .iter()
            .find(|o| o.flag == flag)
            .cloned()
            .or_else(|| {
                kubelet
                    .k3s
                    .as_ref()
                    .and_then(|k| k.origins.iter().find(|o| o.flag == flag).cloned())
            })
    };
    out.flag_changes = built
        .flag_changes
        .iter()
        .map(|(change, controls)| PlannedFlag {
            change: change.clone(),
            origin: origin_of(change.flag()),
            controls: controls.clone(),
        })
        .collect();
    out.dropin = built.dropin.clone();
    out.files = built.edits.clone();
    out.modes = built.modes.clone();
    let restart_kinds = ["dropin", "flag", "k3s-config"];
    for r in results {
        if let Some(c) = candidates.iter().find(|c| c.id == r.id) {
            let by: Vec<&'static str> = built
                .by
                .get(&c.id)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            out.controls.push(ControlFix {
                id: c.id.clone(),
                before: c.before,
                after: Status::Pass,
                restart: by.iter().any(|b| restart_kinds.contains(b)),
                by,
            });
        } else if let Some(c) = cannot.remove(r.id) {
            out.cannot.push(c);
        }
    }
    let after: Vec<ControlResult> = results
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if out.controls.iter().any(|c| c.id == r.id) {
                r.status = Status::Pass;
            }
            r
        })
        .collect();
    out.after = summarize(&after);
    out.then = then(kubelet, &out);
    out
}

/// Build, place and prove the candidates; drop every candidate whose control the proof
/// does not see pass, or whose change makes another control worse (each with the
/// finding, into `cannot`), and prove the rest again, until what is left holds.
#[allow(clippy::too_many_arguments)]
fn prove_until_stable(
    snapshot: &Snapshot,
    kubelet: &Kubelet,
    route: &Route,
    facts: &Facts,
    opts: &FixOptions,
    policy: &Policy,
    baseline: &[ControlResult],
    candidates: &mut Vec<Candidate>,
    cannot: &mut BTreeMap<String, Cannot>,
) -> Built {
    let status_of =
        |rs: &[ControlResult], id: &str| rs.iter().find(|r| r.id == id).map(|r| r.status);
    let mut built;
    loop {
        built = build(kubelet, candidates, route, facts, snapshot, opts);
        let unplaced: Vec<&String> = built.unplaced.iter().map(|(id, _)| id).collect();
        if !unplaced.is_empty() && !candidates.iter().any(|c| unplaced.contains(&&c.id)) {
            // Cannot happen (every unplaced id is a candidate's); never loop on it.
            for c in std::mem::take(candidates) {
                cannot.insert(
                    c.id.clone(),
                    Cannot {
                        id: c.id,
                        status: c.before,
                        why: "internal: a change could not be placed".to_string(),
                    },
                );
            }
            return Built::default();
        }
        if !built.unplaced.is_empty() {
            for (id, why) in std::mem::take(&mut built.unplaced) {
                if let Some(c) = take(candidates, &id) {
                    cannot.insert(
                        id.clone(),
                        Cannot {
                            id,
                            status: c.before,
                            why,
                        },
                    );
                }
            }
            continue;
        }
        let proven = prove(snapshot, &built, route, opts, policy);
        let still: Vec<(String, String)> = candidates
            .iter()
            .filter_map(|c| {
                let after = proven.iter().find(|r| r.id == c.id)?;
                (after.status != Status::Pass).then(|| {
                    (
                        c.id.clone(),
                        format!(
                            "the proof applied the change in memory and the control is still {}: {}{}",
                            after.status.as_str(),
                            if after.observed.is_empty() {
                                String::new()
                            } else {
                                format!("{} ", after.observed)
                            },
                            format_args!("({})", after.reason)
                        ),
                    )
                })
            })
            .collect();
        if !still.is_empty() {
            for (id, why) in still {
                if let Some(c) = take(candidates, &id) {
                    cannot.insert(
                        id.clone(),
                        Cannot {
                            id,
                            status: c.before,
                            why,
                        },
                    );
                }
            }
            continue;
        }
        let worse: Vec<&ControlResult> = proven
            .iter()
            .filter(|a| !candidates.iter().any(|c| c.id == a.id))
            .filter(|a| status_of(baseline, a.id).is_some_and(|b| rank(a.status) < rank(b)))
            .collect();
        if worse.is_empty() {
            break;
        }
        // Find the change that makes them worse: the first candidate without which none is.
        let culprit = candidates.iter().position(|c| {
            let rest: Vec<Candidate> = candidates
                .iter()
                .filter(|o| o.id != c.id)
                .cloned()
                .collect();
            let b = build(kubelet, &rest, route, facts, snapshot, opts);
            let p = prove(snapshot, &b, route, opts, policy);
            worse
                .iter()
                .all(|w| status_of(&p, w.id) == status_of(baseline, w.id))
        });
        let names: Vec<String> = worse
            .iter()
            .map(|w| {
                format!(
                    "{} would go from {} to {} ({})",
                    w.id,
                    status_of(baseline, w.id).map_or("?", |s| s.as_str()),
                    w.status.as_str(),
                    w.reason
                )
            })
            .collect();
        let why = format!(
            "the proof applied the change in memory and another control got worse: {}",
            names.join("; ")
        );
        let dropped: Vec<Candidate> = match culprit {
            Some(i) => vec![candidates.remove(i)],
            None => std::mem::take(candidates),
        };
        for c in dropped {
            cannot.insert(
                c.id.clone(),
                Cannot {
                    id: c.id,
                    status: c.before,
                    why: why.clone(),
                },
            );
        }
    }

    built
}

/// How one failing or unknown control would be fixed, or why it is not.
#[allow(clippy::too_many_arguments)]
fn candidate_for(
    r: &ControlResult,
    ctx: &Ctx,
    kubelet: &Kubelet,
    route: &Route,
    facts: &Facts,
    baseline_passes: bool,
    open_ids: &[String],
    checked: &mut Vec<Precondition>,
) -> Result<Kind, String> {
    let Some(recipe) = recipes::recipe(r.id, ctx) else {
        return Err(format!(
            "no fix is known for this control: {}",
            r.remediation
        ));
    };
    match recipe {
        Recipe::Cannot(why) => Err(why),
        Recipe::Settings(kv) => {
            if baseline_passes {
                return Err(format!(
                    "the kubelet's files and flags already pass; the running kubelet does not ({}): restart the kubelet, or find what else answers",
                    r.reason
                ));
            }
            if r.status == Status::Unknown && !all_unset(ctx, &kv) {
                return Err(format!(
                    "unknown, and not because a setting is unset: {}",
                    r.reason
                ));
            }
            let mut blocked = None;
            for (key, value) in &kv {
                if let Some(p) = preconditions::for_setting(r.id, key, value, ctx, facts, open_ids)
                {
                    if !p.holds {
                        blocked = Some(format!(
                            "precondition does not hold: {}; do first: {}",
                            p.checked, p.do_first
                        ));
                    }
                    checked.push(p);
                }
            }
            if let Some(why) = blocked {
                return Err(why);
            }
            Ok(Kind::Settings(kv))
        }
        Recipe::RemoveFlag(flag) => {
            if let Some(p) = preconditions::for_flag_removal(r.id, flag, ctx, facts) {
                let holds = p.holds;
                let why = format!(
                    "precondition does not hold: {}; do first: {}",
                    p.checked, p.do_first
                );
                checked.push(p);
                if !holds {
                    return Err(why);
                }
            }
            if matches!(route, Route::K3s(_)) {
                return Err(format!(
                    "--{flag} is set by k3s/RKE2 itself and cannot be removed with kubelet-arg"
                ));
            }
            Ok(Kind::RemoveFlag(flag))
        }
        Recipe::Files(roles, check) => {
            let changes = mode_changes(kubelet, roles, check, ctx.policy, r.id);
            if changes.is_empty() {
                return Err(format!(
                    "no file with readable metadata offends, so no chmod/chown can be named: {}",
                    r.reason
                ));
            }
            Ok(Kind::Modes(changes))
        }
    }
}

/// Fixes other families plan for their own controls (`control id`, a `chmod`/`chown`, or
/// why not): kube-proxy's files (H4, branch i17-proxy). Until that branch is merged there
/// are none; merged, this is one line:
/// `crate::evaluate::kube_proxy::fixes(snapshot, policy, results).into_iter().map(..)`
/// (`ProxyFix::Mode(m)` → `(id, Ok(m))` for each of `m.controls`, `ProxyFix::Cannot
/// {control, why}` → `(control, Err(why))`).
fn external_fixes(
    snapshot: &Snapshot,
    policy: &Policy,
    results: &[ControlResult],
) -> Vec<(String, Result<ModeChange, String>)> {
    use crate::evaluate::kube_proxy::{fixes, ProxyFix};
    fixes(snapshot, policy, results)
        .into_iter()
        .flat_map(|f| match f {
            ProxyFix::Mode(m) => m
                .controls
                .clone()
                .into_iter()
                .map(|id| (id, Ok(m.clone())))
                .collect::<Vec<_>>(),
            ProxyFix::Cannot { control, why } => vec![(control.to_string(), Err(why))],
        })
        .collect()
}

/// Every setting of a recipe is unset (its value is the default).
fn all_unset(ctx: &Ctx, kv: &[(&'static str, Value)]) -> bool {
    kv.iter().all(|(key, _)| {
        matches!(ctx.setting(key), Lookup::Known(s) if matches!(s.source, Source::Default { .. }))
    })
}

fn take(candidates: &mut Vec<Candidate>, id: &str) -> Option<Candidate> {
    let i = candidates.iter().position(|c| c.id == id)?;
    Some(candidates.remove(i))
}

/// Pass and not-applicable are as good as each other; unknown is worse; fail worst.
fn rank(s: Status) -> u8 {
    match s {
        Status::Pass | Status::NotApplicable => 2,
        Status::Unknown => 1,
        Status::Fail => 0,
    }
}

/// The `chmod`/`chown` that make the offending files of `roles` comply.
fn mode_changes(
    k: &Kubelet,
    roles: &[FileRole],
    check: FileCheck,
    policy: &Policy,
    id: &str,
) -> Vec<ModeChange> {
    let mut out: Vec<ModeChange> = Vec::new();
    for f in k.files.iter().filter(|f| roles.contains(&f.role)) {
        let Ok(m) = &f.meta else { continue };
        // The file itself (symlinks resolved inside the host root): `chmod` and `chown`
        // follow a symlink anyway, and the resolved path says which file they change.
        let path = &m.resolved;
        if m.kind != FileKind::File || out.iter().any(|c| c.path == *path) {
            continue;
        }
        match check {
            FileCheck::Mode(limit) => {
                let max = policy.mode_limit(limit);
                let want = m.mode & max & 0o777;
                if want != m.mode {
                    out.push(ModeChange {
                        path: path.clone(),
                        mode: Some(want),
                        owner: None,
                        controls: vec![id.to_string()],
                    });
                }
            }
            FileCheck::Owner => {
                if m.uid != 0 || m.gid != 0 {
                    out.push(ModeChange {
                        path: path.clone(),
                        mode: None,
                        owner: Some((0, 0)),
                        controls: vec![id.to_string()],
                    });
                }
            }
        }
    }
    out
}

/// What set the node up, as far as its files tell.
fn distribution(k: &Kubelet, sources: &FlagSources) -> String {
    if let Some(x) = &k.k3s {
        return x.product.as_str().to_string();
    }
    if k.flavour == KubeletFlavour::Kubelite {
        return "microk8s".to_string();
    }
    let paths: Vec<&str> = k
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(sources.files.iter().map(String::as_str))
        .chain(k.config.config_file.as_deref())
        .collect();
    let has = |needle: &str| paths.iter().any(|p| p.ends_with(needle));
    let name = if has("/10-kubeadm.conf") || has("/kubeadm-flags.env") {
        "kubeadm"
    } else if has("/etc/kubernetes/kubelet/kubelet-config.json") {
        "eks-al2"
    } else if has("/etc/kubernetes/kubelet/config.json") {
        "eks-al2023"
    } else if has("/home/kubernetes/kubelet-config.yaml") {
        "gke"
    } else if has("/etc/default/kubeletconfig.json") {
        "aks"
    } else {
        "unknown"
    };
    name.to_string()
}

/// The commands that make the kubelet use the plan: a daemon reload when a unit file
/// changed, then the restart.
fn then(k: &Kubelet, plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    if needs_reload(plan) {
        out.push("systemctl daemon-reload".to_string());
    }
    if plan.controls.iter().any(|c| c.restart) {
        out.push(restart_command(k));
    }
    out
}

/// Whether a file the plan changes is a systemd unit (or says it needs a reload).
pub fn needs_reload(plan: &Plan) -> bool {
    plan.files
        .iter()
        .any(|f| is_unit_file(&f.path) || f.then.iter().any(|t| t == "systemctl daemon-reload"))
}

/// A systemd unit file or unit drop-in.
pub fn is_unit_file(path: &str) -> bool {
    path.contains("/systemd/") && (path.ends_with(".service") || path.contains(".service.d/"))
}

/// How to restart the kubelet on this node.
pub fn restart_command(k: &Kubelet) -> String {
    if k.flavour == KubeletFlavour::Kubelite {
        return "snap restart microk8s.daemon-kubelite".to_string();
    }
    match (&k.unit, &k.k3s) {
        (Some(u), _) => format!("systemctl restart {u}"),
        (None, Some(x)) => format!("systemctl restart {}", x.product.as_str()),
        (None, None) => "systemctl restart kubelet".to_string(),
    }
}
