//! Manifests: the objects in the files `apply -f` and `delete -f` are given.
//!
//! A file holds one or more YAML documents separated by `---` lines, or JSON;
//! a `kind: List` document stands for its items. A directory stands for its
//! `.yaml`, `.yml` and `.json` files in name order; `-` is standard input.
//! Each document is parsed on its own, so one bad document does not hide the
//! others, and every error names the file and the document's number.
//!
//! # Caveats
//! Directories are not walked recursively (kubectl's `-R`).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One object read from a manifest, or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Document {
    /// The file it came from (`-` for standard input).
    pub source: String,
    /// Its number in the file, from 1; `None` when the whole file failed.
    pub index: Option<usize>,
    /// The object, or what is wrong with it.
    pub object: Result<Value, String>,
}

impl Document {
    /// Where the document is, for messages: `"web.yaml" (document 2)`.
    pub fn location(&self) -> DocumentLocation<'_> {
        DocumentLocation(self)
    }
}

/// Displays where a [`Document`] came from.
pub(crate) struct DocumentLocation<'a>(&'a Document);

impl fmt::Display for DocumentLocation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.index {
            Some(index) => write!(f, "{:?} (document {index})", self.0.source),
            None => write!(f, "{:?}", self.0.source),
        }
    }
}

/// Every document of every path, in order: files as given, directories'
/// manifest files in name order, `-` as standard input.
pub(crate) fn read_all(paths: &[PathBuf]) -> Vec<Document> {
    let mut documents = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            let read = std::io::stdin().read_to_string(&mut text);
            documents.extend(file_documents("-", read.map(|_| text), false));
        } else if path.is_dir() {
            match manifest_files(path) {
                Ok(files) => {
                    for file in files {
                        documents.extend(read_file(&file));
                    }
                }
                Err(err) => documents.push(Document {
                    source: path.display().to_string(),
                    index: None,
                    object: Err(format!("cannot read the directory: {err}")),
                }),
            }
        } else {
            documents.extend(read_file(path));
        }
    }
    documents
}

fn read_file(path: &Path) -> Vec<Document> {
    let is_json = path.extension().is_some_and(|e| e == "json");
    file_documents(
        &path.display().to_string(),
        std::fs::read_to_string(path),
        is_json,
    )
}

/// The `.yaml`, `.yml` and `.json` files directly in `dir`, in name order.
fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let manifest = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn file_documents(source: &str, text: std::io::Result<String>, is_json: bool) -> Vec<Document> {
    let text = match text {
        Ok(text) => text,
        Err(err) => {
            return vec![Document {
                source: source.to_string(),
                index: None,
                object: Err(format!("cannot read the file: {err}")),
            }]
        }
    };
    let mut documents = Vec::new();
    let parsed: Vec<Result<Value, String>> = if is_json {
        vec![serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))]
    } else {
        split_yaml(&text).into_iter().map(parse_yaml).collect()
    };
    for (i, object) in parsed.into_iter().enumerate() {
        let index = Some(i + 1);
        match object {
            Ok(Value::Null) => {}
            Ok(object) if object.get("kind").and_then(Value::as_str) == Some("List") => {
                for item in object
                    .get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    documents.push(Document {
                        source: source.to_string(),
                        index,
                        object: Ok(item.clone()),
                    });
                }
            }
            object => documents.push(Document {
                source: source.to_string(),
                index,
                object,
            }),
        }
    }
    documents
}

/// The documents of a multi-document YAML text, split on `---` lines (a
/// leading `---` opens the first document rather than ending an empty one).
pub(crate) fn split_yaml(text: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        let separator = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        if separator {
            documents.push(&text[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    documents.push(&text[start..]);
    // The text before a leading separator is not a document of its own.
    if documents.len() > 1 && is_blank(documents[0]) {
        documents.remove(0);
    }
    documents
}

fn is_blank(document: &str) -> bool {
    document
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

/// One YAML document as JSON; blank or comment-only documents are `Null`.
fn parse_yaml(document: &str) -> Result<Value, String> {
    if is_blank(document) {
        return Ok(Value::Null);
    }
    let value: serde_yaml::Value =
        serde_yaml::from_str(document).map_err(|e| format!("invalid YAML: {e}"))?;
    let json =
        serde_json::to_value(value).map_err(|e| format!("not representable as JSON: {e}"))?;
    if json.is_object() {
        Ok(json)
    } else {
        Err("the document is not an object".into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn yaml_splits_on_separator_lines_only() {
        let text = "---\na: 1\n---\nb: '---'\n--- # second\nc: 3\n";
        assert_eq!(split_yaml(text), vec!["a: 1\n", "b: '---'\n", "c: 3\n"]);
        assert_eq!(split_yaml("a: 1"), vec!["a: 1"]);
        assert_eq!(split_yaml("a: 1\n---\n"), vec!["a: 1\n", ""]);
    }

    #[test]
    fn documents_are_numbered_and_a_bad_one_does_not_hide_the_rest() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n# only a comment\n---\n\
                    kind: [unclosed\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n";
        let docs = file_documents("m.yaml", Ok(text.into()), false);
        assert_eq!(docs.len(), 3, "{docs:?}");
        assert_eq!(docs[0].index, Some(1));
        assert_eq!(docs[0].object.as_ref().unwrap()["kind"], "Pod");
        assert_eq!(docs[1].index, Some(3));
        let err = docs[1].object.as_ref().unwrap_err();
        assert!(err.starts_with("invalid YAML"), "{err}");
        assert_eq!(docs[1].location().to_string(), "\"m.yaml\" (document 3)");
        assert_eq!(docs[2].index, Some(4));
        assert_eq!(docs[2].object.as_ref().unwrap()["metadata"]["name"], "b");
    }

    #[test]
    fn lists_stand_for_their_items_and_json_files_parse_as_json() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}}]});
        let docs = file_documents("l.json", Ok(list.to_string()), true);
        let names: Vec<_> = docs
            .iter()
            .map(|d| d.object.as_ref().unwrap()["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, [json!("a"), json!("b")]);
        let docs = file_documents("bad.json", Ok("{".into()), true);
        assert!(docs[0]
            .object
            .as_ref()
            .unwrap_err()
            .starts_with("invalid JSON"));
    }

    #[test]
    fn a_directory_is_read_in_name_order_skipping_other_files() {
        let dir = std::env::temp_dir().join(format!("skiff-manifests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.yml"), "kind: B\n").unwrap();
        std::fs::write(dir.join("a.json"), "{\"kind\": \"A\"}").unwrap();
        std::fs::write(dir.join("notes.txt"), "kind: ignored\n").unwrap();
        let docs = read_all(std::slice::from_ref(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
        let kinds: Vec<_> = docs
            .iter()
            .map(|d| d.object.as_ref().unwrap()["kind"].clone())
            .collect();
        assert_eq!(kinds, [json!("A"), json!("B")]);
    }
}
