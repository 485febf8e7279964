//! Scheduler profiles from a YAML file, as the `profiles` part of
//! kube-scheduler's `KubeSchedulerConfiguration` (v1):
//!
//! ```yaml
//! apiVersion: kubescheduler.config.k8s.io/v1
//! kind: KubeSchedulerConfiguration
//! percentageOfNodesToScore: 0          # 0: adaptive (50 - nodes/125, at least 5%)
//! profiles:
//! - schedulerName: default-scheduler   # the default plugins, as kube-scheduler's
//! - schedulerName: ecs-binpack
//!   plugins:
//!     score:
//!       disabled: [{name: "*"}]        # only the ECS strategies rank nodes
//!     multiPoint:
//!       enabled: [{name: EcsPlacement, weight: 1}]
//!   pluginConfig:
//!   - name: EcsPlacement
//!     args:
//!       placementStrategy: [{type: binpack, field: memory}]
//! ```
//!
//! A profile starts from the default plugins; `multiPoint` enables or
//! disables a plugin at every extension point it has, and each extension
//! point's own `enabled`/`disabled` (`preFilter`, `filter`, `postFilter`,
//! `preScore`, `score`, `reserve`, `permit`) narrows that, `"*"` meaning every
//! plugin. A score weight must be in [1, 100]. Every mistake stops the
//! scheduler at start with the file and the field.
//!
//! # Caveats
//! `queueSort`, `preBind` and `bind` accept only `PrioritySort` and
//! `DefaultBinder`; `extenders`, `leaderElection` and client connection
//! settings in the file are not read (leader election is in `Config`).

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;

use crate::framework::{
    FilterPlugin, Framework, PermitPlugin, Plugin, PostFilterPlugin, PreFilterPlugin,
    PreScorePlugin, ReservePlugin, ScorePlugin,
};
use crate::plugins::{self, DEFAULT_PLUGINS};
use crate::Error;

/// The scheduler name pods get when they name none.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// The configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchedulerConfiguration {
    /// `kubescheduler.config.k8s.io/v1`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// `KubeSchedulerConfiguration`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The default for every profile; 0 or absent means adaptive.
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<u32>,
    /// The profiles; none means one default profile.
    #[serde(default)]
    pub profiles: Vec<ProfileConfig>,
}

/// One profile.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileConfig {
    /// The `spec.schedulerName` pods use to pick this profile.
    #[serde(default)]
    pub scheduler_name: Option<String>,
    /// Overrides the file's `percentageOfNodesToScore`.
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<u32>,
    /// Plugins enabled and disabled per extension point.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// Args per plugin.
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

/// `plugins`: one set per extension point.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginsConfig {
    #[serde(default)]
    multi_point: PluginSet,
    #[serde(default)]
    queue_sort: PluginSet,
    #[serde(default)]
    pre_filter: PluginSet,
    #[serde(default)]
    filter: PluginSet,
    #[serde(default)]
    post_filter: PluginSet,
    #[serde(default)]
    pre_score: PluginSet,
    #[serde(default)]
    score: PluginSet,
    #[serde(default)]
    reserve: PluginSet,
    #[serde(default)]
    permit: PluginSet,
    #[serde(default)]
    pre_bind: PluginSet,
    #[serde(default)]
    bind: PluginSet,
}

/// Enabled and disabled plugins of one extension point.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSet {
    #[serde(default)]
    enabled: Vec<PluginRef>,
    #[serde(default)]
    disabled: Vec<PluginRef>,
}

/// A plugin by name, with a score weight.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    name: String,
    #[serde(default)]
    weight: Option<i64>,
}

/// Args for one plugin.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The plugin.
    pub name: String,
    /// Its args, as the plugin reads them.
    #[serde(default)]
    pub args: Option<serde_json::Value>,
}

/// The extension points a profile can switch per plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Point {
    PreFilter,
    Filter,
    PostFilter,
    PreScore,
    Score,
    Reserve,
    Permit,
}

const POINTS: [Point; 7] = [
    Point::PreFilter,
    Point::Filter,
    Point::PostFilter,
    Point::PreScore,
    Point::Score,
    Point::Reserve,
    Point::Permit,
];

