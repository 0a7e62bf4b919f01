//! The built-in model: SmolLM2-135M-Instruct (Q4_1, Apache-2.0) shipped inside the installers
//! as a Tauri resource (`builtin/` under the app's resource folder; see
//! `src-tauri/tauri.builtin.conf.json` and `scripts/fetch-builtin-model.sh`), so a new user can
//! chat at once, offline, with no file dialog. A build without it (a development build) simply
//! offers no built-in model.

use std::path::Path;

use serde::Serialize;

/// The resource folder's subfolder that holds the model and its licence.
pub const BUILTIN_DIR: &str = "builtin";
/// The model file in [`BUILTIN_DIR`].
pub const BUILTIN_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Its licence text in [`BUILTIN_DIR`].
pub const BUILTIN_LICENSE_FILE: &str = "LICENSE-SmolLM2.txt";

/// The sentence-embedding model documents are searched by meaning with (all-MiniLM-L6-v2,
/// Apache-2.0), a folder in [`BUILTIN_DIR`] next to the chat model.
pub const BUILTIN_EMBED_DIR: &str = "all-MiniLM-L6-v2";

/// The bundled embedding model's folder under `resource_dir`, when this build bundles it.
pub fn find_embed_model(resource_dir: &Path) -> Option<std::path::PathBuf> {
    let dir = resource_dir.join(BUILTIN_DIR).join(BUILTIN_EMBED_DIR);
    dir.join("model.safetensors").is_file().then_some(dir)
}

/// What the welcome screen shows of the built-in model.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BuiltinModel {
    pub path: String,
    pub name: String,
    pub bytes: u64,
    pub license: String,
}

/// The built-in model under `resource_dir`, when this build bundles it (a regular file with
/// the GGUF magic: a truncated or placeholder file is not offered).
pub fn find(resource_dir: &Path) -> Option<BuiltinModel> {
    let dir = resource_dir.join(BUILTIN_DIR);
    let path = dir.join(BUILTIN_MODEL_FILE);
    let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(&path).ok()?;
    std::io::Read::read_exact(&mut file, &mut magic).ok()?;
    if &magic != b"GGUF" {
        return None;
    }
    Some(BuiltinModel {
        path: path.to_string_lossy().into_owned(),
        name: "SmolLM2 135M Instruct".into(),
        bytes: meta.len(),
        license: dir
            .join(BUILTIN_LICENSE_FILE)
            .to_string_lossy()
            .into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundled_embedding_model_is_found_by_its_weights() {
        let root =
            std::env::temp_dir().join(format!("hearth-builtin-embed-{}", std::process::id()));
        let dir = root.join(BUILTIN_DIR).join(BUILTIN_EMBED_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(find_embed_model(&root), None);
        std::fs::write(dir.join("model.safetensors"), b"x").unwrap();
        assert_eq!(find_embed_model(&root), Some(dir));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_bundled_gguf_is_offered_and_anything_else_is_not() {
        let root = std::env::temp_dir().join(format!("hearth-builtin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        assert_eq!(find(&root), None, "no builtin folder");
        let dir = root.join(BUILTIN_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(BUILTIN_MODEL_FILE), b"GG").unwrap();
        assert_eq!(find(&root), None, "too short for the magic");
        std::fs::write(dir.join(BUILTIN_MODEL_FILE), b"<html>not a model").unwrap();
        assert_eq!(find(&root), None, "not a GGUF");
        std::fs::write(dir.join(BUILTIN_MODEL_FILE), b"GGUF\x03\x00\x00\x00rest").unwrap();
        let found = find(&root).expect("a GGUF is offered");
        assert_eq!(found.bytes, 12);
        assert!(found.path.ends_with(BUILTIN_MODEL_FILE));
        assert!(found.license.ends_with(BUILTIN_LICENSE_FILE));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
