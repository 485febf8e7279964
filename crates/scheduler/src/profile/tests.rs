//! Profiles from YAML: what they enable, and how bad files are refused.

use super::*;
use crate::framework::Framework;

fn build(yaml: &str) -> Result<Vec<Framework>, Error> {
    SchedulerConfiguration::parse(yaml, "sched.yaml")?.build("sched.yaml", 1)
}

fn refusal(yaml: &str) -> (String, String) {
    match build(yaml) {
        Err(Error::InvalidConfig {
            path,
            field,
            message,
        }) => {
            assert_eq!(path, "sched.yaml");
            (field, message)
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("accepted:\n{yaml}"),
    }
}

#[test]
fn an_empty_file_gives_the_default_profile() {
    let frameworks = build("{}").expect("valid");
    assert_eq!(frameworks.len(), 1);
    assert_eq!(frameworks[0].scheduler_name(), DEFAULT_SCHEDULER_NAME);
    let names: Vec<&str> = DEFAULT_PLUGINS.iter().map(|(n, _)| *n).collect();
    assert_eq!(frameworks[0].plugin_names(), names);
}

#[test]
fn multi_point_disables_all_and_enables_one() {
    let frameworks = build(
        "profiles:
- schedulerName: ecs
  plugins:
    multiPoint:
      disabled: [{name: '*'}]
      enabled: [{name: NodeResourcesFit}, {name: EcsPlacement, weight: 5}]
  pluginConfig:
  - name: EcsPlacement
    args:
      placementStrategy: [{type: binpack, field: memory}]
",
    )
    .expect("valid");
    assert_eq!(frameworks[0].scheduler_name(), "ecs");
    assert_eq!(
        frameworks[0].plugin_names(),
        ["NodeResourcesFit", "EcsPlacement"]
    );
}

#[test]
fn score_disabled_switches_off_only_scoring() {
    let frameworks = build(
        "profiles:
- plugins:
    score:
      disabled: [{name: '*'}]
",
    )
    .expect("valid");
    let framework = &frameworks[0];
    assert!(framework.plugins().iter().all(|p| p.as_score().is_none()));
    assert!(framework.plugins().iter().any(|p| p.as_filter().is_some()));
}

#[test]
fn bad_files_name_the_field() {
    for (yaml, field, words) in [
        (
            "profiles:\n- plugins:\n    score:\n      enabled: [{name: NodeAffinity, weight: 0}]\n",
            "profiles[0].plugins.score.enabled[0].weight",
            "[1, 100]",
        ),
        (
            "profiles:\n- plugins:\n    filter:\n      enabled: [{name: NoSuchPlugin}]\n",
            "profiles[0].plugins.filter.enabled[0].name",
            "unknown plugin",
        ),
        (
            "profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args: {scoringStrategy: {type: Sideways}}\n",
            "profiles[0].pluginConfig[0].args",
            "Sideways",
        ),
        (
            "profiles:\n- schedulerName: a\n- schedulerName: a\n",
            "profiles[1].schedulerName",
            "duplicate",
        ),
        ("percentageOfNodesToScore: 101\n", "percentageOfNodesToScore", "[0, 100]"),
    ] {
        let (got_field, message) = refusal(yaml);
        assert_eq!(got_field, field, "{yaml}");
        assert!(message.contains(words), "{message}");
    }
}

#[test]
fn unparsable_files_name_the_place() {
    let (field, message) = refusal("profiles:\n- schedulerName: a\n  plugin: {}\n");
    assert!(field.starts_with("line 3"), "{field}");
    assert!(message.contains("plugin"), "{message}");
}