/// A plugin with some extension points switched off.
struct Masked {
    inner: Arc<dyn Plugin>,
    off: HashSet<Point>,
}

impl Plugin for Masked {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn events(&self) -> &'static [crate::framework::ClusterEvent] {
        self.inner.events()
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        self.inner
            .as_pre_filter()
            .filter(|_| !self.off.contains(&Point::PreFilter))
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        self.inner
            .as_filter()
            .filter(|_| !self.off.contains(&Point::Filter))
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        self.inner
            .as_post_filter()
            .filter(|_| !self.off.contains(&Point::PostFilter))
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        self.inner
            .as_pre_score()
            .filter(|_| !self.off.contains(&Point::PreScore))
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        self.inner
            .as_score()
            .filter(|_| !self.off.contains(&Point::Score))
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        self.inner
            .as_reserve()
            .filter(|_| !self.off.contains(&Point::Reserve))
    }
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        self.inner
            .as_permit()
            .filter(|_| !self.off.contains(&Point::Permit))
    }
}

/// A plugin being assembled into a profile: its weight and switched-off points.
struct Entry {
    name: String,
    weight: i64,
    off: HashSet<Point>,
}

impl SchedulerConfiguration {
    /// Parses a configuration file's text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<SchedulerConfiguration, Error> {
        serde_yaml::from_str(text).map_err(|e| Error::InvalidConfig {
            path: source.to_string(),
            field: e.location().map_or("(document)".into(), |l| {
                format!("line {} column {}", l.line(), l.column())
            }),
            message: e.to_string(),
        })
    }

    /// Reads and parses a configuration file.
    pub fn read(path: &std::path::Path) -> Result<SchedulerConfiguration, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        SchedulerConfiguration::parse(&text, &path.display().to_string())
    }

    /// Builds one [`Framework`] per profile, checking every name, weight and
    /// args; `source` names the file in errors.
    pub fn build(&self, source: &str, seed: u64) -> Result<Vec<Framework>, Error> {
        let invalid = |field: String, message: String| Error::InvalidConfig {
            path: source.to_string(),
            field,
            message,
        };
        if let Some(p) = self.percentage_of_nodes_to_score.filter(|p| *p > 100) {
            return Err(invalid(
                "percentageOfNodesToScore".into(),
                format!("must be in the range [0, 100], got {p}"),
            ));
        }
        let default_profile = [ProfileConfig::default()];
        let profiles = if self.profiles.is_empty() {
            &default_profile[..]
        } else {
            &self.profiles
        };
        let mut names = HashSet::new();
        let mut frameworks = Vec::new();
        for (i, profile) in profiles.iter().enumerate() {
            let at = format!("profiles[{i}]");
            let name = profile
                .scheduler_name
                .clone()
                .unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.into());
            if !names.insert(name.clone()) {
                return Err(invalid(
                    format!("{at}.schedulerName"),
                    format!("duplicate scheduler name {name:?}"),
                ));
            }
            let percentage = profile
                .percentage_of_nodes_to_score
                .or(self.percentage_of_nodes_to_score);
            if let Some(p) = percentage.filter(|p| *p > 100) {
                return Err(invalid(
                    format!("{at}.percentageOfNodesToScore"),
                    format!("must be in the range [0, 100], got {p}"),
                ));
            }
            let entries = plugin_entries(&profile.plugins)
                .map_err(|(field, message)| invalid(format!("{at}.plugins.{field}"), message))?;
            let mut built = Vec::new();
            for entry in entries {
                let config = profile
                    .plugin_config
                    .iter()
                    .position(|c| c.name == entry.name);
                let args = config.and_then(|c| profile.plugin_config[c].args.as_ref());
                let plugin = plugins::build(&entry.name, args, seed.wrapping_add(i as u64))
                    .map_err(|message| {
                        let field = config.map_or(format!("{at}.plugins"), |c| {
                            format!("{at}.pluginConfig[{c}].args")
                        });
                        invalid(field, message)
                    })?;
                if let Some(plugin) = plugin {
                    let plugin: Arc<dyn Plugin> = if entry.off.is_empty() {
                        plugin
                    } else {
                        Arc::new(Masked {
                            inner: plugin,
                            off: entry.off,
                        })
                    };
                    built.push((plugin, entry.weight));
                }
            }
            for (c, config) in profile.plugin_config.iter().enumerate() {
                if !plugins::known_plugins().contains(&config.name.as_str()) {
                    return Err(invalid(
                        format!("{at}.pluginConfig[{c}].name"),
                        format!("unknown plugin {:?}", config.name),
                    ));
                }
            }
            frameworks.push(Framework::new(
                name,
                built,
                percentage.filter(|p| *p > 0),
                seed.wrapping_add(i as u64),
            ));
        }
        Ok(frameworks)
    }
}

