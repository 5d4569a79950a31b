//! Embeds every `schema/V<n>__<name>.sql` migration into the store crate, in version order.

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let schema_dir = manifest_dir.join("../schema");
    println!("cargo:rerun-if-changed={}", schema_dir.display());
    let mut migrations: Vec<(u32, String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(&schema_dir).expect("schema/ directory next to store/") {
        let path = entry.expect("readable schema entry").path();
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let Some(stem) = file_name.strip_suffix(".sql") else {
            continue;
        };
        let Some(rest) = stem.strip_prefix('V') else {
            continue;
        };
        let (version, name) = rest
            .split_once("__")
            .unwrap_or_else(|| panic!("migration {file_name} must be named V<n>__<name>.sql"));
        let version: u32 = version
            .parse()
            .unwrap_or_else(|_| panic!("migration {file_name}: version is not a number"));
        println!("cargo:rerun-if-changed={}", path.display());
        migrations.push((
            version,
            name.to_owned(),
            path.canonicalize().expect("canonical path"),
        ));
    }
    migrations.sort();
    for pair in migrations.windows(2) {
        assert!(
            pair[0].0 != pair[1].0,
            "two migrations have version {}",
            pair[0].0
        );
    }
    let mut out = String::from("/// Embedded migrations: (version, name, SQL), in version order.\npub(crate) static MIGRATIONS: &[(u32, &str, &str)] = &[\n");
    for (version, name, path) in &migrations {
        out.push_str(&format!(
            "    ({version}, {name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let out_path = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("migrations.rs");
    fs::write(out_path, out).expect("write migrations.rs");
}
