//! Embeds `migrations/*.sql` in the library, as sqlx's `migrate!` macro did, so that the
//! default build doesn't compile sqlx's macro crate and, for it, a second copy of sqlx's
//! drivers and their dependencies (see `src/store/migrations.rs`).

use std::path::PathBuf;

fn main() {
    // A directory: Cargo re-runs this script when any file in it changes, is added or removed.
    println!("cargo::rerun-if-changed=migrations");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("Cargo sets CARGO_MANIFEST_DIR"));
    let dir = manifest.join("migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display())).path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    let mut list = String::from("&[\n");
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).expect("migration file names are UTF-8");
        list.push_str(&format!("    ({name:?}, include_str!({:?})),\n", path.display().to_string()));
    }
    list.push_str("]\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("Cargo sets OUT_DIR")).join("migrations.rs");
    std::fs::write(&out, list).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