/// The plugins of a profile after its enabled/disabled lists, or the field at fault.
fn plugin_entries(config: &PluginsConfig) -> Result<Vec<Entry>, (String, String)> {
    let mut entries: Vec<Entry> = DEFAULT_PLUGINS
        .iter()
        .map(|(name, weight)| Entry {
            name: name.to_string(),
            weight: *weight,
            off: HashSet::new(),
        })
        .collect();
    let check = |set: &PluginSet, field: &str| -> Result<(), (String, String)> {
        for (kind, list) in [("enabled", &set.enabled), ("disabled", &set.disabled)] {
            for (j, r) in list.iter().enumerate() {
                let known = plugins::known_plugins().contains(&r.name.as_str())
                    || (kind == "disabled" && r.name == "*");
                if !known {
                    return Err((
                        format!("{field}.{kind}[{j}].name"),
                        format!("unknown plugin {:?}", r.name),
                    ));
                }
                if let Some(w) = r.weight.filter(|w| !(1..=100).contains(w)) {
                    return Err((
                        format!("{field}.{kind}[{j}].weight"),
                        format!("must be in the range [1, 100], got {w}"),
                    ));
                }
            }
        }
        Ok(())
    };
    // multiPoint: whole plugins in and out.
    check(&config.multi_point, "multiPoint")?;
    for r in &config.multi_point.disabled {
        entries.retain(|e| r.name != "*" && e.name != r.name);
    }
    for r in &config.multi_point.enabled {
        match entries.iter_mut().find(|e| e.name == r.name) {
            Some(e) => e.weight = r.weight.unwrap_or(e.weight),
            None => entries.push(Entry {
                name: r.name.clone(),
                weight: r.weight.unwrap_or(1),
                off: HashSet::new(),
            }),
        }
    }
    // Each point: switch it off or on per plugin.
    let per_point = [
        (Point::PreFilter, &config.pre_filter, "preFilter"),
        (Point::Filter, &config.filter, "filter"),
        (Point::PostFilter, &config.post_filter, "postFilter"),
        (Point::PreScore, &config.pre_score, "preScore"),
        (Point::Score, &config.score, "score"),
        (Point::Reserve, &config.reserve, "reserve"),
        (Point::Permit, &config.permit, "permit"),
    ];
    for (point, set, field) in per_point {
        check(set, field)?;
        for r in &set.disabled {
            for e in entries
                .iter_mut()
                .filter(|e| r.name == "*" || e.name == r.name)
            {
                e.off.insert(point);
            }
        }
        for r in &set.enabled {
            match entries.iter_mut().find(|e| e.name == r.name) {
                Some(e) => {
                    e.off.remove(&point);
                    e.weight = r.weight.unwrap_or(e.weight);
                }
                None => {
                    let off = POINTS.iter().copied().filter(|p| *p != point).collect();
                    entries.push(Entry {
                        name: r.name.clone(),
                        weight: r.weight.unwrap_or(1),
                        off,
                    });
                }
            }
        }
    }
    for (set, field, allowed) in [
        (&config.queue_sort, "queueSort", plugins::PRIORITY_SORT),
        (&config.pre_bind, "preBind", plugins::DEFAULT_BINDER),
        (&config.bind, "bind", plugins::DEFAULT_BINDER),
    ] {
        if let Some((j, r)) = set
            .enabled
            .iter()
            .enumerate()
            .find(|(_, r)| r.name != allowed)
        {
            return Err((
                format!("{field}.enabled[{j}].name"),
                format!("only {allowed} is supported here, got {:?}", r.name),
            ));
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests;
