//! Prompt templates: minijinja files named `<name>.v<N>.jinja` (the highest `N` of a name is
//! used), loaded and validated once at start: each must compile and render a sample context
//! with strict undefined-variable checking, and `system` must exist. A broken template stops the
//! brain from starting instead of failing the first chat.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use minijinja::{Environment, Template, UndefinedBehavior, Value, context};

/// Built into the binary; `--prompts-dir` replaces the whole set.
const BUILT_IN: [(&str, &str); 1] = [(
    "system.v1.jinja",
    include_str!("../prompts/system.v1.jinja"),
)];

/// Variables of the system template.
#[derive(Debug, Clone, Default)]
pub struct SystemVars {
    pub instructions: Option<String>,
    pub context: Vec<String>,
    pub omitted_messages: usize,
    pub tools: Vec<String>,
    pub json_mode: bool,
}

impl SystemVars {
    /// Renders a system template with these variables and the `extra` ones, trimmed.
    pub fn render(
        &self,
        template: &Template<'_, '_>,
        extra: Value,
    ) -> Result<String, minijinja::Error> {
        let rendered = template.render(context! {
            instructions => self.instructions,
            context => self.context,
            omitted_messages => self.omitted_messages,
            tools => self.tools,
            json_mode => self.json_mode,
            ..extra
        })?;
        Ok(rendered.trim().to_owned())
    }
}

#[derive(Debug)]
pub struct PromptTemplates {
    env: Environment<'static>,
    /// Template name → the version in use.
    versions: BTreeMap<String, u32>,
}

impl PromptTemplates {
    /// Loads the built-in templates, or every `*.v<N>.jinja` in `dir`.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut files: Vec<(String, String)> = Vec::new();
        match dir {
            None => files.extend(
                BUILT_IN
                    .iter()
                    .map(|(n, t)| ((*n).to_owned(), (*t).to_owned())),
            ),
            Some(dir) => {
                let entries = std::fs::read_dir(dir).with_context(|| {
                    format!("cannot read the prompts directory {}", dir.display())
                })?;
                for entry in entries {
                    let path = entry?.path();
                    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                        continue;
                    };
                    if name.ends_with(".jinja") {
                        let text = std::fs::read_to_string(&path)
                            .with_context(|| format!("cannot read {}", path.display()))?;
                        files.push((name.to_owned(), text));
                    }
                }
            }
        }
        let mut chosen: BTreeMap<String, (u32, String)> = BTreeMap::new();
        for (file, text) in files {
            let (name, version) = parse_file_name(&file)
                .with_context(|| format!("prompt file `{file}` is not named <name>.v<N>.jinja"))?;
            if chosen
                .get(&name)
                .is_none_or(|(current, _)| version > *current)
            {
                chosen.insert(name, (version, text));
            }
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut versions = BTreeMap::new();
        for (name, (version, text)) in chosen {
            env.add_template_owned(name.clone(), text)
                .with_context(|| format!("prompt template `{name}` v{version} does not compile"))?;
            versions.insert(name, version);
        }
        let templates = Self { env, versions };
        templates.validate()?;
        Ok(templates)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !self.versions.contains_key("system") {
            bail!("the prompt template `system` is missing");
        }
        let sample = SystemVars {
            instructions: Some("sample instructions".into()),
            context: vec!["sample passage".into()],
            omitted_messages: 2,
            tools: vec!["add".into()],
            json_mode: true,
        };
        for (name, version) in &self.versions {
            self.render(name, &sample).with_context(|| {
                format!("prompt template `{name}` v{version} fails on sample variables")
            })?;
        }
        Ok(())
    }

    pub fn has(&self, name: &str) -> bool {
        self.versions.contains_key(name)
    }

    pub fn versions(&self) -> &BTreeMap<String, u32> {
        &self.versions
    }

    pub fn render(&self, name: &str, vars: &SystemVars) -> Result<String, minijinja::Error> {
        vars.render(&self.env.get_template(name)?, context! {})
    }
}

fn parse_file_name(file: &str) -> Option<(String, u32)> {
    let stem = file.strip_suffix(".jinja")?;
    let (name, version) = stem.rsplit_once(".v")?;
    let version = version.parse().ok()?;
    (!name.is_empty()).then(|| (name.to_owned(), version))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_load_and_render_variables() {
        let templates = PromptTemplates::load(None).unwrap();
        assert_eq!(templates.versions().get("system"), Some(&1));
        let text = templates
            .render(
                "system",
                &SystemVars {
                    instructions: Some("Talk like a pirate".into()),
                    context: vec!["The sky is green.".into()],
                    omitted_messages: 3,
                    tools: vec![],
                    json_mode: false,
                },
            )
            .unwrap();
        assert!(text.contains("Talk like a pirate"), "{text}");
        assert!(text.contains("[1] The sky is green."), "{text}");
        assert!(text.contains("3 earlier messages"), "{text}");
        assert!(!text.contains("tools"), "{text}");
    }

    #[test]
    fn the_highest_version_wins_and_broken_templates_fail_at_load() {
        let dir = std::env::temp_dir().join(format!("edgebrain-prompts-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("system.v1.jinja"), "old").unwrap();
        std::fs::write(dir.join("system.v2.jinja"), "new {{ omitted_messages }}").unwrap();
        let templates = PromptTemplates::load(Some(&dir)).unwrap();
        assert_eq!(
            templates.render("system", &SystemVars::default()).unwrap(),
            "new 0"
        );

        std::fs::write(dir.join("system.v3.jinja"), "{{ no_such_variable }}").unwrap();
        let error = format!("{:#}", PromptTemplates::load(Some(&dir)).unwrap_err());
        assert!(error.contains("v3"), "{error}");
        std::fs::write(dir.join("system.v3.jinja"), "{% if %}").unwrap();
        assert!(PromptTemplates::load(Some(&dir)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
